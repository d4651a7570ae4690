"""ActorRuntime: long-lived actors with a lifecycle, mailboxes and request/response from the host.

Persistent actors run on the same Context as networks (its thread pool, its
traffic counters); their mailboxes are :class:`channels.Mailbox` priority queues.

Lifecycle (illegal transitions raise `ActorStateError`)::

    launch ──> launched ──activate──> active <──reactivate── inactive
                                        └──────deactivate──────┘
    launched / active / inactive ──terminate──> terminating ──> terminated
    an actor whose function raises ──> failed

A request to terminate wakes a waiting ``receive`` with a `TimeoutError`; an actor
that lets it propagate ends ``terminated``, not ``failed``.

An actor that ends for good (no supervisor restarts it) has its mailboxes closed:
a send blocked on its full inbox fails with `ActorStateError` instead of waiting
forever, and so does a host ``receive`` once the outbox is empty. Actors started
with ``ctx.spawn`` are linked to their parent: they are terminated before it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from time import monotonic
from types import TracebackType
from typing import Any, Literal

from channels._channel import _forget_waiter
from channels._mailbox import Mailbox, MailboxClosed, MailboxStatistics, OverflowPolicy
from channels._observer import TrafficCounter, observe
from streamnet._context import Context
from streamnet._errors import ActorStateError, WatchdogTimeout
from streamnet.observe._logging import logger

__all__ = [
    "ActorContext",
    "ActorLifecycle",
    "ActorRuntime",
    "PersistentActorStatistics",
    "persistent_actor",
]


def persistent_actor(
    actor_id: str | None = None, *, kernel_id: str | None = None
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Mark an ``async def`` as a persistent actor with a default id (``kernel_id`` is an alias).

    The function takes an :class:`ActorContext` first; launch it with
    ``runtime.launch(actor_id, fn)``.

    Raises
    ------
    TypeError
        The function is not ``async def``.
    """
    default_id = actor_id or kernel_id

    def decorate(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        if not asyncio.iscoroutinefunction(fn):
            raise TypeError(f"persistent_actor: `{fn!r}` must be an `async def` function")
        fn.actor_id = default_id or fn.__name__  # type: ignore[attr-defined]
        return fn

    return decorate


ActorLifecycle = Literal["launched", "active", "inactive", "terminating", "terminated", "failed"]
"""Where a persistent actor is in its life."""

_LIVE = ("launched", "active", "inactive")

_ABANDONED_KEPT = 10_000
"""How many requests that ended without their reply the runtime remembers, to drop the reply."""


@dataclass(frozen=True, slots=True)
class PersistentActorStatistics:
    """A snapshot of one persistent actor, over every instance started under its id.

    Attributes
    ----------
    actor_id, state
        The actor and where it is in its life now.
    launches
        Instances started under this id: 1, plus one per restart (or relaunch).
    messages_in, messages_out
        Messages it received, and sent (to the host or to other actors).
    late_replies
        Replies dropped because their request had already ended (timed out,
        cancelled, or failed with the actor).
    inbox, outbox
        Its mailboxes; the inbox's ``dead_letters`` counts the messages set aside.
    """

    actor_id: str
    state: ActorLifecycle
    launches: int
    messages_in: int
    messages_out: int
    late_replies: int
    inbox: MailboxStatistics
    outbox: MailboxStatistics


@dataclass(eq=False)
class _Actor:
    actor_id: str
    fn: Callable[..., Awaitable[Any]]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inbox: Mailbox[Any]
    outbox: Mailbox[Any]
    state: ActorLifecycle = "launched"
    task: asyncio.Task[Any] | None = None
    active: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    failure: BaseException | None = None
    parent: str | None = None
    children: list[_Actor] = field(default_factory=list)
    """The instances it spawned (linked: terminated before it ends), oldest first."""
    counter: TrafficCounter = field(default_factory=TrafficCounter)
    current: Any = None
    """The message being processed (the last one received), for redelivery after a crash."""
    heartbeat_timeout: float | None = None
    last_progress: float = 0.0
    busy: bool = False
    """True from a receive until the actor's next receive: it holds input."""
    watchdog_fired: bool = False
    waker: asyncio.Future[None] | None = None
    deadline: float | None = None
    """When the current receive gives up (loop time), or None."""
    timer: asyncio.TimerHandle | None = None
    """One timer per actor, reused across receives: it re-arms when it fires early."""
    on_exit: Callable[[_Actor, BaseException | None, bool], None] | None = None
    """Called when the actor's function ends: (this instance, exception or None, shut down on
    request). Whoever sets it (a supervisor) also logs the failures."""
    restarting: bool = False
    """Set by a supervisor that will start a new instance on this inbox: sends are accepted."""
    stop_signal: BaseException | None = None
    """The error ``receive`` raised to tell the actor to stop: not a failure if it escapes."""
    launches: int = 1
    late_replies: int = 0


@dataclass(eq=False, slots=True)
class _Request:
    """A request waiting for its reply."""

    actor_id: str
    future: asyncio.Future[Any]
    holder: _Actor | None = None
    """The instance of ``actor_id`` that last took the request's message, or None while
    the message is on its way (its send waits for room, or it waits in the inbox)."""


class ActorContext:
    """What a persistent actor's function receives as its first argument."""

    def __init__(self, runtime: ActorRuntime, actor: _Actor) -> None:
        self._runtime = runtime
        self._actor = actor

    @property
    def actor_id(self) -> str:
        """This actor's id."""
        return self._actor.actor_id

    @property
    def context(self) -> Context:
        """The runtime's Context (thread pool, options)."""
        return self._runtime.ctx

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
        if self._actor.active.is_set() or self._actor.stopping.is_set():
            return
        waits = [
            asyncio.ensure_future(e.wait()) for e in (self._actor.active, self._actor.stopping)
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def receive(self, timeout: float | None = None) -> Any:
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
        if inbox._heap and actor.active.is_set() and not actor.stopping.is_set():
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
                if actor.active.is_set() and inbox._heap:
                    return self._took(inbox.get_nowait())
                # One future, woken by a message, a pause or resume, a stop, or the timer.
                waker: asyncio.Future[None] = loop.create_future()
                actor.waker = waker
                if actor.active.is_set():
                    inbox._getters.append(waker)
                try:
                    await waker
                except asyncio.CancelledError:
                    _forget_waiter(inbox._getters, waker)
                    raise
                finally:
                    actor.waker = None
                    if waker in inbox._getters:
                        inbox._getters.remove(waker)
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
            _wake(actor)
        else:
            actor.timer = loop.call_at(actor.deadline, self._on_timer)

    def _took(self, message: Any) -> Any:
        actor = self._actor
        pending = self._runtime._pending
        if pending:  # a request's message: this instance answers it, or fails it by crashing
            request = pending.get(getattr(message, "message_id", None))
            if request is not None and request.actor_id == actor.actor_id:
                request.holder = actor
        actor.counter.messages_in += 1
        actor.current = message
        actor.busy = True
        actor.last_progress = monotonic()
        return message

    def heartbeat(self) -> None:
        """Tell the watchdog this actor is making progress (receive and send do too)."""
        self._actor.last_progress = monotonic()

    async def send(self, message: Any) -> None:
        """Answer the host: a reply to a pending ``request`` goes to it, the rest to the outbox."""
        self._actor.counter.messages_out += 1
        self._actor.last_progress = monotonic()
        await self._runtime._deliver_to_host(self._actor, message)

    async def send_to(self, actor_id: str, message: Any) -> None:
        """Put ``message`` in another actor's inbox (by id, wherever it runs in the runtime)."""
        self._actor.counter.messages_out += 1
        await self._runtime.send(actor_id, message)

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
        runtime = self._runtime
        await runtime.launch(child_id, fn, *args, **kwargs)
        child = runtime._actors[child_id]
        child.parent = self.actor_id
        actor = self._actor
        actor.children = [c for c in actor.children if c.task is not None and not c.task.done()]
        actor.children.append(child)
        await runtime.activate(child_id)

    async def to_thread(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking ``fn`` in the Context's thread pool."""
        return await self._runtime.ctx.to_thread(fn, *args, **kwargs)


def _wake(actor: _Actor) -> None:
    waker = actor.waker
    if waker is not None and not waker.done():
        waker.set_result(None)


class ActorRuntime:
    """Runs persistent actors and lets the host talk to them. Use with ``async with``.

    Parameters
    ----------
    ctx
        The Context the actors run on (a new one, closed at shutdown, by default).
    mailbox_capacity, overflow
        Defaults for each actor's inbox (``launch`` can override them).
    shutdown_timeout
        The grace an actor gets to stop before it is cancelled, when ``terminate``
        or ``shutdown`` is given none, and for the children an ending actor spawned.

    Examples
    --------
    >>> import asyncio
    >>> async def echo(ctx):
    ...     while not ctx.should_terminate:
    ...         try:
    ...             msg = await ctx.receive(timeout=0.1)
    ...         except TimeoutError:
    ...             continue
    ...         await ctx.send(msg)
    >>> async def main():
    ...     async with ActorRuntime() as runtime:
    ...         await runtime.launch("echo", echo)
    ...         await runtime.activate("echo")
    ...         await runtime.send("echo", "hello")
    ...         return await runtime.receive("echo", timeout=1)
    >>> asyncio.run(main())
    'hello'
    """

    def __init__(
        self,
        ctx: Context | None = None,
        *,
        mailbox_capacity: int | None = 1024,
        overflow: OverflowPolicy = "block",
        shutdown_timeout: float = 5.0,
    ) -> None:
        self._owns_ctx = ctx is None
        self.shutdown_timeout = shutdown_timeout
        """The grace an actor gets to stop before it is cancelled, when no other is given."""
        self.ctx = ctx if ctx is not None else Context()
        self._mailbox_capacity = mailbox_capacity
        self._overflow: OverflowPolicy = overflow
        self._actors: dict[str, _Actor] = {}
        self._pending: dict[Any, _Request] = {}
        self._abandoned: dict[Any, str] = {}
        """Requests that ended without their reply (oldest first, bounded): key -> actor id."""
        self._watchdog: asyncio.Task[None] | None = None
        self._deadlines: dict[Any, tuple[float, str, float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._stop_first: list[Callable[[], Awaitable[None]]] = []
        """What ``shutdown`` awaits before it terminates actors: the top supervisors' ``stop``."""
        self._closed = False
        self.supervision_failures: list[tuple[str, BaseException]] = []
        """(supervisor id, cause) for every top-level supervisor that gave up."""

    async def __aenter__(self) -> ActorRuntime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # ------------------------------------------------------------------ lifecycle
    def _get(self, actor_id: str) -> _Actor:
        try:
            return self._actors[actor_id]
        except KeyError:
            known = sorted(self._actors)
            raise KeyError(f"no actor `{actor_id}` in this runtime; actors are {known}") from None

    def _require(self, actor: _Actor, action: str, allowed: tuple[str, ...]) -> None:
        if actor.state not in allowed:
            raise ActorStateError(
                f"cannot {action} actor `{actor.actor_id}`: it is {actor.state}, "
                f"and {action} needs it {' or '.join(allowed)}"
            )

    def state(self, actor_id: str) -> ActorLifecycle:
        """The actor's lifecycle state."""
        return self._get(actor_id).state

    def failure(self, actor_id: str) -> BaseException | None:
        """The exception a failed actor raised, or None."""
        return self._get(actor_id).failure

    def dead_letters(self, actor_id: str) -> list[Any]:
        """Messages set aside from the actor's inbox, oldest first: dropped by
        ``overflow="drop_oldest"``, or crashed on under a supervisor."""
        return list(self._get(actor_id).inbox.dead_letters)

    @property
    def actor_ids(self) -> list[str]:
        """Ids of every actor launched, in launch order."""
        return list(self._actors)

    async def launch(
        self,
        actor_id: str,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        mailbox_capacity: int | None = None,
        overflow: OverflowPolicy | None = None,
        inbox: Mailbox[Any] | None = None,
        heartbeat_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Start ``fn(actor_context, *args, **kwargs)`` as actor ``actor_id``, not yet active.

        ``inbox`` reuses a mailbox (a supervisor restarting an actor keeps its
        inbox, so messages sent during the restart reach the new instance); a
        closed one is reopened, with the messages still in it.
        With ``heartbeat_timeout``, a watchdog fails the actor (`WatchdogTimeout`)
        when it holds input (a message received and not done with, or messages
        waiting) but shows no progress (receive, send or ``ctx.heartbeat()``) for
        that many seconds.

        Raises
        ------
        ActorStateError
            An actor with this id is still alive, or the runtime is shut down.
        TypeError
            ``fn`` is not an ``async def`` function.
        """
        if not asyncio.iscoroutinefunction(fn):
            raise TypeError(f"launch: actor `{actor_id}` needs an `async def` function, got {fn!r}")
        if self._closed:
            raise ActorStateError(f"cannot launch actor `{actor_id}`: the runtime is shut down")
        old = self._actors.get(actor_id)
        if old is not None and old.state in (*_LIVE, "terminating"):
            raise ActorStateError(
                f"cannot launch actor `{actor_id}`: one with this id is {old.state}"
            )
        capacity = mailbox_capacity if mailbox_capacity is not None else self._mailbox_capacity
        policy = overflow if overflow is not None else self._overflow
        actor = _Actor(
            actor_id, fn, args, kwargs,
            inbox=inbox if inbox is not None else Mailbox(capacity=capacity, overflow=policy, name=f"{actor_id}.inbox"),
            outbox=old.outbox if old is not None else Mailbox(capacity=None, name=f"{actor_id}.outbox"),
        )  # fmt: skip
        actor.inbox.reopen()  # closed if the previous instance had ended for good
        actor.outbox.reopen()
        actor.heartbeat_timeout = heartbeat_timeout
        actor.last_progress = monotonic()
        if old is not None:  # statistics are per id, over every instance
            actor.launches = old.launches + 1
            actor.late_replies = old.late_replies
            actor.counter.messages_in = old.counter.messages_in
            actor.counter.messages_out = old.counter.messages_out
        self._actors[actor_id] = actor
        actor.task = asyncio.get_running_loop().create_task(self._run(actor), name=actor_id)
        if heartbeat_timeout is not None:
            self._ensure_watchdog()

    async def _run(self, actor: _Actor) -> None:
        failure: BaseException | None = None
        with observe(actor.counter):
            try:
                await actor.fn(ActorContext(self, actor), *actor.args, **actor.kwargs)
            except asyncio.CancelledError:
                if not actor.watchdog_fired:
                    for child in actor.children:  # cancelled from outside: so are its links
                        if child.task is not None:
                            child.task.cancel()
                    self._ended(actor, None)
                    raise
                failure = WatchdogTimeout(
                    f"actor `{actor.actor_id}` held input without progress for more than "
                    f"{actor.heartbeat_timeout} s"
                )
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()  # the watchdog's own cancellation ends here
            except Exception as exc:
                if exc is actor.stop_signal and actor.stopping.is_set():
                    actor.current = None  # asked to stop while waiting: a clean end
                else:
                    exc.add_note(f"raised in persistent actor `{actor.actor_id}`")
                    failure = exc
            else:
                actor.current = None  # it returned: done with every message it took
        try:  # linked children end first: a new instance may spawn them again
            await self._stop_children(actor, self.shutdown_timeout)
        finally:
            self._ended(actor, failure)

    def _ended(self, actor: _Actor, exc: BaseException | None) -> None:
        """The actor's function ended: record how, tell its owner, settle its requests."""
        if exc is None:
            actor.state = "terminated"
        else:
            actor.state = "failed"
            actor.failure = exc
            if actor.on_exit is None:  # an owner (a supervisor) logs it its own way
                logger.error("persistent actor %s failed: %s", actor.actor_id, exc, exc_info=exc)
        if actor.timer is not None:
            actor.timer.cancel()
            actor.timer = None
        if actor.on_exit is not None:
            actor.on_exit(actor, exc, actor.stopping.is_set())
        self._settle(actor)

    def _settle(self, actor: _Actor, why: str | None = None) -> None:
        """An instance ended: settle its requests and, unless a new instance will
        start on its inbox, close its mailboxes (it ended for good, ``why`` says
        why no new instance comes, when a supervisor decided so)."""
        ended = f"actor `{actor.actor_id}` is {actor.state}"
        if why is not None:
            ended += f" and was not restarted: {why}"
        self._settle_requests(actor, ended)
        if not actor.restarting and self._actors.get(actor.actor_id) is actor:
            actor.inbox.close(ended)  # wakes sends blocked on a full inbox
            actor.outbox.close(ended)  # the host still gets what is in it

    def _settle_requests(self, actor: _Actor, ended: str) -> None:
        """Fail the pending requests to an instance that ended, which it or no other will answer.

        A request whose message this instance took (and did not answer) fails with
        its exception, unless the message went back to the inbox (``redeliver``).
        When a new instance will start on the same inbox, every other request stays
        pending for it: its message waits in the inbox, or its send waits for room.
        Otherwise they fail too: nobody took them, and nobody will.
        """
        owned = [key for key, r in self._pending.items() if r.actor_id == actor.actor_id]
        if not owned:
            return
        queued: set[Any] | None = None
        for key in owned:
            request = self._pending[key]
            if request.holder is actor:
                if queued is None:
                    queued = {getattr(m, "message_id", None) for _, _, m in actor.inbox._heap}
                if key in queued:
                    request.holder = None  # given back: the next instance takes it
                    continue
                error = actor.failure or ActorStateError(
                    f"actor `{actor.actor_id}` ended without replying: it is {actor.state}"
                )
            elif actor.restarting:
                continue
            else:
                error = ActorStateError(f"no reply from actor `{actor.actor_id}`: {ended}")
                error.__cause__ = actor.failure
            del self._pending[key]
            if not request.future.done():
                request.future.set_exception(error)

    def _abandon(self, actor: _Actor, why: str) -> None:
        """A restart of ``actor`` will not happen after all (``why``): it ended for good."""
        actor.restarting = False
        self._settle(actor, why)

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="watchdog")

    async def _watch(self) -> None:
        """Fail live actors that hold input but made no progress within their timeout."""
        while True:
            watched = [
                a for a in self._actors.values()
                if a.heartbeat_timeout is not None and a.state in ("active", "inactive")
            ]  # fmt: skip
            if not watched:
                return
            now = monotonic()
            for actor in watched:
                holds_input = actor.busy or len(actor.inbox) > 0
                idle_for = now - actor.last_progress
                assert actor.heartbeat_timeout is not None
                if holds_input and actor.state == "active" and idle_for > actor.heartbeat_timeout:
                    actor.watchdog_fired = True
                    assert actor.task is not None
                    actor.task.cancel()
            period = min(a.heartbeat_timeout for a in watched if a.heartbeat_timeout) / 4
            await asyncio.sleep(period)

    async def activate(self, actor_id: str) -> None:
        """Let a launched actor start receiving."""
        actor = self._get(actor_id)
        self._require(actor, "activate", ("launched",))
        actor.state = "active"
        actor.active.set()
        _wake(actor)

    async def deactivate(self, actor_id: str) -> None:
        """Pause an active actor: it receives nothing until reactivated."""
        actor = self._get(actor_id)
        self._require(actor, "deactivate", ("active",))
        actor.state = "inactive"
        actor.active.clear()
        _wake(actor)

    async def reactivate(self, actor_id: str) -> None:
        """Resume a deactivated actor."""
        actor = self._get(actor_id)
        self._require(actor, "reactivate", ("inactive",))
        actor.state = "active"
        actor.active.set()
        _wake(actor)

    async def terminate(self, actor_id: str, timeout: float | None = None) -> None:
        """Ask the actor to stop; cancel it after ``timeout`` seconds (default: the
        runtime's ``shutdown_timeout``).

        The children it spawned are terminated first, newest first, each with the
        same grace.
        """
        actor = self._get(actor_id)
        self._require(actor, "terminate", _LIVE)
        await self._terminate(actor, self.shutdown_timeout if timeout is None else timeout)

    async def _terminate(self, actor: _Actor, timeout: float) -> None:
        """Stop an instance (also one already terminating or whose function ended):
        its linked children first, then itself; cancel whoever outlasts ``timeout``."""
        await self._stop_children(actor, timeout)
        if actor.state in _LIVE:
            actor.state = "terminating"
            actor.stopping.set()
            _wake(actor)
        task = actor.task
        assert task is not None
        done, _ = await asyncio.wait([task], timeout=timeout)
        if not done:
            task.cancel()
            await asyncio.wait([task])  # a cancellation of the caller still propagates
        if actor.state == "terminating":
            actor.state = "terminated"

    async def _stop_children(self, actor: _Actor, timeout: float) -> None:
        """Terminate the linked children of ``actor`` that still run, newest first."""
        for child in reversed(actor.children):
            if child.task is not None and not child.task.done():
                await self._terminate(child, timeout)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop the supervisors (newest first: they restart nothing after), then
        terminate every live actor, children before parents, newest first, each
        with ``timeout`` seconds of grace (default: ``shutdown_timeout``)."""
        self._closed = True
        for stop in reversed(self._stop_first):
            await stop()
        for actor_id in reversed(list(self._actors)):
            actor = self._actors[actor_id]
            if actor.state in _LIVE and actor.parent is None:
                await self.terminate(actor_id, timeout)
        for actor in self._actors.values():
            if actor.state in _LIVE:
                await self.terminate(actor.actor_id, timeout)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._owns_ctx:
            self.ctx.close()

    # ------------------------------------------------------------------ host mailboxes
    async def send(self, actor_id: str, message: Any, timeout: float | None = None) -> None:
        """Put ``message`` in the actor's inbox (its overflow policy applies when full).

        While a supervisor restarts the actor, the message waits in its inbox for
        the new instance. With ``overflow="block"``, wait at most ``timeout``
        seconds for room.

        Raises
        ------
        ActorStateError
            The actor is no longer alive, and no restart is under way; or it
            ended for good while the send waited for room (nothing was sent).
        MailboxFull
            The inbox is full and its policy is ``"reject"``.
        TimeoutError
            The inbox stayed full for ``timeout`` seconds; nothing was sent.
        """
        actor = self._get(actor_id)
        if actor.state not in _LIVE and not actor.restarting:
            self._require(actor, "send to", _LIVE)
        try:
            await actor.inbox.put(message, timeout)
        except MailboxClosed as closed:
            raise ActorStateError(
                f"cannot send to actor `{actor_id}`: it ended while the send waited for room, "
                f"and nothing was sent ({closed})"
            ) from closed

    async def receive(self, actor_id: str, timeout: float | None = None) -> Any:
        """The next message the actor sent to the host (not the replies of ``request``).

        Raises
        ------
        ActorStateError
            The actor ended for good and every message it sent was received.
        TimeoutError
            Nothing came within ``timeout`` seconds.
        """
        try:
            return await self._get(actor_id).outbox.get(timeout)
        except MailboxClosed as closed:
            raise ActorStateError(
                f"cannot receive from actor `{actor_id}`: it ended, and every message it "
                f"sent was received ({closed})"
            ) from closed

    async def request(self, actor_id: str, message: Any, timeout: float | None = None) -> Any:
        """Send ``message`` and return the reply whose ``correlation_id`` is its ``message_id``.

        Other messages the actor sends meanwhile stay in its outbox; concurrent
        requests each get their own reply. ``timeout`` covers the whole request:
        waiting for room in a full inbox, then for the reply. A reply that comes
        after its request ended (timed out, cancelled, failed) is dropped and
        counted in ``statistics(actor_id).late_replies``.

        Raises
        ------
        TimeoutError
            No reply within ``timeout`` seconds.
        TypeError
            ``message`` has no ``message_id`` (make it a ``@message``).
        ActorStateError
            The actor ended without replying, or ended for good before it took
            the message (the error says why no new instance came).
        Exception
            The instance that took the message failed before replying: its
            exception. A request still on its way when the actor crashes (its
            send waits for room, or it waits in the inbox) is not failed by
            another message's crash: under a supervisor, the new instance takes it.
        """
        key = getattr(message, "message_id", None)
        if key is None:
            raise TypeError(
                f"request: the message needs a `message_id` (use @message), got {message!r}"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[key] = _Request(actor_id, future)
        if timeout is not None:
            deadline = loop.time() + timeout
            self._deadlines[key] = (deadline, actor_id, timeout)
            if self._timer is None or self._timer.when() > deadline:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_at(deadline, self._expire_requests)
        try:
            if timeout is None:
                await self.send(actor_id, message)
            else:
                try:
                    await self.send(actor_id, message, timeout)  # waits only when full
                except TimeoutError as full:
                    raise TimeoutError(
                        f"actor `{actor_id}` did not reply within {timeout} s: the request "
                        f"was never sent ({full})"
                    ) from None
            return await future
        except BaseException:
            self._abandoned[key] = actor_id  # its reply, if one comes, is dropped
            if len(self._abandoned) > _ABANDONED_KEPT:
                del self._abandoned[next(iter(self._abandoned))]
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: the caller gets it or a timeout in its stead
            raise
        finally:
            self._pending.pop(key, None)
            self._deadlines.pop(key, None)  # the timer stays armed for later requests

    def _expire_requests(self) -> None:
        """Fail the requests whose deadline passed; re-arm for the earliest of the rest."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for key, (deadline, actor_id, timeout) in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[key]
                pending = self._pending.pop(key, None)
                if pending is not None and not pending.future.done():
                    pending.future.set_exception(
                        TimeoutError(f"actor `{actor_id}` did not reply within {timeout} s")
                    )
        if self._deadlines:
            earliest = min(d for d, _, _ in self._deadlines.values())
            self._timer = loop.call_at(earliest, self._expire_requests)

    async def _deliver_to_host(self, actor: _Actor, message: Any) -> None:
        key = getattr(message, "correlation_id", None)
        pending = self._pending.pop(key, None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(message)
            return
        if key is not None and self._abandoned.pop(key, None) is not None:
            actor.late_replies += 1
            logger.debug("actor %s replied after its request ended: reply dropped", actor.actor_id)
            return
        await actor.outbox.put(message)

    def statistics(self, actor_id: str) -> PersistentActorStatistics:
        """What the actor did over all its instances, and its mailboxes now."""
        actor = self._get(actor_id)
        return PersistentActorStatistics(
            actor_id=actor_id,
            state=actor.state,
            launches=actor.launches,
            messages_in=actor.counter.messages_in,
            messages_out=actor.counter.messages_out,
            late_replies=actor.late_replies,
            inbox=actor.inbox.statistics(),
            outbox=actor.outbox.statistics(),
        )
