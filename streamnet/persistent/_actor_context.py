"""PersistentActorContext: what a persistent actor's function receives first.

It receives from the actor's inbox (``receive``, highest priority first), answers
the host (``send``), writes to other actors (``send_to``), starts linked children
(``spawn``) and runs blocking work in the Context's threads (``to_thread``). A
request to terminate wakes a waiting ``receive`` with a `TimeoutError`; an actor
that lets it propagate ends ``terminated``, not ``failed``.

It is not a `streamnet.Context` (what a network's actors share): it is one actor's
own view of the runtime, and it holds the runtime's Context as ``context``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import monotonic
from typing import Any, ParamSpec, TypeVar

from channels.lowlevel import ParkingLot
from streamnet._context import Context
from streamnet._deprecation import keyword_only
from streamnet.persistent._instance import Instance

__all__ = ["PersistentActorContext", "RuntimeServices", "persistent_actor"]

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def persistent_actor(
    actor_id: str | None = None, *, kernel_id: str | None = None
) -> Callable[[F], F]:
    """Mark an ``async def`` as a persistent actor with a default id, ``fn.actor_id``.

    The function takes a :class:`PersistentActorContext` first; launch it with
    ``runtime.launch(actor_id, fn)``. ``kernel_id`` is the name the PyDotCompute
    guide gives ``actor_id`` (``@ring_kernel(kernel_id=...)``), accepted so that code
    written for it runs with only its imports changed.

    Raises
    ------
    TypeError
        The function is not ``async def``.
    """
    default_id = actor_id or kernel_id

    def decorate(fn: F) -> F:
        is_async = inspect.iscoroutinefunction(fn)  # (a check, not a narrowing of F)
        if not is_async:
            raise TypeError(f"persistent_actor: `{fn!r}` must be an `async def` function")
        fn.actor_id = default_id or fn.__name__  # type: ignore[attr-defined]
        return fn

    return decorate


@dataclass(frozen=True, slots=True)
class RuntimeServices:
    """What a `PersistentActorContext` uses of its `ActorRuntime` (the runtime gives it)."""

    context: Context
    send: Callable[[str, Any], Awaitable[None]]
    """Put a message in another actor's inbox, by id."""
    took: Callable[[Instance, Any], None]
    """An instance received a message (it may be a request's)."""
    deliver: Callable[[Instance, Any], Awaitable[None]]
    """An instance sends to the host: a reply to a request, or to its outbox."""
    spawn: Callable[
        [Instance, str, Callable[..., Awaitable[Any]], tuple[Any, ...], dict[str, Any]],
        Awaitable[None],
    ]
    """Launch and activate a child linked to an instance."""


