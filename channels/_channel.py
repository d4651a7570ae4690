"""Typed, bounded, async channels.

The contract of every method, with the errors it raises, is written here once, so
the class stays whole in this one module (above 400 lines).

State of a channel, and what each operation does in it:

============  =========================  ==========================  ==================
state         ``send``                   ``recv``                    how it gets there
============  =========================  ==========================  ==================
open          delivers; waits while      next message; waits while   initial
              full                       empty
drained       raises `ChannelClosed`     buffered messages, then     every producer
                                         ``None``                    called ``drain``
shut down     raises `ChannelBroken`     ``None`` (buffer dropped)   ``shutdown``
              (drops the message, if it
              `discards_after_shutdown`)
aborted       raises `ChannelAborted`    raises `ChannelAborted`     ``abort(cause)``
============  =========================  ==========================  ==================

A blocked call parks in one of the channel's two parking lots (`send_waiters`,
`recv_waiters`; see `channels.lowlevel`) and wakes as soon as the state changes.
A cancelled ``send`` never delivers its message; a cancelled ``recv`` never loses
one. Either takes a ``timeout`` in seconds, after which it raises `TimeoutError`
having done nothing; the lot shows the deadline, so a runtime that looks for
actors waiting on each other forever knows such a wait ends by itself.

A payload whose type defines ``__stream_check__`` is checked as it enters (see
`channels._message.payload_stream_check`): TableChunk uses it so that every chunk
of a stream has the schema of the first.
"""

from __future__ import annotations

import itertools
import typing
from asyncio import CancelledError, get_running_loop
from collections import deque
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Generic, Literal, TypeVar

from channels._errors import ChannelAborted, ChannelBroken, ChannelClosed, ChannelError
from channels._message import (
    _TRAITS,
    Message,
    payload_classes,
    payload_nbytes,
    payload_rows,
    payload_traits,
)
from channels._observer import _counter
from channels._parking_lot import _FUTURE, ParkingLot, _abandon, _enter, _entries

__all__ = ["ByteTally", "Channel", "ChannelState", "ChannelStatistics"]

T = TypeVar("T")

ChannelState = Literal["open", "drained", "shut down", "aborted"]

_OPEN: ChannelState = "open"
_DRAINED: ChannelState = "drained"
_SHUTDOWN: ChannelState = "shut down"
_ABORTED: ChannelState = "aborted"

_UNRESOLVED: Any = object()
_names = itertools.count()


@dataclass(frozen=True, slots=True)
class ChannelStatistics:
    """A snapshot of one channel.

    Attributes
    ----------
    name, state, capacity, max_bytes
        What the channel is and how it is bounded (``max_bytes`` is None when unbounded).
    buffered_messages, buffered_bytes
        What sits in the buffer now.
    peak_buffered_messages, peak_buffered_bytes
        The most the buffer ever held.
    messages_sent, messages_received
        Messages that entered and left the channel.
    rows_sent
        Rows of the messages that entered it (what payloads report as ``num_rows``).
    waiting_senders, waiting_receivers
        Calls blocked on the channel now.
    """

    name: str
    state: ChannelState
    capacity: int
    max_bytes: int | None
    buffered_messages: int
    buffered_bytes: int
    peak_buffered_messages: int
    peak_buffered_bytes: int
    messages_sent: int
    messages_received: int
    rows_sent: int
    waiting_senders: int
    waiting_receivers: int


