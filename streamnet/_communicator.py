"""Communicator: how the ranks of a multi-rank run reach each other.

Collective actors use nothing else to talk to their peers, so a new transport
(MPI, Ray, UCXX) slots in by implementing this interface.

The contract, for every implementation:

- ``send(dest, tag, payload)`` delivers ``payload`` to rank ``dest``; messages
  between one pair of ranks with one tag arrive in the order they were sent.
  Payloads are Arrow tables, TableChunks, or small picklable Python objects; a
  transport ships tables without pickling them whole (Arrow IPC, or no copy at
  all within one process).
- ``recv(source, tag)`` waits for the next payload from ``source`` with ``tag``.
- ``abort(cause)`` tells every rank that this one failed: their pending and
  future ``recv`` and ``send`` raise `RemoteRankError` naming this rank and
  ``cause``. Nothing waits forever once a peer failed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Any

from streamnet._errors import RemoteRankError

__all__ = ["Communicator", "SingleCommunicator", "Tag"]

Tag = Hashable
"""Identifies one exchange: collectives use ``(operation id, phase, ...)`` tuples."""


class Communicator(ABC):
    """The ranks of a run and tagged point-to-point messages between them."""

    @property
    @abstractmethod
    def rank(self) -> int:
        """This process's rank, ``0 <= rank < nranks``."""

    @property
    @abstractmethod
    def nranks(self) -> int:
        """Number of ranks in the run."""

    @abstractmethod
    async def send(self, dest: int, tag: Tag, payload: Any) -> None:
        """Send ``payload`` to rank ``dest`` (see the module's contract).

        Raises
        ------
        RemoteRankError
            A rank of the run failed.
        ValueError
            ``dest`` is not a rank of the run.
        """

    @abstractmethod
    async def recv(self, source: int, tag: Tag) -> Any:
        """The next payload from rank ``source`` sent with ``tag``.

        Raises
        ------
        RemoteRankError
            A rank of the run failed.
        ValueError
            ``source`` is not a rank of the run.
        """

    @abstractmethod
    def abort(self, cause: BaseException) -> None:
        """Tell every rank that this one failed with ``cause``. Idempotent."""

    async def barrier(self, tag: Tag) -> None:
        """Wait until every rank reached the barrier with ``tag``."""
        await self.allgather(tag, None)

    async def allgather(self, tag: Tag, value: Any) -> list[Any]:
        """Every rank's ``value``, indexed by rank, on every rank."""
        for peer in range(self.nranks):
            if peer != self.rank:
                await self.send(peer, tag, value)
        values: list[Any] = [None] * self.nranks
        values[self.rank] = value
        for peer in range(self.nranks):
            if peer != self.rank:
                values[peer] = await self.recv(peer, tag)
        return values

    def _check_peer(self, peer: int, role: str) -> None:
        if type(peer) is not int or not 0 <= peer < self.nranks:
            raise ValueError(
                f"rank {self.rank}: `{role}` must be a rank in 0..{self.nranks - 1}, got {peer!r}"
            )


class SingleCommunicator(Communicator):
    """One rank, no peers: the default, with no overhead.

    There is nobody to talk to, so ``send`` and ``recv`` only accept this rank
    itself (a message to oneself is queued and received back).
    """

    def __init__(self) -> None:
        self._queues: dict[Tag, list[Any]] = {}
        self._aborted: BaseException | None = None

    @property
    def rank(self) -> int:
        return 0

    @property
    def nranks(self) -> int:
        return 1

    async def send(self, dest: int, tag: Tag, payload: Any) -> None:
        self._check_peer(dest, "dest")
        self._queues.setdefault(tag, []).append(payload)

    async def recv(self, source: int, tag: Tag) -> Any:
        self._check_peer(source, "source")
        queue = self._queues.get(tag)
        if not queue:
            raise RuntimeError(
                f"single rank: nothing was sent to itself with tag {tag!r}; waiting would hang"
            )
        return queue.pop(0)

    def abort(self, cause: BaseException) -> None:
        self._aborted = cause

    def __repr__(self) -> str:
        return "<SingleCommunicator rank 0 of 1>"


def remote_error(rank: int, cause: BaseException) -> RemoteRankError:
    """The error a peer sees when ``rank`` failed with ``cause``."""
    error = RemoteRankError(rank, cause)
    error.__cause__ = cause
    return error
