"""Liveness: networks that wait forever, or make no progress.

Nothing here touches a channel's fast path. A channel call that has to wait
parks its task in the channel's parking lot (`channels.lowlevel.ParkingLot`),
which shows the tasks parked and their deadlines; a task factory files every
task an actor starts under that actor. From these a running network tells:

- **Deadlock.** An actor all of whose tasks wait on channels is *stalled*. A
  stalled actor can move again only if an actor that serves one of its channels
  (a producer of a channel it receives from, a consumer of one it sends into)
  can move. The actors left stalled once that is settled (:func:`deadlocked`)
  wait forever, as Go's "all goroutines are asleep" says, unless one of their
  waits ends by itself: a channel call's ``timeout=`` (the lot shows its
  deadline), or a callback the event loop has scheduled that can wake one of
  their tasks, a deadline (``asyncio.timeout``, ``asyncio.wait_for``) or a
  timer that cancels it (:func:`timer_targets`); an actor so woken can move
  again. Otherwise only channel operations complete a channel wait, so
  the finding is stable: one look suffices, and an actor in a kernel, a sleep,
  or a wait on another rank is never part of it.
- **No progress** for ``Context(stall_timeout=...)`` seconds while no kernel
  runs: the catch-all for waits outside channels.

A running network's driver looks at its actors every `CHECK_INTERVAL` seconds and
fails the network with the `DeadlockError` of :func:`deadlock` or :func:`stall`. A
blocked event loop is the loop monitor's to report (``_loop_monitor.py``).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import os
import sysconfig
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import channels
from channels import Channel
from streamnet._actor import ActorNode
from streamnet._errors import DeadlockError

__all__ = [
    "CHECK_INTERVAL",
    "ChannelWait",
    "Watch",
    "blocked_calls",
    "channel_waits",
    "deadlock",
    "deadlocked",
    "describe_wait",
    "frame_location",
    "stall",
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

Watch = set[asyncio.Task[Any]]
"""A running actor's tasks: its own and those it started."""


class Calls(dict[asyncio.Task[Any], ChannelWait]):
    """The tasks blocked in a channel call now, with what each waits on; ``timed`` holds
    those whose wait has a deadline (it ends by itself)."""

    def __init__(self) -> None:
        super().__init__()
        self.timed: set[asyncio.Task[Any]] = set()


Serving = Callable[[Channel[Any], str], list[ActorNode]]
"""The actors that can complete a wait of a kind (``"send"``, ``"receive"``) on a channel."""


# ----------------------------------------------------------------------------- deadlock
def blocked_calls(chans: Iterable[Channel[Any]]) -> Calls:
    """Every task blocked in a call on ``chans`` now (parked in their lots), with what it
    waits on; a task that waits on several channels at once (``recv_any``) waits on all."""
    found: dict[asyncio.Task[Any], tuple[list[Channel[Any]], str]] = {}
    calls = Calls()
    for channel in chans:
        for kind, lot in (("send", channel.send_waiters), ("receive", channel.recv_waiters)):
            for parked in lot.parked():
                if parked.task is None:
                    continue
                found.setdefault(parked.task, ([], kind))[0].append(channel)
                if parked.deadline is not None:
                    calls.timed.add(parked.task)
    calls.update((task, (tuple(where), kind)) for task, (where, kind) in found.items())
    return calls


def channel_waits(
    tasks: Watch, calls: Mapping[asyncio.Task[Any], ChannelWait]
) -> list[ChannelWait] | None:
    """What an actor waits on when every one of its ``tasks`` is blocked in a call on one of
    the channels of ``calls``; None when one may run (or waits on a channel not there).

    Finished tasks are dropped from ``tasks`` on the way. A woken task has left its
    lot, so it counts as one that may run.
    """
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
    waits = [calls.get(task) for task in tasks]
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
        callback = getattr(handle, "_callback", None)  # asyncio's handles show them privately
        reached = list(getattr(handle, "_args", None) or ())
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
    return frame_location(frames, code)


def frame_location(frames: Sequence[types.FrameType], code: types.CodeType | None) -> str:
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


# ----------------------------------------------------------------------------- findings
def deadlock(
    network: str,
    live: Sequence[ActorNode],
    watched: Mapping[ActorNode, Watch],
    calls: Calls,
    serving: Serving,
) -> DeadlockError | None:
    """The error of ``network`` (its name in messages) when some of its ``live`` actors
    wait on channels that only they could serve, or None."""
    stalled: dict[ActorNode, list[ChannelWait]] = {}
    runnable: list[ActorNode] = []
    for node in live:
        waits = channel_waits(watched[node], calls)
        if waits is None or not calls.timed.isdisjoint(watched[node]):
            runnable.append(node)  # it can move, waits on a channel we cannot judge, or
        else:  # waits with a deadline: that wait ends by itself
            stalled[node] = waits
    stuck = deadlocked(stalled, runnable, serving) if stalled else []
    if stuck:  # unless a timer can wake one of them: a wait with a deadline ends by itself
        woken = timer_targets(asyncio.get_running_loop())
        for node in stuck:
            if woken is None or any(id(t) in woken for t in watched[node]):
                runnable.append(node)
                del stalled[node]
        stuck = deadlocked(stalled, runnable, serving) if stalled else []
    if not stuck:
        return None
    lines = [
        f"actor `{node.name}` {describe_wait(wait, _names(serving))}"
        for node in stuck
        for wait in stalled[node]
    ]
    return DeadlockError(
        f"{network} is deadlocked: these actors wait "
        "on channels that only they could serve, so none of them can move:\n"
        + "\n".join(f"  - {line}" for line in lines),
        lines,
    )


def stall(
    network: str,
    live: Sequence[ActorNode],
    watched: Mapping[ActorNode, Watch],
    calls: Mapping[asyncio.Task[Any], ChannelWait],
    serving: Serving,
    idle: float,
    timeout: float,
) -> DeadlockError:
    """The error of ``network`` when nothing moved for ``idle`` seconds, more than its
    ``stall_timeout`` (``timeout``): what each of its ``live`` actors waits on."""
    lines = []
    for node in live:
        tasks = watched[node]
        code = getattr(node.definition.fn, "__code__", None)
        blocked = [calls[task] for task in tasks if task in calls]
        whats = [describe_wait(wait, _names(serving)) for wait in blocked]
        if len(blocked) < sum(not task.done() for task in tasks):
            whats += [
                f"waits outside any channel, {where}"
                for task in list(tasks)
                if not task.done() and (where := where_waiting(task, code)) is not None
            ]
        lines += [f"actor `{node.name}` {what}" for what in dict.fromkeys(whats)]
    return DeadlockError(
        f"{network} made no progress for "
        f"{idle:.1f} s (Context(stall_timeout={timeout:g})): no "
        "message moved, no actor ended and no kernel ran; its actors wait:\n"
        + "\n".join(f"  - {line}" for line in lines),
        lines,
    )


def _names(serving: Serving) -> Callable[[Channel[Any], str], list[str]]:
    return lambda channel, kind: [node.name for node in serving(channel, kind)]
