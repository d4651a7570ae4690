"""A Context's memory budget: what operators hold and reserve, and who spills when it is short.

One `MemoryBudget` per Context (``ctx.memory``, sized by ``Context(memory_limit=...)``)
counts two kinds of memory against one limit:

- **held**: chunks an operator keeps in its state (an exchange's partitions, a
  sort's runs, a join's build side) are added to a `MemoryHolder`. They stay
  spillable: when the budget is exceeded, the budget spills held chunks of any
  holder, largest and coldest first, not only those of the operator that added
  the last one;
- **reserved**: working memory a kernel is about to use (`MemoryBudget.reserve`).
  A reservation that does not fit first makes the budget spill held chunks; if
  that is not enough it waits until other reservations end (backpressure), and
  one that can never fit raises `MemoryLimitError` at once, naming the actor and
  the sizes. A reservation covers one bounded step (a kernel call), never a wait
  on a channel, so that the reservations it waits for always end.

Messages waiting in the Context's channels count too (``in_channels``): they are
memory, although the budget cannot spill them; they drain as the actors go on.

Without a limit (``memory_limit=None``) nothing is spilled or waited for; the
figures (peaks, per actor) are still kept for the statistics.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from channels.lowlevel import current_counter
from streamnet._errors import MemoryLimitError

if TYPE_CHECKING:
    from streamnet.memory._spill import SpillDirectory


class Spillable(Protocol):
    """What the budget needs of a chunk (a `streamnet.TableChunk` is one)."""

    @property
    def nbytes(self) -> int: ...
    @property
    def is_spilled(self) -> bool: ...
    def spill(self, directory: SpillDirectory) -> int: ...

__all__ = [
    "HEADROOM",
    "ActorMemory",
    "MemoryBudget",
    "MemoryHolder",
    "MemoryStatistics",
    "MemorySample",
    "Reservation",
    "parse_memory_limit",
]

ToThread = Callable[..., Awaitable[Any]]

_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")


def machine_memory() -> int:
    """The machine's physical memory in bytes (or that of the cgroup the process runs in,
    when it is smaller)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return int(total)


