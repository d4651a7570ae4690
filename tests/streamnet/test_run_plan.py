"""An actor's declared plan step (`define_actor(plan=...)`) and `run_plan` over a stream."""

from __future__ import annotations

from typing import Any, cast

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import (
    Cast,
    Channel,
    ColumnNotFoundError,
    Context,
    Filter,
    Message,
    Network,
    Plan,
    Select,
    TableChunk,
    WithColumns,
    define_actor,
    run_plan,
)


@define_actor
async def _source(ctx: Context, ch_out: Channel[TableChunk], frames: list[pl.DataFrame]) -> None:
    for i, frame in enumerate(frames):
        await ch_out.send(ctx, Message(i, TableChunk.from_polars(frame)))
    await ch_out.drain(ctx)


@define_actor
async def _sink(ctx: Context, ch_in: Channel[TableChunk]) -> list[tuple[int, pl.DataFrame]]:
    return [(msg.sequence_number, msg.payload.to_polars()) async for msg in ch_in]


def _scaled(factor: int, **_: Any) -> WithColumns:
    return WithColumns((pl.col("x") * factor,))


@define_actor(plan=_scaled)
async def _scale(
    ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk], factor: int, depth: int
) -> None:
    await run_plan(ctx, ch_in, ch_out, depth=depth)


def _run(frames: list[pl.DataFrame], factor: int, depth: int) -> list[tuple[int, pl.DataFrame]]:
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        out = _sink(ctx, b)
        Network(ctx, [_source(ctx, a, frames), _scale(ctx, a, b, factor, depth), out]).run()
        return out.result()


def test_a_node_s_step_names_the_node() -> None:
    ctx = Context()
    node = _scale(ctx, ctx.create_channel(), ctx.create_channel(), 3, 1).named("triple")
    assert node.contributes_step
    assert node.step() == WithColumns((pl.col("x") * 3,), actor="triple")
    assert node.fused_steps == ()


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.lists(st.integers(-100, 100), max_size=5), min_size=0, max_size=12),
    st.integers(1, 5),
)
def test_chunks_in_flight_come_out_in_order_with_their_sequence_numbers(
    pieces: list[list[int]], depth: int
) -> None:
    frames = [pl.DataFrame({"x": piece}, schema={"x": pl.Int64}) for piece in pieces]
    out = _run(frames, 3, depth)
    assert [seq for seq, _ in out] == list(range(len(frames)))
    for (_, got), frame in zip(out, frames, strict=True):
        assert_frame_equal(got, frame.with_columns(pl.col("x") * 3))


@define_actor(plan=lambda **_: Cast({"x": pl.UInt8}, strict=True))
async def _to_uint8(ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk]) -> None:
    await run_plan(ctx, ch_in, ch_out, depth=4)


@pytest.mark.timeout(30)
def test_a_failing_chunk_fails_the_actor_with_chunks_in_flight() -> None:
    frames = [pl.DataFrame({"x": [i]}) for i in range(20)] + [pl.DataFrame({"x": [-1]})]
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        network = Network(ctx, [_source(ctx, a, frames), _to_uint8(ctx, a, b), _sink(ctx, b)])
        with pytest.raises(pl.exceptions.InvalidOperationError) as info:
            network.run()
    assert any("_to_uint8#0" in note for note in info.value.__notes__)


def test_run_plan_without_plan_needs_a_declared_step() -> None:
    @define_actor
    async def bare(ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk]) -> None:
        await run_plan(ctx, ch_in, ch_out)

    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        frames = [pl.DataFrame({"x": [1]})]
        network = Network(ctx, [_source(ctx, a, frames), bare(ctx, a, b), _sink(ctx, b)])
        with pytest.raises(TypeError, match=r"actor `bare#0` does not"):
            network.run()


def test_an_explicit_plan_runs_as_given() -> None:
    @define_actor
    async def positive(
        ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk]
    ) -> None:
        await run_plan(ctx, ch_in, ch_out, Plan(steps=(Filter(pl.col("x") > 0),)))

    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        out = _sink(ctx, b)
        frames = [pl.DataFrame({"x": [-1, 2]}), pl.DataFrame({"x": [3, -4]})]
        Network(ctx, [_source(ctx, a, frames), positive(ctx, a, b), out]).run()
        assert [f["x"].to_list() for _, f in out.result()] == [[2], [3]]


@pytest.mark.parametrize("depth", [0, 1.5])
def test_depth_must_be_a_positive_int(depth: Any) -> None:
    with pytest.raises(ValueError, match="`depth` must be an int >= 1"):
        _run([pl.DataFrame({"x": [1]})], 1, depth)


def test_plan_must_be_callable() -> None:
    with pytest.raises(TypeError, match="`plan` must be callable"):

        @define_actor(plan=cast(Any, 3))
        async def bad(ctx: Context, ch_in: Channel[TableChunk]) -> None:
            pass


@define_actor
async def _plan_of(
    ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk], steps: tuple[Any, ...]
) -> None:
    await run_plan(ctx, ch_in, ch_out, Plan(steps=steps))


def _through(frames: list[pl.DataFrame], *steps: Any, spill: bool = False) -> list[pl.DataFrame]:
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        out = _sink(ctx, b)

        @define_actor
        async def source(ctx: Context, ch_out: Channel[TableChunk]) -> None:
            for i, frame in enumerate(frames):
                chunk = TableChunk.from_polars(frame)
                if spill:
                    chunk.spill()
                    assert chunk.is_spilled
                await ch_out.send(ctx, Message(i, chunk))
            await ch_out.drain(ctx)

        Network(ctx, [source(ctx, a), _plan_of(ctx, a, b, steps), out], fuse=False).run()
        return [frame for _, frame in out.result()]


@pytest.mark.parametrize("spill", [False, True])
def test_a_plan_that_only_selects_columns_gives_what_polars_select_gives(spill: bool) -> None:
    """Selecting columns by name picks them without a kernel (`Backend.project`), a spilled
    chunk's too: the rows, order and types Polars' select gives."""
    frames = [
        pl.DataFrame({"a": [1, 2], "b": ["x", None], "c": [1.5, 2.5]}),
        pl.DataFrame({"a": [], "b": [], "c": []}, schema={"a": pl.Int64, "b": pl.String, "c": pl.Float64}),
    ]
    steps = (Select((pl.col("c"), pl.col("a"), pl.col("b"))), Select((pl.col("b"), pl.col("c"))))
    got = _through(frames, *steps, spill=spill)
    for frame, want in zip(got, frames, strict=True):
        assert_frame_equal(frame, want.select("b", "c"))


def test_a_plan_that_only_selects_columns_names_the_actor_of_a_missing_column() -> None:
    frames = [pl.DataFrame({"a": [1], "b": [2]})]
    steps = (Select((pl.col("a"),), actor="keep_a"), Select((pl.col("b"),), actor="keep_b"))
    with pytest.raises(ColumnNotFoundError, match="keep_b"):
        _through(frames, *steps)


def test_a_select_of_a_column_twice_or_an_alias_runs_as_polars_runs_it() -> None:
    frames = [pl.DataFrame({"a": [1, 2]})]
    (renamed,) = _through(frames, Select((pl.col("a").alias("z"),)))
    assert renamed.columns == ["z"]
    with pytest.raises(pl.exceptions.DuplicateError):
        _through(frames, Select((pl.col("a"), pl.col("a"))))