class PersistentActorContext:
    """What a persistent actor's function receives as its first argument (made by the runtime).

    Not a `streamnet.Context`: the runtime's Context is its ``context``.
    """

    def __init__(self, services: RuntimeServices, actor: Instance) -> None:
        self._services = services
        self._actor = actor

    @property
    def actor_id(self) -> str:
        """This actor's id."""
        return self._actor.actor_id

    @property
    def context(self) -> Context:
        """The runtime's Context (thread pool, options)."""
        return self._services.context

    @property
    def should_terminate(self) -> bool:
        """True once the host asked this actor to stop: finish up and return."""
        return self._actor.stopping.is_set()

    @property
    def is_active(self) -> bool:
        """False while deactivated (paused)."""
        return self._actor.active.is_set()

    async def wait_active(self) -> None:
        """Wait until the actor is active again (or asked to terminate)."""
        actor = self._actor
        while not (actor.active.is_set() or actor.stopping.is_set()):
            await actor.wakeups.park()

    @keyword_only("timeout")
    async def receive(self, *, timeout: float | None = None) -> Any:
        """The next message of the inbox (highest priority first).

        While the actor is inactive it receives nothing. A request to terminate
        ends the wait at once, as a timeout does.

        Raises
        ------
        TimeoutError
            Nothing arrived within ``timeout`` seconds, or the actor must stop (an
            actor that lets this one propagate ends ``terminated``, not ``failed``).
        """
        actor = self._actor
        actor.busy = False
        actor.current = None  # back for more: done with the previous message
        actor.last_progress = monotonic()
        inbox = actor.inbox
        if len(inbox) and actor.active.is_set() and not actor.stopping.is_set():
            return self._took(inbox.get_nowait())  # fast path: no waiting
        loop = asyncio.get_running_loop()
        actor.deadline = None if timeout is None else loop.time() + timeout
        if actor.deadline is not None and (
            actor.timer is None or actor.timer.when() > actor.deadline
        ):
            if actor.timer is not None:
                actor.timer.cancel()
            actor.timer = loop.call_at(actor.deadline, self._on_timer)
        try:
            while True:
                if actor.stopping.is_set():
                    actor.stop_signal = TimeoutError(f"actor `{actor.actor_id}` is terminating")
                    raise actor.stop_signal
                if actor.deadline is not None and loop.time() >= actor.deadline:
                    raise TimeoutError(f"actor `{actor.actor_id}` received nothing in {timeout} s")
                if actor.active.is_set():
                    if len(inbox):
                        return self._took(inbox.get_nowait())
                    # Woken by a message, a pause or resume, a stop, or the timer.
                    await ParkingLot.park_any((inbox.get_waiters, actor.wakeups))
                else:
                    await actor.wakeups.park()  # paused: no message wakes it
        finally:
            actor.deadline = None  # the timer stays armed for the next receive

    def _on_timer(self) -> None:
        """The actor's timer fired: wake a receive whose deadline passed, else re-arm."""
        actor = self._actor
        actor.timer = None
        if actor.deadline is None:
            return  # nobody is waiting with a deadline: stay idle until one does
        loop = asyncio.get_running_loop()
        if loop.time() >= actor.deadline:
            actor.wake()
        else:
            actor.timer = loop.call_at(actor.deadline, self._on_timer)

    def _took(self, message: Any) -> Any:
        actor = self._actor
        self._services.took(actor, message)
        actor.counter.messages_in += 1
        actor.current = message
        actor.busy = True
        actor.last_progress = monotonic()
        return message

    def report_statistics(self, source: Callable[[], object] | None) -> None:
        """Have ``runtime.statistics(actor_id)`` carry ``source()`` as its ``device`` figures
        (a device actor's slot; None: nothing more)."""
        self._actor.more_statistics = source

    def heartbeat(self) -> None:
        """Tell the watchdog this actor is making progress (receive and send do too)."""
        self._actor.last_progress = monotonic()

    async def send(self, message: Any) -> None:
        """Answer the host: a reply to a pending ``request`` goes to it, the rest to the outbox."""
        self._actor.counter.messages_out += 1
        self._actor.last_progress = monotonic()
        await self._services.deliver(self._actor, message)

    async def send_to(self, actor_id: str, message: Any) -> None:
        """Put ``message`` in another actor's inbox (by id, wherever it runs in the runtime)."""
        self._actor.counter.messages_out += 1
        await self._services.send(actor_id, message)

    async def spawn(
        self, child_id: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> None:
        """Launch and activate a child actor, linked to this one.

        The link goes one way, and ends children as an OTP supervisor shuts its
        children down: whenever this actor ends (it returns, fails, is terminated,
        or its supervisor restarts it), its spawned children still running are
        terminated first, newest first, each with the grace this actor is
        terminated with (else the runtime's ``shutdown_timeout``). A restarted
        instance can thus spawn them again under the same ids. A child that fails
        does not end its parent.

        Raises
        ------
        ActorStateError
            An actor with id ``child_id`` is still alive.
        """
        await self._services.spawn(self._actor, child_id, fn, args, kwargs)

    async def to_thread(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a blocking ``fn`` in the Context's thread pool."""
        return await self._services.context.to_thread(fn, *args, **kwargs)
