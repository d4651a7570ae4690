"""Supervisors with Erlang/OTP semantics for persistent actors.

A supervisor starts its children in order and watches them. When one exits, its
restart type decides whether it comes back (``permanent``: always; ``transient``:
after an abnormal exit only; ``temporary``: never), and the strategy decides who
restarts with it:

- ``one_for_one`` / ``simple_one_for_one``: only that child;
- ``one_for_all``: every child (the others are stopped in reverse start order,
  then all start again in start order);
- ``rest_for_one``: that child and those started after it.

In a group restart, as in OTP, a ``temporary`` child is stopped with the group
but not started again: it leaves the supervisor's children. ``permanent`` and
``transient`` children start again with the group.

As in OTP, the exits of children the supervisor stops itself are not failures,
and an exit of an instance that a group restart already replaced is ignored: two
children failing together under ``one_for_all`` make one restart.

More than ``max_restarts`` restarts within ``max_seconds`` means the trouble is
not local: the supervisor stops its children (reverse start order), fails, and
escalates to its parent supervisor, which treats it like any failed child. At
the top, the failure is recorded in ``runtime.supervision_failures`` and logged.

A restarted actor gets fresh state from its function and keeps its inbox:
messages sent while it restarts wait there for the new instance. The message an
instance held when it crashed (or was cut off by a shutdown) goes to the dead
letters, or back to the inbox once with ``redeliver``; a message it finished (it
came back to ``receive``) is never set aside. A crash is logged once, at WARNING
(its traceback at DEBUG); a supervisor that gives up logs an ERROR at the top.

The class stays whole (above 400 lines): its strategies, restart intensity, backoff
and escalation work under one lock on one ordered set of children; the fate of a
crashed instance's message is ``_redelivery.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any

from channels import StreamnetError
from streamnet._typing import RestartType, SupervisionStrategy, SupervisorState
from streamnet.observe._logging import logger
from streamnet.persistent._child_spec import Backoff, ChildSpec
from streamnet.persistent._instance import LIVE, Instance
from streamnet.persistent._redelivery import Redeliveries
from streamnet.persistent._runtime import ActorRuntime

__all__ = ["RestartIntensityError", "Supervisor", "SupervisorStatistics"]


class RestartIntensityError(StreamnetError, RuntimeError):
    """A supervisor restarted more than ``max_restarts`` times within ``max_seconds``."""


@dataclass(frozen=True, slots=True)
class SupervisorStatistics:
    """A snapshot of one supervisor.

    Attributes
    ----------
    supervisor_id, state, strategy
        The supervisor, where it is (`SupervisorState`), and how it restarts.
    children
        Ids of its children now, in start order.
    restarts
        Restarts it performed (a group restart counts once).
    failure
        Why it gave up (a `RestartIntensityError`, or the error of a restart that
        could not be made), or None.
    pending_exits
        Exits of children it is handling now (deciding, restarting, or waiting out a
        backoff); 0 once it has handled every exit it was told of.
    in_backoff
        Whether a restart waits out its `Backoff` delay now.
    backoff_streak
        Restarts in the current backoff streak (0 without a `Backoff`); a quiet spell
        longer than ``reset_after`` starts a new streak.
    """

    supervisor_id: str
    state: SupervisorState
    strategy: SupervisionStrategy
    children: tuple[str, ...]
    restarts: int
    failure: BaseException | None
    pending_exits: int = 0
    in_backoff: bool = False
    backoff_streak: int = 0


class Supervisor:
    """Starts, watches and restarts child actors (and child supervisors) in a runtime.

    Examples
    --------
    >>> import asyncio
    >>> async def worker(ctx):
    ...     while not ctx.should_terminate:
    ...         try:
    ...             await ctx.receive(timeout=0.1)
    ...         except TimeoutError:
    ...             continue
    >>> async def main():
    ...     async with ActorRuntime() as runtime:
    ...         sup = Supervisor(runtime, "top", [ChildSpec("a", worker), ChildSpec("b", worker)])
    ...         await sup.start()
    ...         states = [runtime.state(c) for c in sup.children]
    ...         await sup.stop()
    ...         return states
    >>> asyncio.run(main())
    ['active', 'active']
    """

    def __init__(
        self,
        runtime: ActorRuntime,
        supervisor_id: str,
        children: Sequence[ChildSpec | Supervisor] = (),
        *,
        strategy: SupervisionStrategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        backoff: Backoff | None = None,
        template: ChildSpec | None = None,
    ) -> None:
        if strategy not in ("one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"):
            raise ValueError(f"Supervisor: unknown strategy {strategy!r}")
        if strategy == "simple_one_for_one" and (template is None or children):
            raise ValueError(
                "Supervisor: simple_one_for_one takes a `template` ChildSpec and no fixed "
                "children; add children with start_child(actor_id, *args)"
            )
        if type(max_restarts) is not int or max_restarts < 0 or max_seconds <= 0:
            raise ValueError("Supervisor: `max_restarts` must be >= 0 and `max_seconds` > 0")
        self.runtime = runtime
        self.supervisor_id = supervisor_id
        self.strategy: SupervisionStrategy = strategy
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self.backoff = backoff
        self.template = template
        self.parent: Supervisor | None = None
        self.state: SupervisorState = "created"
        self.failure: BaseException | None = None
        self.restarts = 0
        """Restarts performed (each restart decision counts once, whatever its strategy)."""
        self._order: list[str] = []
        self._specs: dict[str, ChildSpec | Supervisor] = {}
        for child in children:
            self._add(child)
        self._history: list[float] = []
        self._streak = 0
        self._in_backoff = False
        self._last_restart = 0.0
        self._lock = asyncio.Lock()
        self._redeliveries = Redeliveries()
        self._rng = random.Random(0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._halted = asyncio.Event()
        """Set by ``stop``: calls off a restart waiting out its backoff."""
        self._starts: dict[str, object] = {}
        """Per child supervisor: a token of its latest start, to tell which start an
        escalation comes from."""
        self._watchers: list[Callable[[BaseException], None]] = []

    def _add(self, child: ChildSpec | Supervisor) -> str:
        key = child.actor_id if isinstance(child, ChildSpec) else child.supervisor_id
        if key in self._specs:
            raise ValueError(f"supervisor `{self.supervisor_id}`: child `{key}` is listed twice")
        if isinstance(child, Supervisor):
            child.parent = self
            child.watch(functools.partial(self._supervisor_exited, child))
        self._specs[key] = child
        self._order.append(key)
        return key

    @property
    def children(self) -> list[str]:
        """Ids of the children, in start order."""
        return list(self._order)

    def watch(self, callback: Callable[[BaseException], None]) -> Callable[[], None]:
        """Call ``callback(cause)`` when this supervisor gives up (at once, as it fails).

        A parent supervisor watches its child supervisors this way. Returns the
        function that stops watching.
        """
        self._watchers.append(callback)
        return functools.partial(self._unwatch, callback)

    def _unwatch(self, callback: Callable[[BaseException], None]) -> None:
        with contextlib.suppress(ValueError):
            self._watchers.remove(callback)

    def statistics(self) -> SupervisorStatistics:
        """Its state, children, restarts and failure now."""
        return SupervisorStatistics(
            supervisor_id=self.supervisor_id,
            state=self.state,
            strategy=self.strategy,
            children=tuple(self._order),
            restarts=self.restarts,
            failure=self.failure,
            pending_exits=len(self._tasks),
            in_backoff=self._in_backoff,
            backoff_streak=self._streak,
        )

    # ------------------------------------------------------------------ start / stop
    async def start(self) -> None:
        """Start every child in order.

        A top supervisor is stopped by ``runtime.shutdown()`` before the runtime
        terminates its actors.
        """
        if self.parent is None:
            self.runtime.on_shutdown(self.stop)
        self.state = "running"
        self._halted.clear()
        self._history.clear()
        for key in list(self._order):
            await self._start(key)

    async def start_child(self, child: ChildSpec | str, *args: Any) -> str:
        """Add and start a child: a spec, or for ``simple_one_for_one`` an id and extra args."""
        if isinstance(child, str):
            if self.template is None:
                raise ValueError("start_child(actor_id, ...) needs a simple_one_for_one template")
            t = self.template
            child = dataclasses.replace(t, actor_id=child, args=(*t.args, *args))
        key = self._add(child)
        await self._start(key)
        return key

    async def _start(self, key: str) -> None:
        spec = self._specs[key]
        if isinstance(spec, Supervisor):
            spec.state = "created"
            spec.failure = None
            self._starts[key] = object()
            await spec.start()
            return
        old = self.runtime.instance(key)
        await self.runtime.launch(
            key, spec.fn, *spec.args, inbox=old.inbox if old is not None else None,
            heartbeat_timeout=spec.heartbeat_timeout, device=spec.device, **dict(spec.kwargs),
        )  # fmt: skip
        instance = self.runtime.instance(key)
        assert instance is not None
        instance.on_exit = self._actor_exited
        await self.runtime.activate(key)
        await asyncio.sleep(0)  # as in OTP, a child begins before the next one starts

    async def _stop_child(self, key: str) -> None:
        spec = self._specs[key]
        if isinstance(spec, Supervisor):
            if spec.state == "running":
                await spec.stop()
            return
        actor = self.runtime.instance(key)
        if actor is not None and actor.state in LIVE:
            await self.runtime.terminate(key, timeout=spec.shutdown_timeout)

    async def stop(self) -> None:
        """Stop the children in reverse start order (each drains, then is cancelled after
        its ``shutdown_timeout``).

        A restart under way finishes first; one waiting out its backoff is called
        off. Once ``stop`` returns, the supervisor restarts nothing.
        """
        if self.state == "running":
            self.state = "stopped"
        self._halted.set()
        async with self._lock:
            for key in reversed(self._order):
                await self._stop_child(key)
        handlers = [t for t in self._tasks if t is not asyncio.current_task()]
        if handlers:
            await asyncio.wait(handlers)  # they see the stop and return

    # ------------------------------------------------------------------ exits
    def _current(self, key: str) -> object | None:
        """The running incarnation of a child: its actor instance, or its supervisor's start."""
        spec = self._specs.get(key)
        if isinstance(spec, Supervisor):
            return self._starts.get(key)
        return self.runtime.instance(key)

    def _will_restart(self, key: str, exc: BaseException | None) -> bool:
        spec = self._specs.get(key)
        if spec is None or self.state != "running":
            return False
        restart = _restart_of(spec)
        return restart == "permanent" or (restart == "transient" and exc is not None)

    def _actor_exited(self, instance: Instance, exc: BaseException | None, requested: bool) -> None:
        """A child actor's function ended (called by the runtime, at once)."""
        key = instance.actor_id
        if exc is not None:
            logger.warning(
                "supervisor `%s`: child `%s` failed: %s", self.supervisor_id, key, _describe(exc)
            )
            logger.debug("the failure of child `%s`", key, exc_info=exc)
        if not requested and self._will_restart(key, exc):
            instance.restarting = True  # sends wait in its inbox for the next instance
        self._set_aside(instance)
        if not requested and self.state == "running" and key in self._specs:
            self._schedule(key, instance, exc)

    def _supervisor_exited(self, child: Supervisor, cause: BaseException) -> None:
        """A child supervisor gave up."""
        key = child.supervisor_id
        if self.state == "running" and self._specs.get(key) is child:
            self._schedule(key, self._starts.get(key), cause)

    def _set_aside(self, instance: Instance) -> None:
        spec = self._specs.get(instance.actor_id)
        redeliver = isinstance(spec, ChildSpec) and spec.redeliver and instance.restarting
        self._redeliveries.set_aside(instance, redeliver=redeliver)

    def _schedule(self, key: str, incarnation: object, exc: BaseException | None) -> None:
        task = asyncio.get_running_loop().create_task(
            self._handle_exit(key, incarnation, exc), name=f"{self.supervisor_id}: exit of {key}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle_exit(self, key: str, incarnation: object, exc: BaseException | None) -> None:
        async with self._lock:
            try:
                await self._restart_after(key, incarnation, exc)
            except Exception as error:  # a restart that cannot be made: give up
                await self._escalate(error)

    async def _restart_after(
        self, key: str, incarnation: object, exc: BaseException | None
    ) -> None:
        if self._current(key) is not incarnation or key not in self._specs:
            return  # replaced, or removed, by a group restart: as OTP ignores its exit
        if self.state != "running":
            self._abandon(incarnation, f"supervisor `{self.supervisor_id}` {self.state}")
            return
        if not self._will_restart(key, exc):
            restart = _restart_of(self._specs[key])
            self._forget(key)
            self._abandon(incarnation, f"it is a `{restart}` child")  # already ended for good
            return
        now = monotonic()
        self._history = [t for t in self._history if now - t < self.max_seconds]
        if len(self._history) >= self.max_restarts:
            cause = RestartIntensityError(self._intensity_message(key, exc, len(self._history)))
            cause.__cause__ = exc
            await self._escalate(cause)
            return
        self._history.append(now)
        if self.backoff is not None:
            if now - self._last_restart > self.backoff.reset_after:
                self._streak = 0
            self._in_backoff = True
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.backoff.delay(self._streak, rng=self._rng)):
                        await self._halted.wait()
            finally:
                self._in_backoff = False
            if self._halted.is_set():  # stopped during the backoff: no restart
                self._abandon(incarnation, f"supervisor `{self.supervisor_id}` stopped")
                return
            self._streak += 1
        self._last_restart = monotonic()
        index = self._order.index(key)
        if self.strategy == "one_for_all":
            group = list(self._order)
        elif self.strategy == "rest_for_one":
            group = self._order[index:]
        else:
            group = [key]
        leaving = [m for m in group if m != key and _restart_of(self._specs[m]) == "temporary"]
        for member in group:  # sends to them wait in their inboxes during the restart
            spec, instance = self._specs[member], self.runtime.instance(member)
            if isinstance(spec, ChildSpec) and instance is not None and member not in leaving:
                instance.restarting = True
        for other in reversed(group):
            if other != key:
                await self._stop_child(other)
        for member in leaving:  # temporary: stopped with the group, never restarted (OTP)
            self._forget(member)
        group = [m for m in group if m not in leaving]
        for member in group:
            await self._start(member)
        self.restarts += 1
        logger.info(
            "supervisor `%s` restarted %s after child `%s` %s", self.supervisor_id,
            ", ".join(f"`{m}`" for m in group), key,
            f"failed ({_describe(exc)})" if exc is not None else "exited normally",
        )  # fmt: skip

    def _intensity_message(self, key: str, exc: BaseException | None, restarts: int) -> str:
        what = f"failed ({_describe(exc)})" if exc is not None else "exited normally"
        head = f"supervisor `{self.supervisor_id}` gives up: child `{key}` {what}"
        if self.max_restarts == 0:
            return f"{head} and `max_restarts=0` allows no restart"
        plural = "" if restarts == 1 else "s"
        return (
            f"{head} after {restarts} restart{plural} within {self.max_seconds:g} s; "
            f"`max_restarts={self.max_restarts}` allows no more"
        )

    def _forget(self, key: str) -> None:
        """``key`` is no longer a child."""
        self._order.remove(key)
        del self._specs[key]
        self._redeliveries.forget(key)

    def _abandon(self, incarnation: object, why: str) -> None:
        """The instance of a child will not be restarted after all, because of ``why``."""
        if isinstance(incarnation, Instance):
            incarnation.abandon(why)

    async def _escalate(self, cause: BaseException) -> None:
        self.failure = cause
        text = (
            str(cause)
            if isinstance(cause, RestartIntensityError)
            else f"supervisor `{self.supervisor_id}` gives up: {_describe(cause)}"
        )
        for key in reversed(self._order):  # children exit on request: no restarts meanwhile
            await self._stop_child(key)
        for key in self._order:
            instance = self.runtime.instance(key)
            if isinstance(self._specs[key], ChildSpec) and instance is not None:
                instance.abandon(text)
        # A parent handles the failure (it logs nothing itself); at the top it is an error.
        logger.log(logging.ERROR if self.parent is None else logging.WARNING, "%s", text)
        if self.parent is None:
            self.runtime.supervision_failures.append((self.supervisor_id, cause))
        self.state = "failed"  # last: whoever sees it sees the whole outcome
        for watcher in list(self._watchers):  # a parent handles it as a failed child
            watcher(cause)


def _restart_of(spec: ChildSpec | Supervisor) -> RestartType:
    """A child's restart type; a child supervisor is ``permanent``."""
    return spec.restart if isinstance(spec, ChildSpec) else "permanent"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