def parse_memory_limit(value: object, *, where: str = "memory_limit") -> int | None:
    """``value`` as bytes: None (no limit), an int of bytes, a float in (0, 1] (that
    fraction of the machine's memory) or a string such as ``"2GiB"``, ``"500MB"``,
    ``"1.5 GB"`` (units B, KB, MB, GB, TB in powers of 1000, KiB, MiB, GiB, TiB in
    powers of 1024, any case).

    Raises
    ------
    ValueError
        ``value`` is none of these, or not positive; the message starts with ``where``
        and shows the value.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected bytes, a fraction or a size such as '2GiB', got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{where}: must be at least 1 byte, got {value!r}")
        return value
    if isinstance(value, float):
        if not 0.0 < value <= 1.0:
            raise ValueError(
                f"{where}: a float is a fraction of the machine's memory, in (0, 1]; got {value!r}"
            )
        return max(1, int(machine_memory() * value))
    if isinstance(value, str):
        match = _SIZE.match(value)
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNITS:
            raise ValueError(
                f"{where}: cannot read the size {value!r}; write it as '2GiB', '500MB' or bytes"
            )
        nbytes = int(float(match.group(1)) * _UNITS[unit])
        if nbytes < 1:
            raise ValueError(f"{where}: must be at least 1 byte, got {value!r}")
        return nbytes
    raise ValueError(
        f"{where}: expected None, bytes, a fraction or a size such as '2GiB', got "
        f"{type(value).__name__} {value!r}"
    )


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


@dataclass(slots=True)
class ActorMemory:
    """One actor's memory figures (in bytes) under its Context's budget.

    Attributes
    ----------
    held_peak
        The most its holders kept in memory at once.
    reserved_peak
        The most working memory it had reserved at once.
    spilled
        Bytes of its held chunks spilled, by itself or by the budget for another.
    waits
        Reservations it made that waited for memory.
    """

    held_peak: int = 0
    reserved_peak: int = 0
    spilled: int = 0
    waits: int = 0
    held: int = field(default=0, repr=False)
    reserved: int = field(default=0, repr=False)


@dataclass(frozen=True, slots=True)
class MemorySample:
    """An actor's memory figures right after they changed (recorded when tracing).

    ``time`` is from ``time.perf_counter()``; the bytes are the actor's held
    (in memory), reserved and spilled so far.
    """

    time: float
    actor: str
    held: int
    reserved: int
    spilled: int


@dataclass(frozen=True, slots=True)
class MemoryStatistics:
    """What a Context's budget saw (``ctx.memory.statistics()``).

    Attributes
    ----------
    limit
        The budget in bytes, or None without one.
    in_use, peak
        Held plus reserved bytes plus bytes in channels now, and the most at once.
    in_channels
        Bytes of the messages waiting in the Context's channels now.
    spilled
        Bytes of held chunks spilled so far.
    actors
        Per actor name: its `ActorMemory` (a copy).
    """

    limit: int | None
    in_use: int
    peak: int
    spilled: int
    actors: dict[str, ActorMemory]
    in_channels: int = 0


class Reservation:
    """Working memory reserved from a budget, given back by `release` (or leaving the
    ``async with`` block). `resize` changes it once the real size is known.

    It belongs to the actor and to the task that made it: a reservation that does not
    fit waits for those of other tasks to end, never for its own task's.
    """

    __slots__ = ("_ledger", "actor", "nbytes", "task")

    def __init__(self, ledger: _Ledger, actor: str, nbytes: int) -> None:
        self._ledger = ledger
        self.actor = actor
        self.nbytes = nbytes
        self.task = _task_key()

    def resize(self, nbytes: int) -> None:
        """Make the reservation ``nbytes`` (never waits: the memory is already in use)."""
        self._ledger.change_reserved(self, max(0, int(nbytes)) - self.nbytes)

    def release(self) -> None:
        """Give the memory back. Idempotent."""
        if self.nbytes:
            self._ledger.change_reserved(self, -self.nbytes)

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@dataclass(slots=True)
class _Held:
    holder: MemoryHolder
    nbytes: int
    used: int
    leaving: bool = False  # chosen to spill (counted as spilled already)


class MemoryHolder:
    """Chunks one operator keeps in its state, counted against the budget and spillable by it.

    Made by `MemoryBudget.holder` (in an actor: named after it). `add` a chunk
    when the state takes it, `remove` it when the operator takes it back to work
    on it (it then counts no more; load it with ``make_available``).
    """

    def __init__(
        self, ledger: _Ledger, actor: str, what: str, *, spill_last: bool = False
    ) -> None:
        self._ledger = ledger
        self.actor = actor
        self.what = what
        self.spill_last = spill_last
        """Whether its chunks are spilled only once no other holder's are left in memory."""
        self.resident = 0
        """Bytes of its chunks in memory now."""
        self.spilled = 0
        """Bytes of its chunks spilled so far."""
        self.peak = 0
        """The most bytes of its chunks in memory at once."""

    async def add(self, chunk: Spillable) -> None:
        """Keep ``chunk`` (counted while in memory). If the budget is then exceeded, held
        chunks are spilled, largest and coldest first, in a thread."""
        self._ledger.add(self, chunk)
        await self._ledger.relieve(0)

    def remove(self, chunk: Spillable) -> None:
        """``chunk`` leaves the state (taken back by the operator). A chunk not held is ignored."""
        self._ledger.remove(chunk)

    def touch(self, chunk: Spillable) -> None:
        """``chunk`` was used now: the last to be spilled among chunks of its size."""
        self._ledger.touch(chunk)

    def clear(self) -> None:
        """Forget every chunk this holder still holds (its operator ended, or failed):
        they count no more, and the budget keeps no reference to them."""
        self._ledger.clear(self)

    async def spill_down_to(self, nbytes: int) -> None:
        """Spill this holder's largest chunks until at most ``nbytes`` of them stay in
        memory (an operator's own bound, such as ``max_buffered_bytes``)."""
        await self._ledger.spill(self._ledger.victims(self.resident - nbytes, only=self))

    def __repr__(self) -> str:
        return (
            f"<MemoryHolder {self.what!r} of {self.actor!r}: {_size(self.resident)} held, "
            f"{_size(self.spilled)} spilled>"
        )


