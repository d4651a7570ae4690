"""Per-task traffic counters, through which a runtime learns what each task does with channels.

Channels know nothing of actors. A runtime that wants per-actor statistics gives
each of its tasks a :class:`TrafficCounter` with :func:`observe`; every
``send``, ``recv`` and ``drain`` made from that task then adds to it. The counter
also identifies the producer, so that one producer draining twice counts once.
"""

from __future__ import annotations

from asyncio import Future
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

__all__ = ["TrafficCounter", "current_counter", "observe"]


class TrafficCounter:
    """What one task sent and received through channels.

    Attributes
    ----------
    messages_in, rows_in, bytes_in
        Messages received, and the rows and bytes their payloads report
        (through ``num_rows`` and ``nbytes``; 0 when a payload reports none).
    messages_out, rows_out, bytes_out
        The same for messages sent.
    blocked_in
        Seconds spent waiting for a message on an empty channel.
    blocked_out
        Seconds spent waiting for room on a full channel (backpressure).
    waits
        When not None, every wait is appended as ``(kind, start, end)``, kind
        ``"input"`` or ``"output"``, times from ``time.perf_counter()``: the
        material of a timeline. A deque with a ``maxlen`` keeps the latest ones.
    waiting
        When not None, the futures the counter's tasks await in channel calls
        now (one per blocked call; it also sits in the waiters of the channels
        that can wake it). A runtime reads it to find actors that wait on each
        other forever.
    """

    __slots__ = (
        "blocked_in",
        "blocked_out",
        "bytes_in",
        "bytes_out",
        "messages_in",
        "messages_out",
        "rows_in",
        "rows_out",
        "sent",
        "taken",
        "waiting",
        "waits",
    )

    def __init__(self) -> None:
        self.messages_in = self.rows_in = self.bytes_in = 0
        self.messages_out = self.rows_out = self.bytes_out = 0
        self.blocked_in = self.blocked_out = 0.0
        self.waits: deque[tuple[str, float, float]] | None = None
        self.taken: dict[Any, Any] | None = None
        """When not None: per input channel, the last message received (the one in flight)."""
        self.sent: dict[Any, set[int]] | None = None
        """When not None: per output channel, the sequence numbers sent; a repeat is dropped."""
        self.waiting: set[Future[None]] | None = None


_counter: ContextVar[TrafficCounter | None] = ContextVar("channel_traffic", default=None)


def current_counter() -> TrafficCounter | None:
    """The counter of the running task, or None."""
    return _counter.get()


@contextmanager
def observe(counter: TrafficCounter | None) -> Iterator[None]:
    """Count the channel traffic of the current task (and tasks it starts) in ``counter``."""
    token = _counter.set(counter)
    try:
        yield
    finally:
        # Closed from another context (its task destroyed unfinished), the task's context,
        # where the counter was set, is gone with it: nothing to reset.
        with suppress(ValueError):
            _counter.reset(token)
