"""A single-producer, single-consumer ring of fixed-size records, as a persistent kernel's
queues hold them.

The ring is one buffer: the consumer's counter ``head`` (records read so far), the
producer's counter ``tail`` (records written so far), each an unsigned 64-bit word
on a 64-byte line of its own so that the two sides never write one line, then
``capacity`` slots (a power of two). Counters only grow and wrap modulo 2^64;
record ``n`` lives in slot ``n mod capacity``; the ring holds ``tail - head``
records, and is full at ``capacity``. The protocol, in program order:

- the producer reads ``head``; if ``tail - head < capacity`` it writes the record
  into slot ``tail``, then publishes ``tail + 1`` (a release store: on the device,
  a fence before it, so that the consumer never sees the count before the bytes);
- the consumer reads ``tail``; if ``head != tail`` it reads slot ``head``, then
  publishes ``head + 1`` (so that the producer never overwrites a slot being read).

Each side writes only its own counter and the slots the other side does not read
at that moment: no lock, no atomic read-modify-write. `SpscRing` runs each
operation whole; `RingModel` runs the same steps one at a time, in an order a
test chooses, to check the protocol against every interleaving.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = ["RingModel", "SpscRing"]

LINE = 64
"""Bytes between the two counters and before the slots (a cache line each)."""
_MOD = 1 << 64


class SpscRing:
    """A ring of ``capacity`` records of ``dtype`` in ``buffer`` (a writable buffer of
    `nbytes` bytes, zeroed by default: a new ring), shared by one producer and one
    consumer. ``start`` sets both counters of a new ring (to test their wrap-around).

    Examples
    --------
    >>> ring = SpscRing(np.dtype("<u8"), 4)
    >>> [ring.try_push(np.uint64(v)) for v in (1, 2, 3, 4, 5)]
    [True, True, True, True, False]
    >>> int(ring.try_pop()), len(ring)
    (1, 3)

    Raises
    ------
    ValueError
        ``capacity`` is not a power of two >= 1, ``buffer`` is too small, or ``start``
        is not in 0..2^64-1.
    """

    def __init__(
        self,
        dtype: np.dtype,
        capacity: int,
        buffer: np.ndarray | bytearray | memoryview | None = None,
        *,
        start: int | None = None,
    ) -> None:
        if type(capacity) is not int or capacity < 1 or capacity & (capacity - 1):
            raise ValueError(f"SpscRing: `capacity` must be a power of two >= 1, got {capacity!r}")
        self.dtype = np.dtype(dtype)
        self.capacity = capacity
        size = self.nbytes(self.dtype, capacity)
        if buffer is None:
            buffer = np.zeros(size, dtype=np.uint8)
        raw = np.frombuffer(buffer, dtype=np.uint8) if not isinstance(buffer, np.ndarray) else buffer
        raw = raw.reshape(-1).view(np.uint8)
        if raw.nbytes < size:
            raise ValueError(
                f"SpscRing: a ring of {capacity} records of {self.dtype.itemsize} bytes needs "
                f"{size} bytes, the buffer has {raw.nbytes}"
            )
        self.buffer = raw
        self._head = raw[0:8].view("<u8")
        self._tail = raw[LINE : LINE + 8].view("<u8")
        self.slots = raw[2 * LINE : size].view(self.dtype)
        if start is not None:
            if type(start) is not int or not 0 <= start < _MOD:
                raise ValueError(f"SpscRing: `start` must be an int in 0..2^64-1, got {start!r}")
            self._head[0] = self._tail[0] = start  # a new ring: nobody reads it yet

    @staticmethod
    def nbytes(dtype: np.dtype, capacity: int) -> int:
        """The bytes of a ring of ``capacity`` records of ``dtype``: the two counters' lines,
        then the slots."""
        return 2 * LINE + capacity * np.dtype(dtype).itemsize

    # the counters, as each side reads them
    @property
    def head(self) -> int:
        return int(self._head[0])

    @property
    def tail(self) -> int:
        return int(self._tail[0])

    def publish_tail(self, tail: int) -> None:
        """The producer's release store: records up to ``tail`` are written."""
        self._tail[0] = tail % _MOD

    def publish_head(self, head: int) -> None:
        """The consumer's release store: records up to ``head`` are read, their slots free."""
        self._head[0] = head % _MOD

    def __len__(self) -> int:
        """Records written and not read yet."""
        return (self.tail - self.head) % _MOD

    @property
    def free(self) -> int:
        """Records that fit now."""
        return self.capacity - len(self)

    # producer
    def try_push(self, record: object) -> bool:
        """Write ``record`` (False, and nothing written, when the ring is full)."""
        tail = self.tail
        if (tail - self.head) % _MOD >= self.capacity:
            return False
        self.slots[tail & (self.capacity - 1)] = record
        self.publish_tail(tail + 1)  # after the record: the release
        return True

    def push_many(self, records: np.ndarray) -> int:
        """Write as many of ``records`` as fit, in order, published at once; how many."""
        tail = self.tail
        count = min(len(records), self.capacity - (tail - self.head) % _MOD)
        for i in range(count):
            self.slots[(tail + i) & (self.capacity - 1)] = records[i]
        if count:
            self.publish_tail(tail + count)
        return count

    # consumer
    def try_pop(self) -> np.void | None:
        """The oldest record (a copy), or None when the ring is empty."""
        head = self.head
        if head == self.tail:
            return None
        record = self.slots[head & (self.capacity - 1)].copy()
        self.publish_head(head + 1)  # after the read: the slot may be written again
        return record  # type: ignore[no-any-return]

    def pop_many(self, limit: int) -> np.ndarray:
        """Up to ``limit`` of the oldest records (copies), in order."""
        head = self.head
        count = min(limit, (self.tail - head) % _MOD)
        out = np.empty(count, dtype=self.dtype)
        for i in range(count):
            out[i] = self.slots[(head + i) & (self.capacity - 1)]
        if count:
            self.publish_head(head + count)
        return out

    def __repr__(self) -> str:
        return f"<SpscRing {len(self)}/{self.capacity} records of {self.dtype.itemsize} bytes>"


