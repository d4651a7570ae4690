"""A hook through which a runtime learns what each task does with channels.

Channels know nothing of actors. A runtime that wants per-actor statistics sets
an observer for each of its tasks with :func:`observe`; every ``send``,
``recv`` and ``drain`` made from that task then reports to it. The observer
also identifies the producer, so that one producer draining twice counts once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from channels._channel import Channel
    from channels._message import Message

__all__ = ["ChannelObserver", "current_observer", "observe"]


class ChannelObserver(Protocol):
    """Receives a report of every channel operation made by one task."""

    def on_send(self, channel: Channel[Any], message: Message[Any], blocked: float) -> None:
        """``message`` entered ``channel`` after waiting ``blocked`` seconds for room."""

    def on_recv(self, channel: Channel[Any], message: Message[Any], blocked: float) -> None:
        """``message`` left ``channel`` after waiting ``blocked`` seconds for it."""

    def on_end(self, channel: Channel[Any], blocked: float) -> None:
        """``recv`` on ``channel`` saw the end of the stream after waiting ``blocked`` seconds."""


_observer: ContextVar[ChannelObserver | None] = ContextVar("channel_observer", default=None)


def current_observer() -> ChannelObserver | None:
    """The observer of the running task, or None."""
    return _observer.get()


@contextmanager
def observe(observer: ChannelObserver | None) -> Iterator[None]:
    """Report the channel operations of the current task (and tasks it starts) to ``observer``."""
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)
