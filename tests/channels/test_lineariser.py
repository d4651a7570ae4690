from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import Channel, Message, SequenceError, linearise


async def _run(streams: list[list[int]], capacity: int = 1) -> list[int]:
    inputs = [Channel[int](capacity=capacity, name=f"in{k}") for k in range(len(streams))]
    output = Channel[int](capacity=capacity)

    async def produce(ch: Channel[int], seqs: list[int]) -> None:
        for s in seqs:
            await ch.send(None, Message(s, s))
        await ch.drain(None)

    async def collect() -> list[int]:
        return [m.sequence_number async for m in output]

    try:
        async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
            for c, s in zip(inputs, streams, strict=True):
                tg.create_task(produce(c, s))
            tg.create_task(linearise(None, inputs, output))
            collected = tg.create_task(collect())
    except ExceptionGroup as group:
        raise group.exceptions[0] from None
    return collected.result()


@given(st.lists(st.integers(0, 10_000), unique=True, max_size=60), st.integers(1, 5), st.randoms())
async def test_lineariser_emits_global_sequence_order(
    seqs: list[int], n: int, rnd: random.Random
) -> None:
    streams: list[list[int]] = [[] for _ in range(n)]
    for s in sorted(seqs):
        streams[rnd.randrange(n)].append(s)
    assert await _run(streams) == sorted(seqs)


async def test_lineariser_rejects_duplicate_sequence_numbers() -> None:
    with pytest.raises(SequenceError, match="sequence number 2 arrived twice"):
        await _run([[0, 2], [1, 2]])


async def test_lineariser_rejects_an_input_going_backwards() -> None:
    with pytest.raises(SequenceError, match="input 0 .*`in0`.* sent sequence number 1 after 5"):
        await _run([[5, 1], [2]], capacity=4)


async def test_lineariser_with_no_inputs_just_drains() -> None:
    assert await _run([]) == []
