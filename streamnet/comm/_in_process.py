"""In-process ranks' communicators: N ranks in one process and one event loop.

Payloads move between the ranks by reference (no copy). `run_ranks` gives each
rank a Context with one of these communicators (see :mod:`streamnet.engines`).
"""

from __future__ import annotations

from typing import Any

from streamnet._errors import NetworkMismatchError
from streamnet.comm._communicator import Communicator, FailureRecord, Tag
from streamnet.comm._tagged_inbox import TaggedInbox

__all__ = ["InProcessCommunicator", "InProcessWorld"]


class InProcessWorld:
    """The shared state of ``nranks`` in-process ranks; hands out one communicator per rank.

    Examples
    --------
    >>> world = InProcessWorld(2)
    >>> [c.rank for c in world.communicators()]
    [0, 1]
    """

    def __init__(self, nranks: int) -> None:
        if type(nranks) is not int or nranks < 1:
            raise ValueError(f"InProcessWorld: `nranks` must be an int >= 1, got {nranks!r}")
        self.nranks = nranks
        self._inbox = TaggedInbox()  # slots: (source, dest, tag)
        self.failures = FailureRecord()
        """Who aborted first, and why (every rank's communicator reads it)."""
        self.finished: set[int] = set()
        """The ranks whose job ended without failing (`Communicator.finish`)."""

    def communicator(self, rank: int) -> InProcessCommunicator:
        """The communicator of ``rank``."""
        return InProcessCommunicator(self, rank)

    def communicators(self) -> list[InProcessCommunicator]:
        """One communicator per rank, in rank order."""
        return [self.communicator(rank) for rank in range(self.nranks)]

    def waiting(self) -> int:
        """How many receives wait now, on every rank together."""
        return self._inbox.waiting()

    @property
    def failure(self) -> tuple[int, BaseException] | None:
        """``(rank, cause)`` of the first rank that aborted, or None."""
        return self.failures.failed

    def post(self, source: int, dest: int, tag: Tag, payload: Any) -> None:
        """Deliver ``payload`` from rank ``source`` to rank ``dest``.

        Raises
        ------
        RemoteRankError
            A rank aborted.
        """
        self.failures.check()
        self._inbox.put((source, dest, tag), payload)

    async def take(self, source: int, dest: int, tag: Tag) -> Any:
        """What rank ``source`` posted to rank ``dest`` under ``tag``, waiting for it.

        Raises
        ------
        RemoteRankError
            A rank aborted (also while it waited).
        NetworkMismatchError
            Rank ``source`` finished its job without sending it.
        """
        def check() -> None:
            self.failures.check()
            if source in self.finished:  # only once what it sent was taken
                raise NetworkMismatchError(
                    f"rank {dest} waits for a message (tag {tag!r}) from rank {source}, whose "
                    f"job already ended: the ranks ran different networks or collectives "
                    f"(rank {source} returned without this step)"
                )

        return await self._inbox.get((source, dest, tag), check)

    def finish(self, rank: int) -> None:
        """Rank ``rank``'s job ended without failing: its peers' waits for what it never
        sent raise `NetworkMismatchError`."""
        self.finished.add(rank)
        self._inbox.wake(lambda slot: slot[0] == rank)

    def abort(self, rank: int, cause: BaseException) -> None:
        """Rank ``rank`` failed with ``cause``: every rank's waits and later calls raise
        `RemoteRankError` (the first abort counts)."""
        if self.failures.record(rank, cause):
            self._inbox.wake()


class InProcessCommunicator(Communicator):
    """One rank of an :class:`InProcessWorld`."""

    def __init__(self, world: InProcessWorld, rank: int) -> None:
        if type(rank) is not int or not 0 <= rank < world.nranks:
            raise ValueError(f"rank must be in 0..{world.nranks - 1}, got {rank!r}")
        self._world = world
        self._rank = rank

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def nranks(self) -> int:
        return self._world.nranks

    async def send(self, dest: int, tag: Tag, payload: Any) -> None:
        self._check_peer(dest, "dest")
        self._world.post(self._rank, dest, tag, payload)

    async def recv(self, source: int, tag: Tag) -> Any:
        self._check_peer(source, "source")
        return await self._world.take(source, self._rank, tag)

    def abort(self, cause: BaseException) -> None:
        self._world.abort(self._rank, cause)

    def finish(self) -> None:
        self._world.finish(self._rank)

    def _failure_record(self) -> FailureRecord:
        return self._world.failures

    def __repr__(self) -> str:
        return f"<InProcessCommunicator rank {self._rank} of {self.nranks}>"
