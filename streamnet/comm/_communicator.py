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
- ``watch(callback)`` hears of a peer's failure as soon as this rank learns
  of it, whatever this rank is doing: a running Network uses it to fail at
  once instead of at its next exchange. A transport supports it by recording
  every failure it learns of (its own abort, a peer's abort message) in one
  :class:`FailureRecord` and returning that from ``_failure_record()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from typing import Any

from streamnet._errors import RemoteRankError

__all__ = ["Communicator", "FailureRecord", "SingleCommunicator", "Tag"]

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

    def finish(self) -> None:
        """This rank's job ended without failing: a peer that waits for a message from it
        that it never sent fails (`NetworkMismatchError`) instead of waiting forever. What
        it sent before is still received. The base class does nothing (a transport whose
        launcher ends the job when a rank exits)."""
        return None

    def use_host_buffers(self, allocate: Callable[[int], Any]) -> None:
        """Receive the frames of packed chunks into buffers made by ``allocate(nbytes)``
        (a Context gives its backend's `Backend.host_buffer`).

        A transport that receives into buffers of its own (in-process, Ray)
        has no use for it: the base class ignores it.
        """
        del allocate

    @property
    def failure(self) -> RemoteRankError | None:
        """The failure of a rank of the run that this rank knows of, as the error its
        ``send`` and ``recv`` raise; None while it knows of none."""
        record = self._failure_record()
        return None if record is None else record.error()

    def watch(self, callback: Callable[[RemoteRankError], None]) -> Callable[[], None]:
        """Call ``callback(error)`` on the running event loop once this rank learns that
        a peer failed (soon after this call if it knows already); once at most.

        Returns the function that stops watching. A rank's own failure (its
        ``abort``) is not reported to it. A transport that cannot tell (it has
        no ``_failure_record()``) never calls: its peers' failures show at the
        next ``send`` or ``recv`` only.
        """
        record = self._failure_record()
        if record is None:
            return _nothing
        return record.watch(self.rank, callback)

    def _failure_record(self) -> FailureRecord | None:
        """Where this communicator's transport records the failures it learns of."""
        return None

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


Callback = Callable[[RemoteRankError], None]
"""Told of a peer's failure, with the error its communicator calls raise."""


class FailureRecord:
    """The first failure among a group of ranks, and the watchers to tell of it.

    A transport keeps one per group of ranks that fail together (an in-process
    world, an MPI epoch, a Ray rank's view of its run) and calls :meth:`record`
    whenever it learns of a failure, from any thread. Its communicators raise
    :meth:`error` from their calls, and :meth:`watch` is `Communicator.watch`.

    Examples
    --------
    >>> record = FailureRecord()
    >>> record.record(1, ValueError("bad")), record.record(2, KeyError("late"))
    (True, False)
    >>> record.error()
    RemoteRankError('rank 1 failed: ValueError: bad')
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failed: tuple[int, BaseException] | None = None
        self._watchers: dict[int, tuple[int, asyncio.AbstractEventLoop, Callback]] = {}
        self._keys = itertools.count()

    @property
    def failed(self) -> tuple[int, BaseException] | None:
        """``(rank, cause)`` of the first failure recorded, or None."""
        return self._failed

    def record(self, rank: int, cause: BaseException) -> bool:
        """Record that ``rank`` failed with ``cause``; False if a failure was recorded before.

        Every watcher of another rank is called, on its own event loop.
        """
        with self._lock:
            if self._failed is not None:
                return False
            self._failed = (rank, cause)
            watchers = list(self._watchers.items())
        for key, (me, loop, callback) in watchers:
            if me != rank:
                self._tell(key, loop, callback)
        return True

    def error(self) -> RemoteRankError | None:
        """The error a communicator call raises after the failure, or None."""
        failed = self._failed
        return None if failed is None else remote_error(*failed)

    def check(self) -> None:
        """Raise :meth:`error` if a failure was recorded."""
        error = self.error()
        if error is not None:
            raise error

    def watch(self, me: int, callback: Callback) -> Callable[[], None]:
        """Call ``callback`` on the running loop once a rank other than ``me`` failed."""
        loop = asyncio.get_running_loop()
        with self._lock:
            key = next(self._keys)
            self._watchers[key] = (me, loop, callback)
            failed = self._failed
        if failed is not None and failed[0] != me:
            self._tell(key, loop, callback)
        return lambda: self._unwatch(key)

    def _unwatch(self, key: int) -> None:
        with self._lock:
            self._watchers.pop(key, None)

    def _tell(self, key: int, loop: asyncio.AbstractEventLoop, callback: Callback) -> None:
        def call() -> None:
            with self._lock:
                still = self._watchers.pop(key, None) is not None
            error = self.error()
            if still and error is not None:
                callback(error)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.call_soon(call)
        else:
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody to tell
                loop.call_soon_threadsafe(call)


def _nothing() -> None:
    pass


def remote_error(rank: int, cause: BaseException) -> RemoteRankError:
    """The error a peer sees when ``rank`` failed with ``cause``."""
    error = RemoteRankError(rank, cause)
    error.__cause__ = cause
    return error
