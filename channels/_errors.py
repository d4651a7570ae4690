"""The error hierarchy shared by the whole distribution.

It lives in the lowest layer so that `channels` can raise it without importing
`streamnet`; `streamnet` re-exports the root.
"""

from __future__ import annotations

__all__ = [
    "ChannelAborted",
    "ChannelBroken",
    "ChannelClosed",
    "ChannelError",
    "SequenceError",
    "StreamnetError",
]


class StreamnetError(Exception):
    """Root of every error raised by streamnet, channels and actors."""


class ChannelError(StreamnetError):
    """Something went wrong with a channel."""


class ChannelClosed(ChannelError):
    """The channel no longer accepts messages.

    Raised by ``send`` once every producer has drained the channel. Its subclasses
    say why the channel closed when somebody else closed it. ``channel`` is the
    channel concerned.
    """

    def __init__(self, message: str, *, channel: object = None) -> None:
        super().__init__(message)
        self.channel = channel


class ChannelBroken(ChannelClosed):
    """The channel was shut down: its consumers need no more messages.

    A producer that lets this error escape ends normally inside a Network: the
    data downstream no longer wants is not an error (like a closed pipe).
    """


class ChannelAborted(ChannelClosed):
    """The channel was aborted because something failed.

    Raised by ``send`` and ``recv``; ``__cause__`` is the original failure.
    """


class SequenceError(ChannelError, ValueError):
    """Sequence numbers broke a rule: a duplicate, or out of order where order is required."""
