"""In-process ranks' communicators: N ranks in one process and one event loop.

Payloads move between the ranks by reference (no copy). `run_ranks` gives each
rank a Context with one of these communicators (see :mod:`streamnet.engines`).
"""

from __future__ import annotations

from typing import Any

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
        self._failures = FailureRecord()

    def communicator(self, rank: int) -> InProcessCommunicator:
        """The communicator of ``rank``."""
        return InProcessCommunicator(self, rank)

    def communicators(self) -> list[InProcessCommunicator]:
        """One communicator per rank, in rank order."""
        return [self.communicator(rank) for rank in range(self.nranks)]

    @property
    def failure(self) -> tuple[int, BaseException] | None:
        """``(rank, cause)`` of the first rank that aborted, or None."""
        return self._failures.failed

    def _raise_if_failed(self, rank: int) -> None:
        self._failures.check()

    def _abort(self, rank: int, cause: BaseException) -> None:
        if self._failures.record(rank, cause):
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
        self._world._raise_if_failed(self._rank)
        self._world._inbox.put((self._rank, dest, tag), payload)

    async def recv(self, source: int, tag: Tag) -> Any:
        self._check_peer(source, "source")
        world = self._world
        return await world._inbox.get(
            (source, self._rank, tag), lambda: world._raise_if_failed(self._rank)
        )

    def abort(self, cause: BaseException) -> None:
        self._world._abort(self._rank, cause)

    def _failure_record(self) -> FailureRecord:
        return self._world._failures

    def __repr__(self) -> str:
        return f"<InProcessCommunicator rank {self._rank} of {self.nranks}>"
