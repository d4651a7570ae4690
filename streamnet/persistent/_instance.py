"""One instance of a persistent actor: its function, its mailboxes, where it is in its life.

Lifecycle (the runtime refuses an illegal transition with `ActorStateError`)::

    launch ──> launched ──activate──> active <──reactivate── inactive
                                        └──────deactivate──────┘
    launched / active / inactive ──terminate──> terminating ──> terminated
    an actor whose function raises ──> failed

A supervisor that restarts an actor starts a new instance under the same id, on
the same inbox; what `PersistentActorStatistics` counts adds up over the instances.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels import Mailbox, MailboxStatistics
from channels.lowlevel import ParkingLot, TrafficCounter
from streamnet._typing import PersistentActorState

__all__ = ["LIVE", "Instance", "PersistentActorStatistics"]

LIVE = ("launched", "active", "inactive")
"""The states of an instance that may still receive and run."""


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
    device
        For an actor that stands for a slot of a persistent kernel (`device_actor`),
        the slot's own figures (a `SlotStatistics`); None for any other.
    """

    actor_id: str
    state: PersistentActorState
    launches: int
    messages_in: int
    messages_out: int
    late_replies: int
    inbox: MailboxStatistics
    outbox: MailboxStatistics
    device: object | None = None


@dataclass(eq=False)
class Instance:
    """One instance of a persistent actor: what the runtime keeps of it while it lives."""

    actor_id: str
    fn: Callable[..., Awaitable[Any]]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inbox: Mailbox[Any]
    outbox: Mailbox[Any]
    state: PersistentActorState = "launched"
    task: asyncio.Task[Any] | None = None
    active: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    failure: BaseException | None = None
    parent: str | None = None
    children: list[Instance] = field(default_factory=list)
    """The instances it spawned (linked: terminated before it ends), oldest first."""
    counter: TrafficCounter = field(default_factory=TrafficCounter)
    current: Any = None
    """The message being processed (the last one received), for redelivery after a crash."""
    heartbeat_timeout: float | None = None
    last_progress: float = 0.0
    busy: bool = False
    """True from a receive until the actor's next receive: it holds input."""
    watchdog_fired: bool = False
    wakeups: ParkingLot = field(default_factory=ParkingLot)
    """Where its ``receive`` and ``wait_active`` wait for a change of state (a pause,
    a resume, a stop, the timer), besides the inbox."""
    deadline: float | None = None
    """When the current receive gives up (loop time), or None."""
    timer: asyncio.TimerHandle | None = None
    """One timer per actor, reused across receives: it re-arms when it fires early."""
    on_exit: Callable[[Instance, BaseException | None, bool], None] | None = None
    """Called when the actor's function ends: (this instance, exception or None, shut down on
    request). Whoever sets it (a supervisor) also logs the failures."""
    restarting: bool = False
    """Set by a supervisor that will start a new instance on this inbox: sends are accepted."""
    more_statistics: Callable[[], object] | None = None
    """What the running instance reports beside the runtime's figures (`device`)."""
    stop_signal: BaseException | None = None
    """The error ``receive`` raised to tell the actor to stop: not a failure if it escapes."""
    launches: int = 1
    late_replies: int = 0
    given_back: Any = None
    """The message this instance held when it ended, if its supervisor put it back in the
    inbox for the next instance (``redeliver``): it is no longer this instance's to answer."""
    settle: Callable[[Instance, str | None], None] | None = None
    """Set by the runtime: settles the instance's requests and, unless a new instance
    will start on its inbox, closes its mailboxes (with why no new one comes, or None)."""

    def wake(self) -> None:
        """Wake the instance's ``receive`` (or ``wait_active``) if it waits: to look at its
        state again."""
        self.wakeups.unpark_all()

    def abandon(self, why: str) -> None:
        """A new instance will not start on this one's inbox after all (``why``): it ended
        for good. For a supervisor that had marked it ``restarting``."""
        self.restarting = False
        if self.settle is not None:
            self.settle(self, why)

    def activate(self) -> None:
        """Let it receive (from ``launched`` or ``inactive``)."""
        self.state = "active"
        self.active.set()
        self.wake()

    def deactivate(self) -> None:
        """Pause it: it receives nothing until activated again."""
        self.state = "inactive"
        self.active.clear()
        self.wake()

    async def terminate(self, timeout: float) -> None:
        """Stop it (also one already terminating or whose function ended): its linked
        children first, then itself; cancel whoever outlasts ``timeout``."""
        await self.stop_children(timeout)
        if self.state in LIVE:
            self.state = "terminating"
            self.stopping.set()
            self.wake()
        task = self.task
        assert task is not None
        done, _ = await asyncio.wait([task], timeout=timeout)
        if not done:
            task.cancel()
            await asyncio.wait([task])  # a cancellation of the caller still propagates
        if self.state == "terminating":
            self.state = "terminated"

    async def stop_children(self, timeout: float) -> None:
        """Terminate the linked children that still run, newest first."""
        for child in reversed(self.children):
            if child.task is not None and not child.task.done():
                await child.terminate(timeout)

    def statistics(self) -> PersistentActorStatistics:
        """What the actor did over all its instances, and its mailboxes now."""
        return PersistentActorStatistics(
            actor_id=self.actor_id,
            state=self.state,
            launches=self.launches,
            messages_in=self.counter.messages_in,
            messages_out=self.counter.messages_out,
            late_replies=self.late_replies,
            inbox=self.inbox.statistics(),
            outbox=self.outbox.statistics(),
            device=self.more_statistics() if self.more_statistics is not None else None,
        )
