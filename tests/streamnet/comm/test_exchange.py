"""The exchange of the runtime: owned partitions hold every row of their keys, on 1-3 ranks."""

from __future__ import annotations

import asyncio
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import (
    Channel,
    Collective,
    ColumnNotFoundError,
    Context,
    Exchange,
    InputSchema,
    Message,
    Network,
    Owner,
    TableChunk,
    contiguous,
    define_actor,
    inputs,
    round_robin,
    run_ranks,
    run_ranks_async,
)

pytestmark = pytest.mark.timeout(60)


@define_actor
async def source(ctx: Context, ch_out: Channel[TableChunk], frames: list[pl.DataFrame]) -> None:
    for seq, frame in enumerate(frames):
        await ch_out.send(ctx, Message(seq, TableChunk.from_polars(frame)))
    await ch_out.drain(ctx)


@define_actor(collective=True)
async def exchanged(
    ctx: Context,
    ch_in: Channel[TableChunk],
    keys: list[str],
    partitions: int,
    owner: Owner,
    max_buffered_bytes: int | None,
) -> tuple[dict[int, pl.DataFrame], list[int], int, pl.DataFrame | None]:
    coll = Collective(ctx)
    schema = InputSchema(ch_in)
    async with Exchange(
        coll, "x", partitions=partitions, owner=owner, max_buffered_bytes=max_buffered_bytes
    ) as ex:
        async for _, chunk in inputs(ctx, ch_in, keys, where="test keys", schema=schema):
            await ex.add(chunk, keys)
        parts = await ex.finish()
    owned = parts.owned()
    out = {}
    for partition in owned:
        whole = await ctx.to_thread(parts.take, partition)
        if whole is not None:
            out[partition] = whole.to_polars()
    empty = await schema.agree(coll)
    return out, owned, parts.report.spilled_bytes, None if empty is None else empty.to_polars()