class _Ledger:
    """The budget's books, shared by the budget, its holders and its reservations."""

    def __init__(
        self,
        limit: int | None,
        spills: SpillDirectory,
        to_thread: ToThread,
        in_channels: Callable[[], int],
    ) -> None:
        self.limit = limit
        self.in_channels = in_channels
        self.spills = spills
        self.to_thread = to_thread
        self.lock = threading.Lock()
        self.held: dict[int, tuple[Spillable, _Held]] = {}
        self.resident = 0
        self.reserved = 0
        self.peak = 0
        self.spilled = 0
        self.actors: dict[str, ActorMemory] = {}
        self.by_task: dict[TaskKey, int] = {}  # reserved bytes per task
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.clock = itertools.count()
        self.samples: deque[MemorySample] | None = None  # a timeline's, while tracing

    def sample(self, name: str, account: ActorMemory) -> None:
        """Record ``name``'s figures (under the lock), when tracing."""
        if self.samples is not None:
            self.samples.append(
                MemorySample(perf_counter(), name, account.held, account.reserved, account.spilled)
            )

    @property
    def in_use(self) -> int:
        return self.resident + self.reserved + self.in_channels()

    def actor(self, name: str) -> ActorMemory:
        account = self.actors.get(name)
        if account is None:
            account = self.actors[name] = ActorMemory()
        return account

    # reservations
    def change_reserved(self, reservation: Reservation, delta: int) -> None:
        with self.lock:
            reservation.nbytes += delta
            self.reserved += delta
            task = reservation.task
            left = self.by_task.get(task, 0) + delta
            if left:
                self.by_task[task] = left
            else:
                self.by_task.pop(task, None)
            account = self.actor(reservation.actor)
            account.reserved += delta
            account.reserved_peak = max(account.reserved_peak, account.reserved)
            self.sample(reservation.actor, account)
            self.peak = max(self.peak, self.in_use)
            waiters, self.waiters = (self.waiters, []) if delta < 0 else ([], self.waiters)
        for loop, future in waiters:
            loop.call_soon_threadsafe(_wake, future)

    # held chunks
    def add(self, holder: MemoryHolder, chunk: Spillable) -> None:
        nbytes = 0 if chunk.is_spilled else chunk.nbytes
        with self.lock:
            if id(chunk) in self.held:
                return
            self.held[id(chunk)] = (chunk, _Held(holder, nbytes, next(self.clock)))
            self.count(holder, nbytes)

    def count(self, holder: MemoryHolder, delta: int) -> None:
        """Held bytes of ``holder`` change by ``delta`` (under the lock)."""
        holder.resident += delta
        holder.peak = max(holder.peak, holder.resident)
        self.resident += delta
        self.peak = max(self.peak, self.in_use)
        account = self.actor(holder.actor)
        account.held += delta
        account.held_peak = max(account.held_peak, account.held)
        self.sample(holder.actor, account)

    def remove(self, chunk: Spillable) -> None:
        with self.lock:
            entry = self.held.pop(id(chunk), None)
            if entry is not None and not entry[1].leaving:
                self.count(entry[1].holder, -entry[1].nbytes)

    def clear(self, holder: MemoryHolder) -> None:
        with self.lock:
            for key, (_, held) in list(self.held.items()):
                if held.holder is holder:
                    del self.held[key]
                    if not held.leaving:
                        self.count(holder, -held.nbytes)

    def touch(self, chunk: Spillable) -> None:
        with self.lock:
            entry = self.held.get(id(chunk))
            if entry is not None:
                entry[1].used = next(self.clock)

    def victims(self, nbytes: int, *, only: MemoryHolder | None = None) -> list[Spillable]:
        """Held chunks in memory whose spilling frees at least ``nbytes`` (all there are if
        not enough), largest first, and the coldest first among chunks of one size, those
        of holders that spill last after all others. They count as spilled at once, so
        that a concurrent call chooses others."""
        if nbytes <= 0:
            return []
        with self.lock:
            now = next(self.clock)
            resident = [
                (chunk, held)
                for chunk, held in self.held.values()
                if not held.leaving and held.nbytes and (only is None or held.holder is only)
            ]
            resident.sort(
                key=lambda item: (
                    not item[1].holder.spill_last, item[1].nbytes, now - item[1].used
                ),
                reverse=True,
            )
            victims: list[Spillable] = []
            freed = 0
            for chunk, held in resident:
                if freed >= nbytes:
                    break
                held.leaving = True
                freed += held.nbytes
                victims.append(chunk)
                held.holder.spilled += held.nbytes
                self.actor(held.holder.actor).spilled += held.nbytes
                self.spilled += held.nbytes
                self.count(held.holder, -held.nbytes)
            return victims

    async def relieve(self, incoming: int) -> None:
        """Spill held chunks until ``incoming`` more bytes fit under the limit (or nothing
        is left to spill)."""
        if self.limit is None:
            return
        await self.spill(self.victims(self.in_use + incoming - self.limit))

    async def spill(self, victims: Sequence[Spillable]) -> None:
        if not victims:
            return
        try:
            await self.to_thread(_spill_all, victims, self.spills)
        finally:
            with self.lock:
                for chunk in victims:
                    entry = self.held.get(id(chunk))
                    if entry is not None:
                        entry[1].leaving = False
                        entry[1].nbytes = 0  # on disk now; loaded back only once removed