class Channel(Generic[T]):
    """A bounded async channel of :class:`Message` objects.

    Parameters
    ----------
    payload_type
        Type every payload must have (``Channel[TableChunk]()`` declares it too).
        A payload of another type makes ``send`` raise `TypeError`.
    capacity
        Messages the buffer holds before ``send`` waits (at least 1).
    max_bytes
        Optional bound on the payload bytes in the buffer (payloads report their
        size through ``nbytes``). A message larger than the bound is still let
        through when the buffer is empty, so nothing can deadlock on it.
    name
        Used in errors and statistics.
    producers
        How many producers must call ``drain`` before the stream ends. A Network
        sets it from its wiring (see the `producers` property).

    Examples
    --------
    >>> import asyncio
    >>> async def main():
    ...     ch = Channel[str](capacity=2)
    ...     await ch.send(None, Message(0, "hello"))
    ...     await ch.drain(None)
    ...     return [m.payload async for m in ch]
    >>> asyncio.run(main())
    ['hello']
    """

    __slots__ = (
        "__orig_class__",
        "__weakref__",
        "_buffer",
        "_bytes",
        "_capacity",
        "_cause",
        "_check",
        "_discards",
        "_drained_by",
        "_max_bytes",
        "_name",
        "_payload_type",
        "_peak_bytes",
        "_peak_messages",
        "_producers",
        "_received",
        "_recv_parked",
        "_recv_waiters",
        "_rows",
        "_send_parked",
        "_send_waiters",
        "_sent",
        "_state",
        "_stream",
        "_tally",
    )

    def __init__(
        self,
        payload_type: type[T] | Any = None,
        *,
        capacity: int = 2,
        max_bytes: int | None = None,
        name: str | None = None,
        producers: int = 1,
    ) -> None:
        if type(capacity) is not int or capacity < 1:
            raise ValueError(f"Channel: `capacity` must be an int >= 1, got {capacity!r}")
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes < 1):
            raise ValueError(f"Channel: `max_bytes` must be None or an int >= 1, got {max_bytes!r}")
        _check_producers(producers)
        self._name = name if name is not None else f"channel#{next(_names)}"
        self._payload_type = payload_type
        self._check: tuple[type, ...] | None = _UNRESOLVED
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._buffer: deque[tuple[Message[T], int, int]] = deque()
        self._bytes = 0
        self._recv_waiters = ParkingLot()
        self._send_waiters = ParkingLot()
        # What `send` and `recv` look at before they wake anyone: a length check.
        self._recv_parked = _entries(self._recv_waiters)
        self._send_parked = _entries(self._send_waiters)
        self._state: ChannelState = _OPEN
        self._cause: BaseException | None = None
        self._producers = producers
        self._discards = False
        self._drained_by: set[object] = set()
        self._sent = 0
        self._rows = 0
        self._received = 0
        self._peak_messages = 0
        self._peak_bytes = 0
        self._stream: Any = None  # what the payloads' __stream_check__ keeps
        self._tally: ByteTally | None = None

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        """The channel's name, used in errors and statistics."""
        return self._name

    @property
    def payload_type(self) -> Any:
        """The declared payload type, or None if any payload is accepted."""
        if self._payload_type is not None:
            return self._payload_type
        orig = getattr(self, "__orig_class__", None)
        if orig is not None:
            args = typing.get_args(orig)
            if args:
                return args[0]
        return None

    @property
    def capacity(self) -> int:
        """Messages the buffer holds before ``send`` waits."""
        return self._capacity

    @property
    def max_bytes(self) -> int | None:
        """Bound on buffered payload bytes, or None."""
        return self._max_bytes

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the messages in the buffer now (as their payloads report ``nbytes``)."""
        return self._bytes

    @property
    def state(self) -> ChannelState:
        """``"open"``, ``"drained"``, ``"shut down"`` or ``"aborted"``."""
        return self._state

    @property
    def discards_after_shutdown(self) -> bool:
        """Whether ``send`` into the channel once it is shut down drops the message and
        returns, instead of raising `ChannelBroken` (False unless a runtime sets it).

        A runtime sets it for a producer that must run to its end even when its
        consumers need no more: a collective actor, whose peers on other ranks wait
        for its every step.
        """
        return self._discards

    @discards_after_shutdown.setter
    def discards_after_shutdown(self, value: bool) -> None:
        self._discards = bool(value)

    @property
    def abort_cause(self) -> BaseException | None:
        """The failure the channel was aborted with, or None."""
        return self._cause

    @property
    def producers(self) -> int:
        """How many producers must still call ``drain`` before the stream ends.

        A runtime sets it from its wiring before the producers start (a Network
        counts the actors that produce into the channel).

        Raises
        ------
        ValueError
            Set to something other than an int >= 1.
        ChannelError
            Set once the channel is no longer open.
        """
        return self._producers

    @producers.setter
    def producers(self, count: int) -> None:
        _check_producers(count)
        if self._state is not _OPEN:
            raise ChannelError(
                f"channel `{self._name}`: its producers are counted while it is open; "
                f"it is {self._state}"
            )
        self._producers = count

    @property
    def send_waiters(self) -> ParkingLot:
        """Low level: the parking lot of the ``send`` calls waiting for room.

        A runtime reads it to see who waits on the channel (`ParkingLot.parked`);
        only the channel parks and wakes tasks in it.
        """
        return self._send_waiters

    @property
    def recv_waiters(self) -> ParkingLot:
        """Low level: the parking lot of the ``recv`` calls waiting for a message.

        Besides a runtime's introspection, a helper that waits on several
        channels at once parks here (see `recv_any`). The channel wakes one
        task per message sent, and all of them when it closes.
        """
        return self._recv_waiters

    def __len__(self) -> int:
        """Messages in the buffer now."""
        return len(self._buffer)

    def __repr__(self) -> str:
        return (
            f"<Channel {self._name!r} {self._state}, {len(self._buffer)}/{self._capacity} messages>"
        )

    def statistics(self) -> ChannelStatistics:
        """A snapshot of the channel's buffer and counters."""
        return ChannelStatistics(
            name=self._name,
            state=self._state,
            capacity=self._capacity,
            max_bytes=self._max_bytes,
            buffered_messages=len(self._buffer),
            buffered_bytes=self._bytes,
            peak_buffered_messages=self._peak_messages,
            peak_buffered_bytes=self._peak_bytes,
            messages_sent=self._sent,
            messages_received=self._received,
            rows_sent=self._rows,
            waiting_senders=len(self._send_waiters),
            waiting_receivers=len(self._recv_waiters),
        )

    # ------------------------------------------------------------------ producer side
    async def send(self, ctx: object, msg: Message[T], *, timeout: float | None = None) -> None:
        """Put ``msg`` into the channel, waiting while it is full.

        Parameters
        ----------
        ctx
            The calling actor's Context (rapidsmpf's form; any object, or None).
        msg
            The message to deliver.
        timeout
            Seconds to wait at most for room (None: as long as it takes).

        Raises
        ------
        TimeoutError
            ``timeout`` passed; the message was not delivered.
        TypeError
            ``msg`` is not a Message, or its payload is not of the declared type.
        ChannelClosed
            Every producer already drained the channel.
        ChannelBroken
            The channel was shut down (its consumers need no more), unless it
            `discards_after_shutdown`: then ``msg`` is dropped.
        ChannelAborted
            The channel was aborted; ``__cause__`` is the failure.
        Exception
            Whatever the payload's ``__stream_check__`` raises to refuse it (a
            TableChunk whose schema differs from the stream's: `SchemaError`).
        """
        if self._state is not _OPEN:
            if self._state is _SHUTDOWN and self._discards:
                return
            self._raise_closed("send into")
        if type(msg) is not Message:
            raise TypeError(
                f"channel `{self._name}`: send takes a Message, got {type(msg).__name__}"
            )
        payload = msg.payload
        check = self._check
        if check is not None and (check is _UNRESOLVED or not isinstance(payload, check)):
            self._check_type(msg)
        traits = _TRAITS.get(type(payload)) or payload_traits(payload)
        stream_check, sized, counted = traits
        if stream_check is not None:
            self._stream = stream_check(payload, self._stream, self._name, msg.sequence_number)
        size = payload_nbytes(payload) if sized else 0
        buffer = self._buffer
        if len(buffer) >= self._capacity or (
            self._max_bytes is not None and buffer and self._bytes + size > self._max_bytes
        ):
            # Full: park until there is room (the wait is inline, one coroutine less).
            start = perf_counter()
            deadline = None if timeout is None else get_running_loop().time() + timeout
            while len(buffer) >= self._capacity or (
                self._max_bytes is not None and buffer and self._bytes + size > self._max_bytes
            ):
                if deadline is None:  # ParkingLot.park without its coroutine
                    entry = _enter(self._send_waiters, self._send_parked)
                    try:
                        await entry[_FUTURE]
                    except CancelledError:
                        _abandon(entry)
                        raise
                else:
                    try:
                        await self._send_waiters.park(deadline=deadline)
                    except TimeoutError:
                        raise TimeoutError(
                            f"channel `{self._name}` stayed full ({len(buffer)} of "
                            f"{self._capacity} messages, {self._bytes} bytes) for {timeout} s"
                        ) from None
                if self._state is not _OPEN:
                    if self._state is _SHUTDOWN and self._discards:
                        return
                    self._raise_closed("send into")
            if (counter := _counter.get()) is not None:
                counter.waited("output", start, perf_counter())
        rows = payload_rows(payload) if counted else 0
        buffer.append((msg, size, rows))
        self._bytes += size
        if self._tally is not None:
            self._tally.total += size
        self._sent += 1
        self._rows += rows
        if len(buffer) > self._peak_messages:
            self._peak_messages = len(buffer)
        if self._bytes > self._peak_bytes:
            self._peak_bytes = self._bytes
        if self._recv_parked:
            self._recv_waiters.unpark()
        counter = _counter.get()
        if counter is not None:
            counter.messages_out += 1
            counter.bytes_out += size
            counter.rows_out += rows

    def _check_type(self, msg: Message[T]) -> None:
        """Resolve the payload classes the channel checks against; refuse ``msg`` if its
        payload is not one of them."""
        check = self._check
        if check is _UNRESOLVED:
            check = self._check = payload_classes(self.payload_type)
        if check is not None and not isinstance(msg.payload, check):
            raise TypeError(
                f"channel `{self._name}` carries {_type_name(self.payload_type)} payloads, "
                f"got {type(msg.payload).__name__} "
                f"(message sequence number {msg.sequence_number})"
            )

    async def drain(self, ctx: object) -> None:
        """End the stream from this producer; the consumer still gets everything sent before.

        The stream ends once every producer drained. Draining twice from the same
        actor counts once; draining a channel that is no longer open does nothing.
        """
        if self._state is not _OPEN:
            return
        token = _counter.get()
        if token is not None:
            if token in self._drained_by:
                return
            self._drained_by.add(token)
        self._producers -= 1
        if self._producers <= 0:
            self._state = _DRAINED
            self._recv_waiters.unpark_all()
            self._send_waiters.unpark_all()

    # ------------------------------------------------------------------ consumer side
    async def recv(self, ctx: object, *, timeout: float | None = None) -> Message[T] | None:
        """The next message, waiting while the channel is empty.

        ``timeout`` is the most seconds to wait (None: as long as it takes).

        Returns
        -------
        Message or None
            None at the end of the stream: every producer drained and the buffer
            is empty, or the channel was shut down.

        Raises
        ------
        TimeoutError
            ``timeout`` passed with no message and the stream still open.
        ChannelAborted
            The channel was aborted; ``__cause__`` is the failure.
        """
        buffer = self._buffer
        if not buffer:
            if self._state is _OPEN:
                # Empty: park until a message comes or the channel closes (inline, as in send).
                start = perf_counter()
                deadline = None if timeout is None else get_running_loop().time() + timeout
                while not buffer and self._state is _OPEN:
                    if deadline is None:  # ParkingLot.park without its coroutine
                        entry = _enter(self._recv_waiters, self._recv_parked)
                        try:
                            await entry[_FUTURE]
                        except CancelledError:
                            _abandon(entry)
                            raise
                    else:
                        try:
                            await self._recv_waiters.park(deadline=deadline)
                        except TimeoutError:
                            raise TimeoutError(
                                f"channel `{self._name}` stayed empty for {timeout} s"
                            ) from None
                if (counter := _counter.get()) is not None:
                    counter.waited("input", start, perf_counter())
            if not buffer:
                if self._state is _ABORTED:
                    self._raise_closed("receive from")
                return None
        msg, size, rows = buffer.popleft()
        self._bytes -= size
        if self._tally is not None:
            self._tally.total -= size
        self._received += 1
        if self._send_parked:
            self._send_waiters.unpark()
        counter = _counter.get()
        if counter is not None:
            counter.messages_in += 1
            counter.bytes_in += size
            counter.rows_in += rows
        return msg

    def __aiter__(self) -> typing.AsyncIterator[Message[T]]:
        return self._iterate()

    async def _iterate(self) -> typing.AsyncIterator[Message[T]]:
        while (msg := await self.recv(None)) is not None:
            yield msg

    def count_bytes_into(self, tally: ByteTally) -> None:
        """Low level (see `ByteTally.add`): count the buffered bytes in ``tally`` from now
        on, with those buffered now, and no longer in the tally they were counted in."""
        before = self._tally
        if before is tally:
            return
        if before is not None:
            before.total -= self._bytes
        self._tally = tally
        tally.total += self._bytes

    # ------------------------------------------------------------------ closing
    async def shutdown(self, ctx: object) -> None:
        """Close at once: buffered messages are dropped, blocked calls wake.

        A consumer calls it when it needs no more (producers then get
        `ChannelBroken`); a producer calls it on its error path. Does nothing on
        a channel that was already shut down or aborted.
        """
        self._close(_SHUTDOWN, None)

    def abort(self, cause: BaseException) -> None:
        """Close at once because of ``cause``: ``send`` and ``recv`` raise `ChannelAborted`."""
        self._close(_ABORTED, cause)

    def _close(self, state: ChannelState, cause: BaseException | None) -> None:
        if self._state is _ABORTED or (state is _SHUTDOWN and self._state is _SHUTDOWN):
            return
        self._state = state
        self._cause = cause
        self._buffer.clear()
        if self._tally is not None:
            self._tally.total -= self._bytes
        self._bytes = 0
        self._recv_waiters.unpark_all()
        self._send_waiters.unpark_all()

    def _raise_closed(self, action: str) -> typing.NoReturn:
        where = f"cannot {action} channel `{self._name}`"
        if self._state is _ABORTED:
            raise ChannelAborted(
                f"{where}: it was aborted by {type(self._cause).__name__}: {self._cause}",
                channel=self,
            ) from self._cause
        if self._state is _SHUTDOWN:
            raise ChannelBroken(
                f"{where}: it was shut down, its consumers need no more", channel=self
            )
        raise ChannelClosed(f"{where}: every producer already drained it", channel=self)

    # ------------------------------------------------------------------ async with
    async def __aenter__(self) -> Channel[T]:
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        """Drain on a normal exit; abort with the exception otherwise."""
        if exc is None:
            await self.drain(None)
        else:
            self.abort(exc)


