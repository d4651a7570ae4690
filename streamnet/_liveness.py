"""Liveness: networks that wait forever, and actors that hold the event loop.

Nothing here touches a channel's fast path. A channel call that has to wait
adds the future it awaits to its actor's traffic counter
(`channels.TrafficCounter.waiting`); the same future sits in the waiters of the
channels that can wake it. A task factory files every task an actor starts
under that actor. From these a running network tells:

- **Deadlock.** An actor all of whose tasks wait on channels is *stalled*. A
  stalled actor can move again only if an actor that serves one of its channels
  (a producer of a channel it receives from, a consumer of one it sends into)
  can move. The actors left stalled once that is settled (:func:`deadlocked`)
  wait forever, as Go's "all goroutines are asleep" says, unless a callback
  the event loop has scheduled can wake one of their tasks: a deadline
  (``asyncio.timeout``, ``asyncio.wait_for``, a channel call's ``timeout=``)
  or a timer that cancels it (:func:`timer_targets`); an actor so woken can
  move again. Otherwise only channel operations complete a channel wait, so
  the finding is stable: one look suffices, and an actor in a kernel, a sleep,
  or a wait on another rank is never part of it.
- **No progress** for ``Context(stall_timeout=...)`` seconds while no kernel
  runs: the catch-all for waits outside channels.
- **A blocked event loop.** The loop updates a heartbeat; a watchdog thread
  warns, naming the actor that runs, when the heartbeat is older than
  ``Context(blocked_loop_warning=...)`` seconds.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import os
import sys
import sysconfig
import threading
import time
import types
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import channels
from channels._channel import Channel
from channels._observer import _counter
from streamnet.observe._logging import logger

__all__ = [
    "ChannelWait",
    "attach",
    "blocked_calls",
    "channel_waits",
    "deadlocked",
    "describe_wait",
    "timer_targets",
    "where_waiting",
]

CHECK_INTERVAL = 0.1
"""Seconds between two looks of a running network at its actors."""

_STDLIB = sysconfig.get_paths()["stdlib"]
_CHANNELS = os.path.dirname(channels.__file__)

N = TypeVar("N")

ChannelWait = tuple[tuple[Channel[Any], ...], str]
"""A blocked channel call: the channels that can wake it, and ``"send"`` or ``"receive"``."""


# ----------------------------------------------------------------------------- deadlock
def blocked_calls(chans: Iterable[Channel[Any]]) -> dict[asyncio.Future[None], ChannelWait]:
    """The future of every call blocked on ``chans`` now, with what it waits on."""
    found: dict[asyncio.Future[None], tuple[list[Channel[Any]], str]] = {}
    for channel in chans:
        for kind, waiters in (("send", channel._send_waiters), ("receive", channel._recv_waiters)):
            for future in waiters:
                if not future.done():
                    found.setdefault(future, ([], kind))[0].append(channel)
    return {future: (tuple(where), kind) for future, (where, kind) in found.items()}


def channel_waits(
    tasks: set[asyncio.Task[Any]],
    waiting: set[asyncio.Future[None]],
    calls: Mapping[asyncio.Future[None], ChannelWait],
) -> list[ChannelWait] | None:
    """What an actor waits on when every one of its ``tasks`` is blocked in a call on one of
    the channels of ``calls``; None when one may run (or waits on a channel not there).

    ``waiting`` holds the futures of the actor's blocked channel calls (each task has at
    most one). Finished tasks are dropped from ``tasks`` on the way.
    """
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
    blocked = [future for future in waiting if not future.done()]  # done: woken, can run
    if len(blocked) != len(tasks):
        return None
    waits = [calls.get(future) for future in blocked]
    return None if any(wait is None for wait in waits) else waits  # type: ignore[return-value]


def deadlocked(
    stalled: Mapping[N, Sequence[ChannelWait]],
    runnable: Iterable[N],
    serving: Callable[[Channel[Any], str], Iterable[N]],
) -> list[N]:
    """The stalled actors that no actor able to run can ever wake.

    ``serving(channel, kind)`` gives the actors that can complete a wait of
    ``kind`` (``"send"`` or ``"receive"``) on ``channel``: its consumers or its
    producers.
    """
    hopeful = set(runnable)
    left = dict(stalled)
    changed = True
    while changed and left:
        changed = False
        for node, waits in list(left.items()):
            if any(
                other in hopeful
                for chans, kind in waits
                for channel in chans
                for other in serving(channel, kind)
            ):
                hopeful.add(node)
                del left[node]
                changed = True
    return list(left)


def timer_targets(loop: asyncio.AbstractEventLoop) -> set[int] | None:
    """The ids of the tasks and futures that a callback scheduled on ``loop`` can wake;
    None when the loop does not show its callbacks (then any task may be woken).

    A callback reaches what it is bound to (``task.cancel``), what that holds as
    its ``_task`` (the `asyncio.Timeout` of ``asyncio.timeout`` and
    ``asyncio.wait_for``), and its arguments (``future.set_result``...).
    Callbacks due later (timers) count, and callbacks due now.
    """
    scheduled = getattr(loop, "_scheduled", None)  # asyncio's own loops (BaseEventLoop)
    ready = getattr(loop, "_ready", None)
    if scheduled is None or ready is None:
        return None
    found: set[int] = set()
    for handle in [*scheduled, *ready]:
        if handle.cancelled():
            continue
        callback, reached = handle._callback, list(handle._args or ())
        while isinstance(callback, functools.partial):
            reached += callback.args
            callback = callback.func
        owner = getattr(callback, "__self__", None)
        reached += [owner, getattr(owner, "_task", None)]
        found.update(id(item) for item in reached if item is not None)
    return found


def describe_wait(wait: ChannelWait, serving: Callable[[Channel[Any], str], Sequence[str]]) -> str:
    """``waits to receive from channel `a` (empty; produced by `x#0`)`` and the like."""
    chans, kind = wait

    def one(channel: Channel[Any]) -> str:
        names = ", ".join(f"`{name}`" for name in serving(channel, kind)) or "no actor"
        if kind == "send":
            held = f"{len(channel)} of {channel.capacity} messages"
            if channel.max_bytes is not None:
                held += f", {channel.statistics().buffered_bytes} of {channel.max_bytes} bytes"
            return f"`{channel.name}` (full: {held}; consumed by {names})"
        return f"`{channel.name}` (empty; produced by {names})"

    verb = "send into" if kind == "send" else "receive from"
    if len(chans) == 1:
        return f"waits to {verb} channel {one(chans[0])}"
    return f"waits to {verb} any of channels " + ", ".join(one(c) for c in chans)


def where_waiting(task: asyncio.Task[Any], code: types.CodeType | None) -> str | None:
    """Where ``task`` is suspended: ``at file.py:12 in `fn```, preferring the frame of
    ``code``; None when it is suspended in a channel call."""
    frames: list[types.FrameType] = []
    awaitable: Any = task.get_coro()
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            frame = getattr(awaitable, "ag_frame", None)
        if frame is not None:
            frames.append(frame)
        following = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
            or getattr(awaitable, "ag_await", None)
        )
        if following is None and frame is None:  # `async for` over an async generator: the
            # awaited step does not show its generator, but holds it (CPython)
            following = next(
                (r for r in gc.get_referents(awaitable) if inspect.isasyncgen(r)), None
            )
        awaitable = following
    if any(frame.f_code.co_filename.startswith(_CHANNELS) for frame in frames):
        return None
    return _location(frames, code)


def _location(frames: Sequence[types.FrameType], code: types.CodeType | None) -> str:
    """The frame to show of ``frames`` (outermost first): ``code``'s, else the innermost of
    the user's code, else the innermost."""
    if not frames:
        return "at an unknown place"
    chosen = next((f for f in reversed(frames) if f.f_code is code), None)
    if chosen is None:
        chosen = next(
            (f for f in reversed(frames) if not f.f_code.co_filename.startswith(_STDLIB)),
            frames[-1],
        )
    return (
        f"at {Path(chosen.f_code.co_filename).name}:{chosen.f_lineno} in `{chosen.f_code.co_name}`"
    )