@dataclass
class _Side:
    """One side's registers: the step it is at, what it read of the other's counter, and
    the record it is moving."""

    step: int = 0
    seen: int = 0
    slot: int = 0
    value: int | None = None
    done: list[int] = field(default_factory=list)


class RingModel:
    """The ring's protocol one step at a time: `producer_step` and `consumer_step` each
    run one memory access of their side, so that a test can run them in any order.

    The producer pushes ``0, 1, 2, ...``; the consumer keeps what it pops in
    `popped`. With the steps in program order, `popped` is always the start of
    what was pushed, whatever the interleaving. ``publish_first`` reverses the
    producer's last two steps (the counter before the record): the fault the
    release order exists to prevent, which a test shows to be caught.
    """

    PRODUCER_STEPS = ("read head", "write slot", "publish tail")
    CONSUMER_STEPS = ("read tail", "read slot", "publish head")

    def __init__(self, capacity: int, *, start: int = 0, publish_first: bool = False) -> None:
        self.ring = SpscRing(np.dtype("<i8"), capacity, start=start)
        self.ring.slots[:] = -1  # nothing written: a read of it is a stale read
        self.publish_first = publish_first
        self.producer = _Side()
        self.consumer = _Side()
        self.next_value = 0

    @property
    def popped(self) -> list[int]:
        return self.consumer.done

    @property
    def pushed(self) -> list[int]:
        return self.producer.done

    def producer_step(self) -> str:
        """Run the producer's next access; what it did."""
        ring, side = self.ring, self.producer
        tail = ring.tail  # its own counter: only it writes it
        if side.step == 0:
            side.seen = ring.head
            if (tail - side.seen) % _MOD >= ring.capacity:
                return "full"
            side.value, side.slot, side.step = self.next_value, tail & (ring.capacity - 1), 1
            return "read head"
        program = ("publish tail", "write slot") if self.publish_first else self.PRODUCER_STEPS[1:]
        action = program[side.step - 1]
        if action == "write slot":
            ring.slots[side.slot] = side.value
        else:
            ring.publish_tail(tail + 1)
        side.step += 1
        if side.step == len(self.PRODUCER_STEPS):
            assert side.value is not None
            side.done.append(side.value)
            self.next_value += 1
            side.step = 0
        return action

    def consumer_step(self) -> str:
        """Run the consumer's next access; what it did."""
        ring, side = self.ring, self.consumer
        head = ring.head  # its own counter
        if side.step == 0:
            side.seen = ring.tail
            if side.seen == head:
                return "empty"
            side.step = 1
            return "read tail"
        if side.step == 1:
            side.value = int(ring.slots[head & (ring.capacity - 1)])
            side.step = 2
            return "read slot"
        assert side.value is not None
        side.done.append(side.value)
        ring.publish_head(head + 1)
        side.step = 0
        return "publish head"

    def steps(self, order: Iterator[bool]) -> None:
        """Run a step of the producer for each True of ``order``, of the consumer for each
        False."""
        for producer in order:
            if producer:
                self.producer_step()
            else:
                self.consumer_step()