def _split(df: pl.DataFrame, pieces: int) -> list[pl.DataFrame]:
    size = max(1, -(-df.height // pieces))
    return [df.slice(i, size) for i in range(0, df.height, size)]


def _run(
    per_rank: list[list[pl.DataFrame]],
    keys: list[str],
    partitions: int,
    owner: Owner = round_robin,
    max_buffered_bytes: int | None = None,
) -> list[Any]:
    async def job(ctx: Context) -> Any:
        ch = ctx.create_channel()
        node = exchanged(ctx, ch, keys, partitions, owner, max_buffered_bytes)
        await Network(ctx, [source(ctx, ch, per_rank[ctx.rank]), node]).run_async()
        return node.result()

    return run_ranks(len(per_rank), job)


frames = st.integers(0, 60).flatmap(
    lambda n: st.builds(
        lambda k, v: pl.DataFrame(
            {"k": pl.Series(k, dtype=pl.Int32), "v": pl.Series(v, dtype=pl.Int64)}
        ),
        st.lists(st.none() | st.integers(-5, 5), min_size=n, max_size=n),
        st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n),
    )
)


@settings(max_examples=15, deadline=None)
@given(
    df=frames,
    nranks=st.integers(1, 3),
    partitions=st.integers(1, 5),
    pieces=st.integers(1, 4),
    placement=st.sampled_from(["round_robin", "contiguous"]),
)
def test_every_key_lands_whole_in_one_owned_partition(
    df: pl.DataFrame, nranks: int, partitions: int, pieces: int, placement: str
) -> None:
    per_rank = [_split(part, pieces) for part in _split(df, nranks)]
    per_rank += [[] for _ in range(nranks - len(per_rank))]
    owner = round_robin if placement == "round_robin" else contiguous(partitions)
    results = _run(per_rank, ["k"], partitions, owner)
    seen_keys: dict[Any, int] = {}
    gathered = []
    for rank, (out, owned, _, _) in enumerate(results):
        assert owned == [p for p in range(partitions) if owner(p, nranks) == rank]
        for partition, frame in out.items():
            assert partition in owned
            for key in frame["k"].unique().to_list():
                assert seen_keys.setdefault(key, partition) == partition
            gathered.append(frame)
    got = pl.concat(gathered) if gathered else df.clear()
    assert_frame_equal(got.sort("k", "v"), df.sort("k", "v"))  # no row lost or made


def test_pieces_beyond_the_bound_are_spilled_and_read_back_whole() -> None:
    df = pl.DataFrame({"k": list(range(200)), "v": [float(i) for i in range(200)]})
    per_rank = [_split(df.slice(0, 100), 5), _split(df.slice(100), 5)]
    results = _run(per_rank, ["k"], 4, max_buffered_bytes=1)
    assert all(spilled > 0 for _, _, spilled, _ in results)
    got = pl.concat([frame for out, *_ in results for frame in out.values()])
    assert_frame_equal(got.sort("k"), df)


def test_a_rank_without_input_learns_the_schema_from_its_peers() -> None:
    df = pl.DataFrame({"k": [1, 2], "s": ["a", "b"]})
    results = _run([[df], []], ["k"], 2)
    for _, _, _, empty in results:
        assert empty is not None
        assert_frame_equal(empty, df.clear())


def test_a_missing_key_column_names_the_actor_the_use_and_the_columns() -> None:
    with pytest.raises(
        ColumnNotFoundError,
        match=r"actor `exchanged#0`: column `x` not found \(test keys\); columns are \['k', 'v'\]",
    ):
        _run([[pl.DataFrame({"k": [1], "v": [2]})]], ["x"], 1)


@define_actor(collective=True)
async def stamped(ctx: Context, ch_in: Channel[TableChunk]) -> list[pl.DataFrame]:
    return [chunk.to_polars() async for _, chunk in inputs(ctx, ch_in, order=True)]


def test_order_stamps_the_rank_and_the_sequence_number_as_polars_columns() -> None:
    df = pl.DataFrame({"x": [1, 2, 3, 4, 5]})

    async def job(ctx: Context) -> list[pl.DataFrame]:
        ch = ctx.create_channel()
        node = stamped(ctx, ch)
        await Network(ctx, [source(ctx, ch, _split(df, 3)), node]).run_async()
        return node.result()

    for rank, got in enumerate(run_ranks(2, job)):
        expected = [
            part.with_columns(
                pl.lit(rank, pl.Int64).alias("__rank"), pl.lit(seq, pl.Int64).alias("__seq")
            )
            for seq, part in enumerate(_split(df, 3))
        ]
        assert len(got) == len(expected)
        for one, other in zip(got, expected, strict=True):
            assert_frame_equal(one, other)


@define_actor(collective=True)
async def fails_inside(ctx: Context, entered: asyncio.Event) -> None:
    coll = Collective(ctx)
    async with Exchange(coll, "x", partitions=2):
        if coll.rank == 0:
            entered.set()
            raise ValueError("injected inside the exchange")
        await asyncio.Event().wait()  # the peer waits: rank 0's failure ends it


async def test_leaving_the_exchange_on_an_error_stops_its_receivers() -> None:
    entered = asyncio.Event()

    async def job(ctx: Context) -> None:
        await Network(ctx, [fails_inside(ctx, entered)]).run_async()

    async with asyncio.timeout(30):
        with pytest.raises(ValueError, match="injected inside the exchange"):
            await run_ranks_async(2, job)
    assert entered.is_set()
    assert asyncio.all_tasks() == {asyncio.current_task()}  # no receiver left behind


async def test_under_a_budget_small_pieces_of_a_partition_are_held_as_one() -> None:
    """Pieces cut from small chunks join the partition's last piece while it is in memory,
    up to a share of the budget: one spill file for many, the rows all there."""
    from streamnet import Partitions
    from streamnet.comm._exchange import COALESCE_SHARE

    with Context(memory_limit=64 * 2**20) as ctx:
        held = Partitions(ctx, [0], None)
        frames = [pl.DataFrame({"k": range(i * 100, (i + 1) * 100)}) for i in range(50)]
        for frame in frames:
            await held.add(0, TableChunk.from_polars(frame))
        pieces = held.pieces[0]
        assert len(pieces) < len(frames)
        assert all(p.nbytes <= ctx.memory.share(COALESCE_SHARE) for p in pieces)  # type: ignore[operator]
        assert held.holder.resident == sum(p.nbytes for p in pieces) == ctx.memory.in_use
        got = held.take(0)
        assert got is not None
        assert_frame_equal(got.to_polars(), pl.concat(frames))
    with Context() as ctx:  # without a budget, as they came
        held = Partitions(ctx, [0], None)
        for frame in frames:
            await held.add(0, TableChunk.from_polars(frame))
        assert len(held.pieces[0]) == len(frames)
