"""The message an actor instance held when it ended: redelivered once, or a dead letter.

A supervisor gives it back to the inbox for the next instance when the child's
spec says ``redeliver`` and the actor restarts, once per message: a message that
ends an instance again goes to the dead letters. What a message was given back is
told by the object it is, not its ``id`` (an id is reused once its object is freed).
"""

from __future__ import annotations

from typing import Any

from streamnet.persistent._instance import Instance

__all__ = ["Redeliveries"]


class Redeliveries:
    """For each child of one supervisor, the messages given back to its inbox."""

    def __init__(self) -> None:
        self._given: dict[str, list[Any]] = {}
        """Per child: the messages given back that were still queued at its last crash,
        and the one given back then (held, so what is remembered stays bounded)."""

    def set_aside(self, instance: Instance, *, redeliver: bool) -> None:
        """Deal with the message ``instance`` held when it ended: give it back once to its
        inbox (``redeliver``), else put it in the dead letters."""
        message = instance.current
        if message is None:
            return
        instance.current = None
        key = instance.actor_id
        given_back = self._given.pop(key, [])
        second = any(m is message for m in given_back)
        if given_back:  # keep those still queued: the others were taken and finished
            queued = {id(m) for m in instance.inbox.queued()}
            given_back = [m for m in given_back if m is not message and id(m) in queued]
        if redeliver and not second:
            instance.inbox.requeue(message)
            instance.given_back = message
            given_back.append(message)
        else:
            instance.inbox.dead_letters.append(message)
        if given_back:
            self._given[key] = given_back

    def forget(self, key: str) -> None:
        """``key`` is no longer a child."""
        self._given.pop(key, None)
