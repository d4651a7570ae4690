"""Requests from the host to persistent actors, and the replies that answer them.

``runtime.request(actor_id, message)`` sends a ``@persistent_message`` and waits for the reply
whose ``correlation_id`` is the request's ``message_id``. The runtime's `Requests`
book keeps the requests that wait for a reply, their deadlines (one timer for all),
which instance took each request's message (that instance answers it, or fails it by
crashing), and the requests that ended without their reply: a reply to one of those
comes late, and is dropped instead of landing in the actor's outbox.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from streamnet._errors import ActorStateError
from streamnet.observe._logging import logger
from streamnet.persistent._instance import Instance

__all__ = ["Request", "Requests"]

_ABANDONED_KEPT = 10_000
"""How many requests that ended without their reply the runtime remembers, to drop the reply."""


@dataclass(eq=False, slots=True)
class Request:
    """A request waiting for its reply."""

    actor_id: str
    future: asyncio.Future[Any]
    holder: Instance | None = None
    """The instance of ``actor_id`` that last took the request's message, or None while
    the message is on its way (its send waits for room, or it waits in the inbox)."""


class Requests:
    """The requests of one runtime, by their message's ``message_id``."""

    def __init__(self) -> None:
        self.pending: dict[Any, Request] = {}
        self.abandoned: dict[Any, str] = {}
        """Requests that ended without their reply (oldest first, bounded): key -> actor id."""
        self.deadlines: dict[Any, tuple[float, str, float]] = {}
        self.timer: asyncio.TimerHandle | None = None

    def open(self, key: Any, actor_id: str, timeout: float | None) -> asyncio.Future[Any]:
        """Wait for a reply to ``key`` from ``actor_id``: the future it will come in, which
        fails with `TimeoutError` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.pending[key] = Request(actor_id, future)
        if timeout is not None:
            deadline = loop.time() + timeout
            self.deadlines[key] = (deadline, actor_id, timeout)
            if self.timer is None or self.timer.when() > deadline:
                if self.timer is not None:
                    self.timer.cancel()
                self.timer = loop.call_at(deadline, self._expire)
        return future

    def abandon(self, key: Any, actor_id: str, future: asyncio.Future[Any]) -> None:
        """The request ``key`` ended without its reply: drop the reply if one comes."""
        self.abandoned[key] = actor_id
        if len(self.abandoned) > _ABANDONED_KEPT:
            del self.abandoned[next(iter(self.abandoned))]
        if future.done() and not future.cancelled():
            future.exception()  # retrieved: the caller gets it or a timeout in its stead

    def close(self, key: Any) -> None:
        """The request ``key`` ended, answered or not."""
        self.pending.pop(key, None)
        self.deadlines.pop(key, None)  # the timer stays armed for later requests

    def stop(self) -> None:
        """The runtime shuts down: no deadline fires any more."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self) -> None:
        """Fail the requests whose deadline passed; re-arm for the earliest of the rest."""
        self.timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for key, (deadline, actor_id, timeout) in list(self.deadlines.items()):
            if deadline <= now:
                del self.deadlines[key]
                pending = self.pending.pop(key, None)
                if pending is not None and not pending.future.done():
                    pending.future.set_exception(
                        TimeoutError(f"actor `{actor_id}` did not reply within {timeout} s")
                    )
        if self.deadlines:
            earliest = min(d for d, _, _ in self.deadlines.values())
            self.timer = loop.call_at(earliest, self._expire)

    def took(self, instance: Instance, message: Any) -> None:
        """``instance`` received ``message``: if it is a request's, the instance holds it."""
        if self.pending:  # a request's message: this instance answers it, or fails it by crashing
            request = self.pending.get(getattr(message, "message_id", None))
            if request is not None and request.actor_id == instance.actor_id:
                request.holder = instance

    def answer(self, instance: Instance, message: Any) -> bool:
        """``instance`` sends ``message`` to the host: True if it is the reply to a request
        (given to it, or dropped because the request ended), False for the outbox."""
        key = getattr(message, "correlation_id", None)
        pending = self.pending.pop(key, None)
        if pending is not None and not pending.future.done():
            pending.future.set_result(message)
            return True
        if key is not None and self.abandoned.pop(key, None) is not None:
            instance.late_replies += 1
            logger.debug(
                "actor %s replied after its request ended: reply dropped", instance.actor_id
            )
            return True
        return False

    def settle(self, instance: Instance, ended: str) -> None:
        """Fail the pending requests to an instance that ended, which it or no other will answer.

        A request whose message this instance took (and did not answer) fails with
        its exception, unless the message went back to the inbox (``redeliver``).
        When a new instance will start on the same inbox, every other request stays
        pending for it: its message waits in the inbox, or its send waits for room.
        Otherwise they fail too: nobody took them, and nobody will.
        """
        owned = [key for key, r in self.pending.items() if r.actor_id == instance.actor_id]
        if not owned:
            return
        given_back = getattr(instance.given_back, "message_id", None)
        for key in owned:
            request = self.pending[key]
            if request.holder is instance:
                if given_back is not None and key == given_back:
                    request.holder = None  # back in the inbox: the next instance takes it
                    continue
                error = instance.failure or ActorStateError(
                    f"actor `{instance.actor_id}` ended without replying: it is {instance.state}"
                )
            elif instance.restarting:
                continue
            else:
                error = ActorStateError(f"no reply from actor `{instance.actor_id}`: {ended}")
                error.__cause__ = instance.failure
            del self.pending[key]
            if not request.future.done():
                request.future.set_exception(error)