class ByteTally:
    """The bytes buffered now in every channel counted into it, kept as they move.

    A runtime that bounds the memory of many channels reads one number
    (``total``) instead of summing the channels at each check, whose number
    grows with every network run on it. A channel counts into one tally at a
    time: :meth:`add` moves it, with the bytes it buffers, from any other.

    Examples
    --------
    >>> import asyncio
    >>> from channels import Channel, Message
    >>> from channels.lowlevel import ByteTally
    >>> class Payload:
    ...     nbytes = 10
    >>> tally, ch = ByteTally(), Channel()
    >>> tally.add(ch)
    >>> asyncio.run(ch.send(None, Message(0, Payload())))
    >>> tally.total
    10
    """

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0
        """Bytes of the messages buffered in the channels counted, now."""

    def add(self, channel: Channel[Any]) -> None:
        """Count ``channel``'s buffered bytes here from now on (no longer in another tally)."""
        if not isinstance(channel, Channel):
            raise TypeError(f"ByteTally.add: expected a Channel, got {type(channel).__name__}")
        channel.count_bytes_into(self)

    def __repr__(self) -> str:
        return f"<ByteTally total={self.total}>"


def _check_producers(count: object) -> None:
    if type(count) is not int or count < 1:
        raise ValueError(f"Channel: `producers` must be an int >= 1, got {count!r}")


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else repr(tp)
