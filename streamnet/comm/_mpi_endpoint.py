"""The process's MPI endpoint: one per process, shared by every `MPICommunicator`.

How it works: every MPI call happens on the event loop's thread, non-blocking
(``Isend`` / ``Irecv`` / ``Iprobe``). A *pump* task polls MPI while anything is in
flight, backing off to a millisecond when nothing moves, so the event loop never
blocks and a rank waiting for data costs almost no CPU. While a network runs
with nothing in flight (its actors busy upstream of their collectives), the pump
still polls every 10 ms for a peer's abort, so that the network fails at once
rather than at its next exchange; a send or a receive wakes it from such a nap.
A payload is one small header message (its tag and pickled skeleton, see
:mod:`streamnet.comm._wire`) followed by its tables' Arrow IPC buffers as raw
messages, received straight into Arrow buffers and read back without a copy.
Messages are always received as they arrive, whether or not anybody waits for
them yet, so two ranks sending large tables to each other never wait on one another.

Each communicator made in a process is an *epoch* of the endpoint: its messages
and its failures never mix with another's.

A rank whose job ended (its communicator's `finish`, or the process exiting)
sends every peer a *finished* header after everything it sent. A peer receives
the messages before it as usual; a receive that still waits on that rank after
them raises `NetworkMismatchError` instead of waiting for ever (the ranks ran
different networks).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import pickle
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from streamnet._errors import NetworkMismatchError, RemoteRankError
from streamnet._tasks import retrieve
from streamnet.comm import _wire
from streamnet.comm._communicator import FailureRecord, Tag
from streamnet.comm._tagged_inbox import TaggedInbox, settle

__all__ = ["Endpoint"]

_HEADER, _DATA, _ABORT = 11, 12, 13
_FINISHED = "finished"  # the key of a header saying its sender's job (or process) ended
_PIECE = 1 << 30  # largest single MPI message: counts stay far below 2**31
_LINGER = 0.5  # seconds the pump keeps polling after the last message moved
_MAX_NAP = 1e-3  # seconds between polls, at most, while messages move or receivers wait
_WATCH_NAP = 1e-2  # at most, while only a running network listens for a peer's abort


def _piece_views(buffer: memoryview) -> list[memoryview]:
    if len(buffer) <= _PIECE:
        return [buffer]
    return [buffer[i : i + _PIECE] for i in range(0, len(buffer), _PIECE)]


@dataclass
class _Outgoing:
    epoch: int
    requests: list[Any]
    keep_alive: list[Any]
    future: asyncio.Future[None]


@dataclass
class _Incoming:
    key: Any
    header: bytes
    buffers: list[Any]
    requests: list[Any] = field(default_factory=list)


class Endpoint:
    """The process's MPI endpoint: one per process, shared by every MPICommunicator (see the module)."""

    def __init__(self, comm: Any, mpi: Any) -> None:
        self.mpi = mpi
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.nranks: int = comm.Get_size()
        self.inbox = TaggedInbox()  # slots: (source, (epoch, tag))
        self.incoming: dict[int, deque[_Incoming]] = {}
        self.outgoing: list[_Outgoing] = []
        # Sends nobody waits for (of failed epochs; aborts not yet taken): MPI may still
        # read their buffers (a live peer still receives them), so the requests and the
        # buffers are kept until complete.
        self.abandoned: list[tuple[list[Any], list[Any]]] = []
        self.failures: dict[int, FailureRecord] = {}  # per epoch, made when first needed
        self.down: tuple[int, BaseException] | None = None  # a failure of every epoch
        # Per peer: the epochs whose job it ended (None: its process ended, every epoch).
        self.finished: dict[int, set[int | None]] = {}
        self.finishing: set[int | None] = set()  # the epochs (None: all) this rank ended
        self.watchers: dict[asyncio.AbstractEventLoop, int] = {}  # networks awaiting aborts
        self.lock = threading.RLock()
        self.pumps: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self.naps: dict[asyncio.AbstractEventLoop, asyncio.Future[bool]] = {}  # pumps napping
        self.epochs = itertools.count()
        # Per epoch: what makes the buffers its messages' frames are received into
        # (its Context's `Backend.host_buffer`); Arrow's allocator for the others.
        self.allocators: dict[int, Callable[[int], Any]] = {}
        self.status = mpi.Status()

    # ------------------------------------------------------------ operations
    def record(self, epoch: int) -> FailureRecord:
        """Where the failures of ``epoch`` are recorded."""
        with self.lock:
            record = self.failures.get(epoch)
            if record is None:
                record = self.failures[epoch] = FailureRecord()
                if self.down is not None:
                    record.record(*self.down)
            return record

    def failure(self, epoch: int | None) -> tuple[int, BaseException] | None:
        """The failure of ``epoch`` (None: of every epoch), if any."""
        record = None if epoch is None else self.failures.get(epoch)
        return record.failed if record is not None else self.down

    def raise_if_failed(self, epoch: int) -> None:
        self.record(epoch).check()

    async def send(self, dest: int, key: tuple[int, Tag], payload: Any) -> None:
        self.raise_if_failed(key[0])
        if dest == self.rank:
            self._deliver(dest, key, payload)
            return
        loop = asyncio.get_running_loop()
        if _wire.is_bulky(payload):  # a table: write its bytes in a thread, the pump keeps polling
            header, buffers = await loop.run_in_executor(None, _wire.dumps, payload)
            self.raise_if_failed(key[0])
        else:
            header, buffers = _wire.dumps(payload)
        done: asyncio.Future[None] = loop.create_future()
        blob = pickle.dumps((key, header, [len(b) for b in buffers]), protocol=5)
        with self.lock:
            requests = [self.comm.Isend([blob, self.mpi.BYTE], dest, _HEADER)]
            for buffer in buffers:
                for piece in _piece_views(buffer):
                    requests.append(self.comm.Isend([piece, self.mpi.BYTE], dest, _DATA))
            self.outgoing.append(_Outgoing(key[0], requests, [blob, buffers], done))
        self._ensure_pump(loop)
        done.add_done_callback(retrieve)  # a cancelled sender no longer looks at it
        await asyncio.shield(done)  # a cancelled sender leaves the transfer to finish

    async def recv(self, source: int, key: tuple[int, Tag]) -> Any:
        def before_waiting() -> None:
            self.raise_if_failed(key[0])
            self._check_epochs_agree(source, key)
            self._check_still_running(source, key)
            self._ensure_pump(asyncio.get_running_loop())

        return await self.inbox.get((source, key), before_waiting)

    def _check_epochs_agree(self, source: int, key: tuple[int, Tag]) -> None:
        """Raise if ``source`` opened this network in another epoch than this rank waits in.

        A network's first exchange is its ranks' fingerprints. When that arrives
        from ``source`` in epoch e1 while this rank waits for it in e0, the two
        made their Contexts in a different order, and neither would ever hear from
        the other.
        """
        epoch, tag = key
        if not _is_fingerprint(tag):
            return
        for other_source, (other_epoch, other_tag) in self.inbox.slots():
            if other_source == source and other_tag == tag and other_epoch != epoch:
                raise NetworkMismatchError(
                    f"rank {self.rank} waits for rank {source} in its communicator #{epoch}, "
                    f"but rank {source} started its network in communicator #{other_epoch}: "
                    "the ranks made their Contexts in a different order (a Context for one "
                    "rank alone takes communicator=SingleCommunicator())"
                )

    def _check_still_running(self, source: int, key: tuple[int, Tag]) -> None:
        """Raise if ``source`` ended the job of this epoch (or its process) and every
        message it sent before was taken: what is waited for will never come."""
        ended = self.finished.get(source)
        if not ended or (None not in ended and key[0] not in ended):
            return
        what = "process exited" if None in ended else "job already ended"
        raise NetworkMismatchError(
            f"rank {self.rank} waits for a message (tag {key[1]!r}) from rank {source}, whose "
            f"{what}: the ranks ran different networks or collectives (rank {source} went on "
            "without this step)"
        )

    def abort(self, epoch: int | None, cause: BaseException) -> None:
        """Fail ``epoch`` (None: every epoch, the process is going down) here and on every peer."""
        with self.lock:
            if self.failure(epoch) is not None:
                return
            self._tell_peers(_pickled_failure(epoch, self.rank, cause), _ABORT)
            self._fail(epoch, (self.rank, cause))

    def finish(self, epoch: int | None) -> None:
        """This rank's job of ``epoch`` (None: the process, every epoch) ended without
        failing: tell every peer, after everything sent before (see the module)."""
        with self.lock:
            if self.failure(epoch) is not None or {epoch, None} & self.finishing:
                return  # a failed epoch told its peers already
            self.finishing.add(epoch)
            self._tell_peers(pickle.dumps(((_FINISHED, epoch), b"", []), protocol=5), _HEADER)

    def _tell_peers(self, blob: bytes, mpi_tag: int) -> None:
        """Send a small ``blob`` to every peer, waiting briefly (a process on its way out
        may have no event loop left to wait on)."""
        requests = [
            self.comm.Isend([blob, self.mpi.BYTE], peer, mpi_tag)
            for peer in range(self.nranks)
            if peer != self.rank
        ]
        deadline = time.monotonic() + 2.0  # small messages go at once; never wait long
        while not self.mpi.Request.Testall(requests) and time.monotonic() < deadline:
            time.sleep(1e-3)
        if not self.mpi.Request.Testall(requests):  # MPI still reads the blob
            self.abandoned.append((requests, [blob]))

    def watch(self, epoch: int, callback: Callable[[RemoteRankError], None]) -> Callable[[], None]:
        """`Communicator.watch` for ``epoch``: the pump keeps polling for aborts meanwhile."""
        loop = asyncio.get_running_loop()
        stop = self.record(epoch).watch(self.rank, callback)
        with self.lock:
            self.watchers[loop] = self.watchers.get(loop, 0) + 1
        self._ensure_pump(loop)
        stopped = False

        def unwatch() -> None:
            nonlocal stopped
            with self.lock:
                if stopped:
                    return
                stopped = True
                self.watchers[loop] -= 1
                if not self.watchers[loop]:
                    del self.watchers[loop]
            stop()

        return unwatch

    # ------------------------------------------------------------ the pump
    def _ensure_pump(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the pump of ``loop`` (the running one), or wake it from a nap."""
        task = self.pumps.get(loop)
        if task is None or task.done():
            # A context of its own: the pump serves every actor, it belongs to none.
            self.pumps[loop] = loop.create_task(
                self._pump(loop), name="streamnet-mpi-pump", context=contextvars.Context()
            )
            return
        nap = self.naps.get(loop)
        if nap is not None:
            _resolve(nap, True)

    def _busy(self) -> bool:
        """Whether messages move or receivers wait."""
        return bool(self.outgoing or any(self.incoming.values()) or self.inbox.waiting())

    async def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        nap = 0.0
        last_progress = time.monotonic()
        try:
            while True:
                with self.lock:
                    progressed = self._poll()
                now = time.monotonic()
                busy = self._busy()
                if progressed:
                    last_progress, nap = now, 0.0
                elif not busy and loop not in self.watchers and now - last_progress > _LINGER:
                    return
                else:
                    nap = min(_MAX_NAP if busy else _WATCH_NAP, nap * 2 or 2e-5)
                if nap == 0.0:
                    await asyncio.sleep(0)
                    continue
                woken: asyncio.Future[bool] = loop.create_future()
                self.naps[loop] = woken
                timer = loop.call_later(nap, _resolve, woken, False)
                try:
                    if await woken:  # woken early by a send, a receive or a watch
                        nap = 0.0
                finally:
                    timer.cancel()
                    del self.naps[loop]
        finally:
            if self.pumps.get(loop) is asyncio.current_task():
                del self.pumps[loop]

    def _poll(self) -> bool:
        """One round of MPI progress; True when anything moved."""
        mpi, comm, status = self.mpi, self.comm, self.status
        progressed = False
        while comm.Iprobe(mpi.ANY_SOURCE, _ABORT, status):
            source = status.Get_source()
            blob = bytearray(status.Get_count(mpi.BYTE))
            comm.Recv([blob, mpi.BYTE], source, _ABORT)
            epoch, failure = _unpickled_failure(source, blob)
            if self.failure(epoch) is None:
                self._fail(epoch, failure)
            progressed = True
        while comm.Iprobe(mpi.ANY_SOURCE, _HEADER, status):
            source = status.Get_source()
            blob = bytearray(status.Get_count(mpi.BYTE))
            comm.Recv([blob, mpi.BYTE], source, _HEADER)
            key, header, sizes = pickle.loads(blob)
            allocate = self.allocators.get(key[0], pa.allocate_buffer)
            message = _Incoming(key, header, [allocate(size) for size in sizes])
            for buffer in message.buffers:  # posted in send order: MPI matches them in order
                for piece in _piece_views(memoryview(buffer)):
                    message.requests.append(comm.Irecv([piece, mpi.BYTE], source, _DATA))
            self.incoming.setdefault(source, deque()).append(message)
            progressed = True
        for source, queue in self.incoming.items():
            while queue and mpi.Request.Testall(queue[0].requests):
                message = queue.popleft()
                if message.key[0] == _FINISHED:  # after what the source sent before it
                    self._peer_finished(source, message.key[1])
                else:
                    payload = _wire.loads(message.header, message.buffers)
                    self._deliver(source, message.key, payload)
                progressed = True
        if self.abandoned:
            self.abandoned = [a for a in self.abandoned if not mpi.Request.Testall(a[0])]
        if self.outgoing:
            still = [o for o in self.outgoing if not mpi.Request.Testall(o.requests)]
            if len(still) != len(self.outgoing):
                for sent in self.outgoing:
                    if sent not in still:
                        settle(sent.future, None)
                self.outgoing = still
                progressed = True
        return progressed

    def _deliver(self, source: int, key: tuple[int, Tag], payload: Any) -> None:
        if self.failure(key[0]) is not None:
            return  # late traffic of a failed epoch: nobody will ask for it
        self.inbox.put((source, key), payload)
        if _is_fingerprint(key[1]):  # wake whoever waits for it in another epoch, to raise
            self.inbox.wake(lambda s: s[0] == source and s[1][1] == key[1] and s[1] != key)

    def _peer_finished(self, source: int, epoch: int | None) -> None:
        """``source`` ended its job of ``epoch`` (None: its process): wake whoever waits
        on it there, to raise."""
        self.finished.setdefault(source, set()).add(epoch)
        self.inbox.wake(lambda slot: slot[0] == source and epoch in (None, slot[1][0]))

    def _fail(self, epoch: int | None, failure: tuple[int, BaseException]) -> None:
        """Record ``failure`` in ``epoch`` (None: in every epoch), telling its watchers,
        and wake everything waiting there to raise it."""
        if epoch is None:
            self.down = failure
            for record in self.failures.values():
                record.record(*failure)
        else:
            self.record(epoch).record(*failure)
        hit = [o for o in self.outgoing if epoch is None or o.epoch == epoch]
        for sent in hit:  # a peer that failed may never take it: stop waiting for the transfer
            settle(sent.future, self.record(sent.epoch).error())
        self.outgoing = [o for o in self.outgoing if o not in hit]
        self.abandoned.extend((o.requests, o.keep_alive) for o in hit)

        def in_epoch(slot: Any) -> bool:
            return epoch is None or slot[1][0] == epoch

        self.inbox.wake(in_epoch)  # the woken receivers raise RemoteRankError themselves
        self.inbox.discard(in_epoch)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def _is_fingerprint(tag: Tag) -> bool:
    """The tag of a network's first exchange, its ranks' fingerprints (see Network)."""
    return isinstance(tag, tuple) and len(tag) == 2 and tag[0] == "network"


def _pickled_failure(epoch: int | None, rank: int, cause: BaseException) -> bytes:
    described = "".join(traceback.format_exception_only(type(cause), cause)).strip()
    try:
        blob = pickle.dumps((epoch, rank, cause, described))
        pickle.loads(blob)
    except Exception:
        blob = pickle.dumps((epoch, rank, None, described))
    return blob


def _unpickled_failure(
    source: int, blob: bytes | bytearray
) -> tuple[int | None, tuple[int, BaseException]]:
    try:
        epoch, rank, cause, described = pickle.loads(blob)
    except Exception:
        return None, (source, RuntimeError("(the failure could not be read)"))
    if not isinstance(cause, BaseException):
        cause = RuntimeError(described)
    return epoch, (rank, cause)
