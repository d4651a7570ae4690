"""The loop monitor: which actor started each task, and a warning when the loop is blocked.

While networks run on an event loop, a task factory files every task an actor
starts under that actor (its traffic counter's ``tasks``), so a network's liveness
checks see all of an actor's tasks. The loop also updates a heartbeat; a watchdog
thread warns, naming the actor that runs, when the heartbeat is older than
``Context(blocked_loop_warning=...)`` seconds.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import types
from collections.abc import Coroutine, Generator
from typing import Any, Protocol

from channels.lowlevel import current_counter
from streamnet.network._liveness import frame_location
from streamnet.observe._logging import logger

__all__ = ["LoopMonitor", "Watched", "attach"]


class Watched(Protocol):
    """What the loop monitor needs of a running network."""

    name: str

    @property
    def ctx(self) -> Any: ...

    def actor_of(self, task: asyncio.Task[Any] | None) -> Any: ...


_monitors: dict[asyncio.AbstractEventLoop, LoopMonitor] = {}
_monitors_lock = threading.Lock()


def attach(network: Watched) -> LoopMonitor:
    """Watch the running loop while ``network`` runs on it; :meth:`LoopMonitor.detach` ends it."""
    loop = asyncio.get_running_loop()
    with _monitors_lock:
        monitor = _monitors.get(loop)
        if monitor is None:
            monitor = _monitors[loop] = LoopMonitor(loop)
    monitor.add(network)
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
        counter = current_counter(context)
        tasks = getattr(counter, "tasks", None)
        if tasks is not None:
            tasks.add(task)
        return task  # type: ignore[no-any-return]

    # -------------------------------------------------------------- networks
    def add(self, network: Watched) -> None:
        """Watch the loop for ``network`` too (see :func:`attach`)."""
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
            node = candidate.actor_of(task)
            if node is not None:
                network = candidate
                break
        current_frames = getattr(sys, "_current_frames", None)  # CPython's, documented
        frame = current_frames().get(self.thread_id) if current_frames is not None else None
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
                frame_location(frames, None),
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
            frame_location(frames, code),
            extra={"actor": node.name, "rank": rank},
        )
