"""Per-task traffic counters, through which a runtime learns what each task does with channels.

Channels know nothing of actors. A runtime that wants per-actor statistics gives
each of its tasks a :class:`TrafficCounter` with :func:`observe`; every
``send``, ``recv`` and ``drain`` made from that task then adds to it. The counter
also identifies the producer, so that one producer draining twice counts once.
What a blocked call waits in is the channel's to show (its parking lots, see
`channels.lowlevel`), not the counter's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import Context, ContextVar
from typing import Literal

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
    blocked_memory
        Seconds spent waiting for memory (a runtime's memory budget counts it here).
    blocked_thread
        Seconds its blocking calls waited for a free thread, queued in a thread
        pool (a runtime's pool counts it here).
    thread_seconds
        Seconds its blocking calls ran in threads, summed: more than the task's
        time when several ran at once (a runtime's pool counts it here).
    waits
        When not None, every wait is appended as ``(kind, start, end)``, kind
        ``"input"``, ``"output"``, ``"memory"`` or ``"thread"``, times from
        ``time.perf_counter()``: the material of a timeline. A deque with a
        ``maxlen`` keeps the latest ones.
    """

    __slots__ = (
        "blocked_in",
        "blocked_memory",
        "blocked_out",
        "blocked_thread",
        "bytes_in",
        "bytes_out",
        "messages_in",
        "messages_out",
        "rows_in",
        "rows_out",
        "thread_seconds",
        "waits",
    )

    def __init__(self) -> None:
        self.messages_in = self.rows_in = self.bytes_in = 0
        self.messages_out = self.rows_out = self.bytes_out = 0
        self.blocked_in = self.blocked_out = self.blocked_memory = self.blocked_thread = 0.0
        self.thread_seconds = 0.0
        self.waits: deque[tuple[str, float, float]] | None = None

    def waited(
        self, kind: Literal["input", "output", "memory", "thread"], start: float, end: float
    ) -> None:
        """Count a wait of the task, for a message (``"input"``), for room (``"output"``),
        for memory (``"memory"``) or for a thread (``"thread"``), from ``start`` to
        ``end`` (``time.perf_counter()``)."""
        if kind == "input":
            self.blocked_in += end - start
        elif kind == "output":
            self.blocked_out += end - start
        elif kind == "memory":
            self.blocked_memory += end - start
        else:
            self.blocked_thread += end - start
        if self.waits is not None:
            self.waits.append((kind, start, end))


_counter: ContextVar[TrafficCounter | None] = ContextVar("channel_traffic", default=None)


def current_counter(context: Context | None = None) -> TrafficCounter | None:
    """The counter of the running task, or the one set in ``context`` (a task's
    `contextvars.Context`, as a task factory receives it); None if none is set."""
    if context is None:
        return _counter.get()
    return context.get(_counter)


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
