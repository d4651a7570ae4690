"""ActorRuntime: long-lived actors with a lifecycle, mailboxes and request/response from the host.

Persistent actors run on the same Context as networks (its thread pool, its
traffic counters); their mailboxes are :class:`channels.Mailbox` priority queues.
The runtime keeps one `Instance` per actor id (``_instance.py``: its lifecycle),
starts each instance's function with a `PersistentActorContext` (``_actor_context.py``),
and matches the host's requests with their replies (``_requests.py``). Supervisors
(``_supervisor.py``) use its public methods only: ``instance`` to watch and restart
an actor's instances, ``on_shutdown`` to be stopped before the actors.

The class stays whole (above 400 lines): its public methods are the runtime's API,
each with its contract; what they build on lives in the modules named above.

An actor that ends for good (no supervisor restarts it) has its mailboxes closed:
a send blocked on its full inbox fails with `ActorStateError` instead of waiting
forever, and so does a host ``receive`` once the outbox is empty. Actors started
with ``ctx.spawn`` are linked to their parent: they are terminated before it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING, Any

from channels import Mailbox, MailboxClosed, OverflowPolicy
from channels.lowlevel import observe
from streamnet._context import Context
from streamnet._deprecation import keyword_only
from streamnet._errors import ActorStateError, WatchdogTimeout
from streamnet._typing import PersistentActorState
from streamnet.observe._logging import logger
from streamnet.persistent._actor_context import PersistentActorContext, RuntimeServices
from streamnet.persistent._instance import LIVE, Instance, PersistentActorStatistics
from streamnet.persistent._requests import Requests
from streamnet.persistent._watchdog import watch

if TYPE_CHECKING:
    from streamnet.persistent.device._behaviours import DeviceBehaviour
    from streamnet.persistent.device._kernels import DeviceKernel

__all__ = ["ActorRuntime"]


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
        device_behaviours: Sequence[DeviceBehaviour] = (),
        device_slots: int = 16,
    ) -> None:
        from streamnet.persistent.device._placement import DevicePlacement

        self._devices = DevicePlacement(device_behaviours, slots=device_slots)
        """Device actors' kernels and slots (a kernel starts at the first launch on its device)."""
        self._owns_ctx = ctx is None
        self.shutdown_timeout = shutdown_timeout
        """The grace an actor gets to stop before it is cancelled, when no other is given."""
        self.ctx = ctx if ctx is not None else Context()
        self._mailbox_capacity = mailbox_capacity
        self._overflow: OverflowPolicy = overflow
        self._actors: dict[str, Instance] = {}
        self._requests = Requests()
        self._services = RuntimeServices(
            self.ctx, self.send, self._requests.took, self._deliver_to_host, self._spawn
        )
        self._watchdog: asyncio.Task[None] | None = None
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
    def _get(self, actor_id: str) -> Instance:
        try:
            return self._actors[actor_id]
        except KeyError:
            known = sorted(self._actors)
            raise KeyError(f"no actor `{actor_id}` in this runtime; actors are {known}") from None

    def _require(self, actor: Instance, action: str, allowed: tuple[str, ...]) -> None:
        if actor.state not in allowed:
            raise ActorStateError(
                f"cannot {action} actor `{actor.actor_id}`: it is {actor.state}, "
                f"and {action} needs it {' or '.join(allowed)}"
            )

    def state(self, actor_id: str) -> PersistentActorState:
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

    def instance(self, actor_id: str) -> Instance | None:
        """The latest instance launched under ``actor_id``, or None: the low-level record a
        supervisor watches (``on_exit``) and restarts on the same inbox."""
        return self._actors.get(actor_id)

    def device_kernel(self, device: str) -> DeviceKernel | None:
        """The persistent kernel this runtime's actors on ``device`` live in, or None before
        the first is launched there (``launch(..., device=...)``)."""
        return self._devices.kernels.get(device)

    def on_shutdown(self, stop: Callable[[], Awaitable[None]]) -> None:
        """Have ``shutdown`` await ``stop()`` before it terminates any actor (the newest
        registered first): how a top supervisor is stopped before its children.
        Registering the same callable again changes nothing."""
        if stop not in self._stop_first:
            self._stop_first.append(stop)

    async def launch(
        self,
        actor_id: str,
        fn: Callable[..., Awaitable[Any]] | DeviceBehaviour,
        *args: Any,
        mailbox_capacity: int | None = None,
        overflow: OverflowPolicy | None = None,
        inbox: Mailbox[Any] | None = None,
        heartbeat_timeout: float | None = None,
        device: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Start ``fn(actor_context, *args, **kwargs)`` as actor ``actor_id``, not yet active.

        With ``device`` (``"gpu"``, or ``"model"`` for the kernel's model on a host
        thread), ``fn`` is a `DeviceBehaviour` (``streamnet.persistent.device``)
        run in a slot of that device's persistent kernel, and the actor is the
        slot's host side: the same ``send``, ``receive``, ``request``,
        ``deactivate``, ``terminate``, statistics and supervision as any actor;
        ``heartbeat_timeout`` is then how long the slot may go without a heartbeat
        (1 s by default) before the actor fails with `DeviceHeartbeatLost`.

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
        if self._closed:
            raise ActorStateError(f"cannot launch actor `{actor_id}`: the runtime is shut down")
        if device is not None:
            if args or kwargs:
                raise TypeError(
                    f"launch: a device actor's behaviour takes its parameters when made, not "
                    f"at launch; got args={args!r}, kwargs={kwargs!r} for `{actor_id}`"
                )
            fn = self._devices.actor(actor_id, fn, device, heartbeat_timeout)
            heartbeat_timeout = None  # the slot's heartbeat is watched by its host side
        if not asyncio.iscoroutinefunction(fn):
            raise TypeError(f"launch: actor `{actor_id}` needs an `async def` function, got {fn!r}")
        old = self._actors.get(actor_id)
        if old is not None and old.state in (*LIVE, "terminating"):
            raise ActorStateError(
                f"cannot launch actor `{actor_id}`: one with this id is {old.state}"
            )
        capacity = mailbox_capacity if mailbox_capacity is not None else self._mailbox_capacity
        policy = overflow if overflow is not None else self._overflow
        actor = Instance(
            actor_id, fn, args, kwargs,
            inbox=inbox if inbox is not None else Mailbox(capacity=capacity, overflow=policy, name=f"{actor_id}.inbox"),
            outbox=old.outbox if old is not None else Mailbox(capacity=None, name=f"{actor_id}.outbox"),
            settle=self._settle,
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

    async def _run(self, actor: Instance) -> None:
        failure: BaseException | None = None
        with observe(actor.counter):
            try:
                await actor.fn(
                    PersistentActorContext(self._services, actor), *actor.args, **actor.kwargs
                )
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
            await actor.stop_children(self.shutdown_timeout)
        finally:
            self._ended(actor, failure)

    def _ended(self, actor: Instance, exc: BaseException | None) -> None:
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

    def _settle(self, actor: Instance, why: str | None = None) -> None:
        """An instance ended: settle its requests and, unless a new instance will
        start on its inbox, close its mailboxes (it ended for good, ``why`` says
        why no new instance comes, when a supervisor decided so)."""
        ended = f"actor `{actor.actor_id}` is {actor.state}"
        if why is not None:
            ended += f" and was not restarted: {why}"
        self._requests.settle(actor, ended)
        if not actor.restarting and self._actors.get(actor.actor_id) is actor:
            actor.inbox.close(ended)  # wakes sends blocked on a full inbox
            actor.outbox.close(ended)  # the host still gets what is in it

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(
                watch(self._actors), name="watchdog"
            )

    async def activate(self, actor_id: str) -> None:
        """Let a launched actor start receiving."""
        actor = self._get(actor_id)
        self._require(actor, "activate", ("launched",))
        actor.activate()

    async def deactivate(self, actor_id: str) -> None:
        """Pause an active actor: it receives nothing until reactivated."""
        actor = self._get(actor_id)
        self._require(actor, "deactivate", ("active",))
        actor.deactivate()

    async def reactivate(self, actor_id: str) -> None:
        """Resume a deactivated actor."""
        actor = self._get(actor_id)
        self._require(actor, "reactivate", ("inactive",))
        actor.activate()

    @keyword_only("timeout")
    async def terminate(self, actor_id: str, *, timeout: float | None = None) -> None:
        """Ask the actor to stop; cancel it after ``timeout`` seconds (default: the
        runtime's ``shutdown_timeout``).

        The children it spawned are terminated first, newest first, each with the
        same grace.
        """
        actor = self._get(actor_id)
        self._require(actor, "terminate", LIVE)
        await actor.terminate(self.shutdown_timeout if timeout is None else timeout)

    @keyword_only("timeout")
    async def shutdown(self, *, timeout: float | None = None) -> None:
        """Stop the supervisors (newest first: they restart nothing after), then
        terminate every live actor, children before parents, newest first, each
        with ``timeout`` seconds of grace (default: ``shutdown_timeout``)."""
        self._closed = True
        for stop in reversed(self._stop_first):
            await stop()
        for actor_id in reversed(list(self._actors)):
            actor = self._actors[actor_id]
            if actor.state in LIVE and actor.parent is None:
                await self.terminate(actor_id, timeout=timeout)
        for actor in self._actors.values():
            if actor.state in LIVE:
                await self.terminate(actor.actor_id, timeout=timeout)
        self._requests.stop()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        await asyncio.to_thread(self._devices.close)
        if self._owns_ctx:
            self.ctx.close()

    # ------------------------------------------------------------------ host mailboxes
    @keyword_only("timeout")
    async def send(self, actor_id: str, message: Any, *, timeout: float | None = None) -> None:
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
        if actor.state not in LIVE and not actor.restarting:
            self._require(actor, "send to", LIVE)
        try:
            await actor.inbox.put(message, timeout=timeout)
        except MailboxClosed as closed:
            raise ActorStateError(
                f"cannot send to actor `{actor_id}`: it ended while the send waited for room, "
                f"and nothing was sent ({closed})"
            ) from closed

    @keyword_only("timeout")
    async def receive(self, actor_id: str, *, timeout: float | None = None) -> Any:
        """The next message the actor sent to the host (not the replies of ``request``).

        Raises
        ------
        ActorStateError
            The actor ended for good and every message it sent was received.
        TimeoutError
            Nothing came within ``timeout`` seconds.
        """
        try:
            return await self._get(actor_id).outbox.get(timeout=timeout)
        except MailboxClosed as closed:
            raise ActorStateError(
                f"cannot receive from actor `{actor_id}`: it ended, and every message it "
                f"sent was received ({closed})"
            ) from closed

    @keyword_only("timeout")
    async def request(self, actor_id: str, message: Any, *, timeout: float | None = None) -> Any:
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
            ``message`` has no ``message_id`` (make it a ``@persistent_message``).
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
                f"request: the message needs a `message_id` (use @persistent_message), "
                f"got {message!r}"
            )
        future = self._requests.open(key, actor_id, timeout)
        try:
            if timeout is None:
                await self.send(actor_id, message)
            else:
                try:
                    await self.send(actor_id, message, timeout=timeout)  # waits only when full
                except TimeoutError as full:
                    raise TimeoutError(
                        f"actor `{actor_id}` did not reply within {timeout} s: the request "
                        f"was never sent ({full})"
                    ) from None
            return await future
        except BaseException:
            self._requests.abandon(key, actor_id, future)  # its reply, if one comes, is dropped
            raise
        finally:
            self._requests.close(key)

    async def _deliver_to_host(self, actor: Instance, message: Any) -> None:
        if not self._requests.answer(actor, message):
            await actor.outbox.put(message)

    async def _spawn(
        self,
        parent: Instance,
        child_id: str,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        """`PersistentActorContext.spawn`: launch and activate ``child_id``, linked to ``parent``."""
        await self.launch(child_id, fn, *args, **kwargs)
        child = self._actors[child_id]
        child.parent = parent.actor_id
        parent.children = [c for c in parent.children if c.task is not None and not c.task.done()]
        parent.children.append(child)
        await self.activate(child_id)

    def statistics(self, actor_id: str) -> PersistentActorStatistics:
        """What the actor did over all its instances, and its mailboxes now."""
        return self._get(actor_id).statistics()