HEADROOM = 0.15
"""The share of a Context's ``memory_limit`` its budget leaves to what it cannot count:
the interpreter and libraries, Polars' temporaries inside a kernel beyond its measured
working memory, the allocators' freed pages not yet returned. Operators hold and
reserve the rest (`MemoryBudget.limit`). Dask's workers keep such a margin too (they
start spilling at 60-70% of their limit). W7 with the data four times a 2 GiB limit:
without it, the process peaked at 1.23-1.27 times the limit; with it, 1.08-1.09."""


class MemoryBudget:
    """The memory one Context's operators may hold and reserve (see the module docstring).

    ``memory_limit`` in bytes, or None for none: the operators get all of it but
    ``headroom`` (a share, `HEADROOM` for a Context), which is `limit`.
    ``to_thread`` runs the spilling (blocking I/O) off the event loop; ``spills``
    is where chunks go; ``in_channels()`` gives the bytes waiting in the Context's
    channels.

    Raises
    ------
    ValueError
        ``headroom`` is not in [0, 1).
    """

    def __init__(
        self,
        memory_limit: int | None,
        spills: SpillDirectory,
        to_thread: ToThread,
        in_channels: Callable[[], int] = lambda: 0,
        *,
        headroom: float = 0.0,
    ) -> None:
        if not 0 <= headroom < 1:
            raise ValueError(f"MemoryBudget: `headroom` must be in [0, 1), got {headroom!r}")
        self.memory_limit = memory_limit
        """What the process should stay within (``Context(memory_limit=...)``), or None."""
        limit = None if memory_limit is None else max(1, int(memory_limit * (1 - headroom)))
        self._ledger = _Ledger(limit, spills, to_thread, in_channels)

    @property
    def limit(self) -> int | None:
        """The bytes operators may hold and reserve (`memory_limit` less the headroom), or
        None without a limit."""
        return self._ledger.limit

    @property
    def in_use(self) -> int:
        """Held bytes in memory plus reserved bytes, now."""
        return self._ledger.in_use

    def available(self) -> int | None:
        """Bytes left under the limit now (None without a limit; 0 when over it)."""
        limit = self._ledger.limit
        return None if limit is None else max(0, limit - self._ledger.in_use)

    def share(self, fraction: float) -> int | None:
        """``fraction`` of the limit, for an operator to size its own state by (the runs
        of a sort, the partitions of a join); None without a limit."""
        limit = self._ledger.limit
        return None if limit is None else max(1, int(limit * fraction))

    def statistics(self) -> MemoryStatistics:
        """The budget's figures now, with a copy of each actor's."""
        ledger = self._ledger
        with ledger.lock:
            actors = {
                name: ActorMemory(a.held_peak, a.reserved_peak, a.spilled, a.waits)
                for name, a in ledger.actors.items()
            }
            return MemoryStatistics(
                ledger.limit,
                ledger.in_use,
                ledger.peak,
                ledger.spilled,
                actors,
                ledger.in_channels(),
            )

    def trace(self, limit: int) -> None:
        """Record every change of an actor's figures from now on (the latest ``limit``),
        for a timeline (`samples`)."""
        with self._ledger.lock:
            self._ledger.samples = deque(maxlen=limit)

    def samples(self) -> tuple[MemorySample, ...]:
        """The figures recorded since `trace` (empty without it), oldest first."""
        with self._ledger.lock:
            return tuple(self._ledger.samples or ())

    def holder(
        self, what: str, *, actor: str | None = None, spill_last: bool = False
    ) -> MemoryHolder:
        """A holder for an operator's state called ``what`` (named in errors), owned by
        ``actor`` (by default the running actor). With ``spill_last``, its chunks are
        spilled only once no other holder's are left in memory: chunks read ahead,
        about to be sent on, or used again and again (a hybrid join's right side)."""
        if actor is None:
            from streamnet._actor import current_actor_name  # the actor module imports this one

            actor = current_actor_name() or ""
        return MemoryHolder(self._ledger, actor, what, spill_last=spill_last)

    async def reserve(
        self, nbytes: int, *, what: str = "working memory", in_hand: bool = False
    ) -> Reservation:
        """Reserve ``nbytes`` of working memory for the running actor (use as ``async with``).

        If they do not fit, held chunks are spilled first (largest and coldest);
        if that is not enough, the call waits until other reservations end.
        ``in_hand`` says that the kernel's input is in memory already, in the
        caller's hands (a chunk received, a piece loaded): at most the whole limit
        is reserved, and when nothing can free memory any more the reservation is
        granted over the limit rather than refused, since only running the kernel
        frees that input.

        Raises
        ------
        MemoryLimitError
            ``nbytes`` exceed the limit itself, or do not fit while no reservation
            of another task could end to make room (the calling task's own end
            only once it goes on); the message names the actor, ``what``, the
            sizes and the limit.
        ValueError
            ``nbytes`` is negative.
        """
        from streamnet._actor import current_actor_name  # the actor module imports this one

        if type(nbytes) is not int or nbytes < 0:
            raise ValueError(f"reserve: `nbytes` must be an int >= 0, got {nbytes!r}")
        ledger = self._ledger
        actor = current_actor_name() or ""
        who = f"actor `{actor}`" if actor else "outside any actor"
        limit = ledger.limit
        if in_hand and limit is not None:
            nbytes = min(nbytes, limit)
        if limit is not None and nbytes > limit:
            raise MemoryLimitError(
                f"{who}: {what} needs {_size(nbytes)}, more than the whole memory "
                f"budget of {_size(limit)}; raise Context(memory_limit=...)"
            )
        waited = False
        while True:
            await ledger.relieve(nbytes)
            with ledger.lock:
                if limit is None or ledger.in_use + nbytes <= limit:
                    break
                if ledger.resident:  # held (by other tasks) while it spilled: spill those too
                    continue
                if ledger.reserved == ledger.by_task.get(_task_key(), 0):
                    # only this task's own reservations could end: waiting would never end
                    if in_hand:
                        break
                    raise MemoryLimitError(
                        f"{who}: {what} needs {_size(nbytes)} but only "
                        f"{_size(max(0, limit - ledger.in_use))} of the memory budget of "
                        f"{_size(limit)} is free, and nothing more can be spilled; "
                        "raise Context(memory_limit=...)"
                    )
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                ledger.waiters.append((loop, future))
                if not waited:
                    ledger.actor(actor).waits += 1
                    waited = True
            started = perf_counter()
            try:
                await future
            finally:
                counter = current_counter()
                if counter is not None:  # the actor's statistics and timeline
                    counter.waited("memory", started, perf_counter())
        reservation = Reservation(ledger, actor, 0)
        reservation.resize(nbytes)
        return reservation

    def try_reserve(self, nbytes: int, *, what: str = "working memory") -> Reservation | None:
        """Reserve ``nbytes`` for the running actor if they fit under the limit now, without
        spilling or waiting; None if they do not.

        For work that may as well wait, such as reading ahead: an actor that runs
        several steps at once reserves the first with `reserve` and the others
        with this, so that it never waits for memory that only its own steps hold.

        Raises
        ------
        ValueError
            ``nbytes`` is negative.
        """
        from streamnet._actor import current_actor_name  # the actor module imports this one

        if type(nbytes) is not int or nbytes < 0:
            raise ValueError(f"try_reserve: `nbytes` must be an int >= 0, got {nbytes!r}")
        ledger = self._ledger
        with ledger.lock:
            if ledger.limit is not None and ledger.in_use + nbytes > ledger.limit:
                return None
        reservation = Reservation(ledger, current_actor_name() or "", 0)
        reservation.resize(nbytes)
        return reservation

    def __repr__(self) -> str:
        ledger = self._ledger
        limit = "no limit" if ledger.limit is None else f"limit {_size(ledger.limit)}"
        return (
            f"<MemoryBudget {limit}: {_size(ledger.in_use)} in use, "
            f"{_size(ledger.spilled)} spilled>"
        )


TaskKey = weakref.ReferenceType[asyncio.Task[Any]] | None


def _task_key() -> TaskKey:
    """The running task, by a weak reference: a reservation kept in a task's frame must
    not make a reference cycle with the task (the cyclic collector's work)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running event loop
        return None
    return None if task is None else weakref.ref(task)


def _spill_all(chunks: Sequence[Spillable], spills: SpillDirectory) -> None:
    for chunk in chunks:
        chunk.spill(spills)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