# ----------------------------------------------------------------------------- loop monitor
class Watched(Protocol):
    """What the loop monitor needs of a running network."""

    name: str

    @property
    def ctx(self) -> Any: ...

    def _actor_of(self, task: asyncio.Task[Any] | None) -> Any: ...


_monitors: dict[asyncio.AbstractEventLoop, LoopMonitor] = {}
_monitors_lock = threading.Lock()


def attach(network: Watched) -> LoopMonitor:
    """Watch the running loop while ``network`` runs on it; :meth:`LoopMonitor.detach` ends it."""
    loop = asyncio.get_running_loop()
    with _monitors_lock:
        monitor = _monitors.get(loop)
        if monitor is None:
            monitor = _monitors[loop] = LoopMonitor(loop)
    monitor._add(network)
    return monitor


class LoopMonitor:
    """What streamnet watches on one event loop while networks run on it.

    It files each new task under the actor whose context starts it (a task
    factory around the loop's own), and keeps the heartbeat and the watchdog
    thread of the blocked-loop warning. Networks on one loop share it; the
    last one to leave restores the loop's task factory.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.networks: list[Watched] = []
        self.previous: Any = None
        self.thread_id = threading.get_ident()
        self.beat = time.monotonic()
        self._handle: asyncio.TimerHandle | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- tasks
    def _create_task(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        previous = self.previous
        if previous is not None:
            task = previous(loop, coro, **kwargs)
        else:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        context = kwargs.get("context")
        counter = context.get(_counter) if context is not None else _counter.get()
        tasks = getattr(counter, "tasks", None)
        if tasks is not None:
            tasks.add(task)
        return task  # type: ignore[no-any-return]

    # -------------------------------------------------------------- networks
    def _add(self, network: Watched) -> None:
        if not self.networks:
            self.previous = self.loop.get_task_factory()
            self.loop.set_task_factory(self._create_task)
            self.thread_id = threading.get_ident()
        self.networks.append(network)
        if self._threshold() is not None and self._thread is None:
            self.beat = time.monotonic()
            self._handle = self.loop.call_later(self._period(), self._beat)
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._watch, name="streamnet-loop-watchdog", daemon=True
            )
            self._thread.start()

    def detach(self, network: Watched) -> None:
        """``network`` stopped running; the last one out restores the loop as it was."""
        self.networks.remove(network)
        if self.networks:
            return
        with _monitors_lock:
            if _monitors.get(self.loop) is self:
                del _monitors[self.loop]
        if self.loop.get_task_factory() == self._create_task:
            self.loop.set_task_factory(self.previous)
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._thread is not None:
            self._stop.set()  # it wakes at once
            self._thread.join(timeout=1.0)
            self._thread = None

    def _threshold(self) -> float | None:
        limits = [n.ctx.blocked_loop_warning for n in list(self.networks)]
        found = [limit for limit in limits if limit is not None]
        return min(found) if found else None

    def _period(self) -> float:
        threshold = self._threshold()
        return min(0.25, threshold / 4) if threshold is not None else 0.25

    # -------------------------------------------------------------- heartbeat and watchdog
    def _beat(self) -> None:
        self.beat = time.monotonic()
        self._handle = self.loop.call_later(self._period(), self._beat)

    def _watch(self) -> None:
        stop = self._stop
        warned = None
        while not stop.wait(self._period()):
            threshold = self._threshold()
            beat = self.beat
            late = time.monotonic() - beat
            if threshold is not None and late > threshold and warned != beat:
                warned = beat
                self._warn(late)

    def _warn(self, late: float) -> None:
        task = asyncio.current_task(self.loop)
        node, network = None, None
        for candidate in list(self.networks):
            node = candidate._actor_of(task)
            if node is not None:
                network = candidate
                break
        frame = sys._current_frames().get(self.thread_id)
        frames: list[types.FrameType] = []
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
        frames.reverse()
        if node is None or network is None:
            logger.warning(
                "the event loop has been blocked for %.1f s, outside any actor (%s); "
                "every actor waits meanwhile",
                late,
                _location(frames, None),
            )
            return
        code = getattr(node.definition.fn, "__code__", None)
        rank = network.ctx.rank
        logger.warning(
            "actor `%s` of network `%s`%s has blocked the event loop for %.1f s (%s); every "
            "other actor waits meanwhile: run blocking work with `await ctx.to_thread(fn, ...)`",
            node.name,
            network.name,
            f" on rank {rank}" if network.ctx.nranks > 1 else "",
            late,
            _location(frames, code),
            extra={"actor": node.name, "rank": rank},
        )
