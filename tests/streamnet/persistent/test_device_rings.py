"""What GPU-resident persistent actors share with the host, checked without a GPU: the
records messages travel as, and the single-producer, single-consumer ring protocol,
against every interleaving of its two sides (hypothesis), across the counters' wrap."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamnet.persistent import persistent_message
from streamnet.persistent.device import HEADER, RecordLayout, RecordLayoutError, RingModel, SpscRing


@persistent_message
@dataclass
class Add:
    a: float
    b: float


@persistent_message(priority=200)
@dataclass
class Step:
    n: int
    up: bool
    scale: float


@persistent_message
@dataclass
class Named:
    name: str


# ------------------------------------------------------------------ records
@given(
    a=st.floats(allow_nan=False),
    n=st.integers(-(2**63), 2**63 - 1),
    up=st.booleans(),
    ids=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
)
@settings(max_examples=50, deadline=None)
def test_a_message_comes_back_from_its_record_as_it_went(
    a: float, n: int, up: bool, ids: tuple[int, int]
) -> None:
    layout = RecordLayout([Add, Step])
    assert layout.itemsize == HEADER.itemsize + 3 * 8  # the most fields: Step's three
    messages: list[Any] = [Add(a, -a), Step(n, up, a)]  # with @persistent_message's fields
    for message in messages:
        record = layout.encode(message, message_id=ids[0], correlation_id=ids[1])
        assert record.dtype == layout.dtype
        back, message_id, correlation_id = layout.decode(record)
        assert type(back) is type(message) and (message_id, correlation_id) == ids
        assert back.priority == message.priority
        fields = [f for f in vars(message) if f not in ("message_id", "priority", "correlation_id")]
        assert all(getattr(back, f) == getattr(message, f) for f in fields)
        assert all(type(getattr(back, f)) is type(getattr(message, f)) for f in fields)


def test_records_carry_the_type_id_and_priority_in_the_header() -> None:
    layout = RecordLayout([Add, Step])
    record = layout.encode(Step(3, False, 0.5), message_id=9)
    assert (int(record["header"]["type_id"]), int(record["header"]["priority"])) == (2, 200)
    assert layout.types == (Add, Step) and layout.type_id(Add) == 1


def test_what_cannot_travel_as_a_record_is_refused_by_name() -> None:
    with pytest.raises(RecordLayoutError, match=r"`Named.name` is a <class 'str'>"):
        RecordLayout([Add, Named])
    with pytest.raises(RecordLayoutError, match="is not a @persistent_message"):
        RecordLayout([int])
    with pytest.raises(RecordLayoutError, match="listed twice"):
        RecordLayout([Add, Add])
    with pytest.raises(RecordLayoutError, match="has 3 fields, more than the 2 payload words"):
        RecordLayout([Step], words=2)
    with pytest.raises(ValueError, match="at least one message type"):
        RecordLayout([])
    layout = RecordLayout([Add, Step])
    with pytest.raises(ValueError, match=r"`Step.n` = 9223372036854775808 does not fit"):
        layout.encode(Step(2**63, True, 0.0), message_id=1)
    with pytest.raises(ValueError, match="`message_id` must be an int in 0..2"):
        layout.encode(Add(1, 2), message_id=-1)
    with pytest.raises(KeyError, match="`Named` is not one of its types"):
        layout.encode(Named("x"), message_id=1)
    empty = np.zeros((), dtype=layout.dtype)
    with pytest.raises(ValueError, match="type id 0 is none of its types"):
        layout.decode(empty)


# ------------------------------------------------------------------ the ring
START = st.sampled_from([0, 5, 2**64 - 3, 2**64 - 1])
"""Where the counters start: at 0, and just before they wrap."""


@given(
    capacity=st.sampled_from([1, 2, 4, 8]),
    start=START,
    order=st.lists(st.booleans(), max_size=300),
)
@settings(max_examples=200, deadline=None)
def test_every_interleaving_of_the_two_sides_pops_what_was_pushed_in_order(
    capacity: int, start: int, order: list[bool]
) -> None:
    model = RingModel(capacity, start=start)
    for producer in order:
        model.producer_step() if producer else model.consumer_step()
        assert model.popped == model.pushed[: len(model.popped)]  # in order, none lost or torn
        assert 0 <= len(model.ring) <= capacity  # never over capacity, wrap or not
    # both sides run to the end: everything pushed comes out
    while model.producer.step:
        model.producer_step()
    while len(model.popped) < len(model.pushed):
        model.consumer_step()
    assert model.popped == model.pushed


def test_publishing_the_count_before_the_record_is_caught() -> None:
    """The producer's order matters: with the counter published first, an interleaving
    exists in which the consumer reads a slot not written yet (what the model checks)."""
    model = RingModel(2, publish_first=True)
    assert model.producer_step() == "read head"
    assert model.producer_step() == "publish tail"  # the record is not there yet
    assert [model.consumer_step() for _ in range(3)] == ["read tail", "read slot", "publish head"]
    assert model.popped == [-1] != model.pushed[:1]  # a stale read: what the release prevents


@pytest.mark.timeout(60)
def test_a_producer_thread_and_a_consumer_thread_move_every_record_in_order() -> None:
    layout = RecordLayout([Step])
    ring = SpscRing(layout.dtype, 16, start=2**64 - 8)
    count = 5000
    got: list[int] = []
    done = threading.Event()

    def produce() -> None:
        for n in range(count):
            record = layout.encode(Step(n, n % 2 == 0, n / 2), message_id=n)
            while not ring.try_push(record):
                if done.is_set():
                    return
                threading.Event().wait(0)  # give the consumer the interpreter

    def consume() -> None:
        while len(got) < count:
            batch = ring.pop_many(5)
            if not len(batch):
                threading.Event().wait(0)
            for record in batch:
                message, message_id, _ = layout.decode(record)
                assert message.n == message_id
                got.append(message.n)

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(50)
    done.set()
    assert got == list(range(count)) and len(ring) == 0


def test_a_ring_in_a_buffer_of_its_own_layout_is_seen_by_a_second_view() -> None:
    """Host and device hold one buffer: a second view of it (as the mapped memory is)
    sees the first's records and counters."""
    buffer = np.zeros(SpscRing.nbytes(np.dtype("<u8"), 4), dtype=np.uint8)
    writer, reader = SpscRing(np.dtype("<u8"), 4, buffer), SpscRing(np.dtype("<u8"), 4, buffer)
    assert writer.push_many(np.arange(6, dtype="<u8")) == 4  # as many as fit
    assert reader.pop_many(10).tolist() == [0, 1, 2, 3] and len(writer) == 0
    assert buffer[:8].view("<u8")[0] == 4 and buffer[64:72].view("<u8")[0] == 4  # head, tail
    with pytest.raises(ValueError, match="needs 160 bytes, the buffer has 100"):
        SpscRing(np.dtype("<u8"), 4, bytearray(100))
    with pytest.raises(ValueError, match="power of two"):
        SpscRing(np.dtype("<u8"), 3)
