"""Fused chains of per-chunk actors: fused and unfused networks equal Polars; what users see."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from polars.testing import assert_frame_equal
from strategies import chunk_rows, frames

import actors
from streamnet import ColumnNotFoundError, Context, Network


def _network(ctx: Context, df: pl.DataFrame, rows: int, *, fuse: bool) -> tuple[Network, object]:
    ch = [ctx.create_channel() for _ in range(6)]
    out = actors.collect(ctx, ch[5], into="polars")
    nodes = [
        actors.from_polars(ctx, ch[0], df, chunk_rows=rows),
        actors.filter(ctx, ch[0], ch[1], (pl.col("i") > 0) | pl.col("s").is_null()),
        actors.with_columns(ctx, ch[1], ch[2], g=pl.col("f") * 2),
        actors.select(ctx, ch[2], ch[3], "i", "g", "s"),
        actors.rename(ctx, ch[3], ch[4], {"s": "name"}),
        actors.cast(ctx, ch[4], ch[5], {"i": pl.Float64}),
        out,
    ]
    return Network(ctx, nodes, fuse=fuse), out


def _expected(df: pl.DataFrame) -> pl.DataFrame:
    return (
        df.filter((pl.col("i") > 0) | pl.col("s").is_null())
        .with_columns(g=pl.col("f") * 2)
        .select("i", "g", "s")
        .rename({"s": "name"})
        .cast({"i": pl.Float64})
    )


@settings(max_examples=15, deadline=None)
@given(frames(), chunk_rows)
def test_fused_and_unfused_networks_equal_polars(df: pl.DataFrame, rows: int) -> None:
    for fuse in (True, False):
        with Context() as ctx:
            network, out = _network(ctx, df, rows, fuse=fuse)
            network.run()
            assert_frame_equal(out.result(), _expected(df))  # type: ignore[attr-defined]
            assert len(network.fused) == int(fuse)


def test_members_do_not_run_and_statistics_keep_one_row_per_actor() -> None:
    df = pl.DataFrame({"i": [1, -2, 3], "f": [1.0, 2.0, 3.0], "s": ["a", "b", "c"]})
    with Context() as ctx:
        network, _ = _network(ctx, df, 2, fuse=True)
        (group,) = network.fused
        assert [n.name for n in group] == [
            "filter#0", "with_columns#0", "select#0", "rename#0", "cast#0"
        ]  # fmt: skip
        network.run()
        stats = {a.name: a for a in network.statistics().actors}
    assert [a.name for a in network.statistics().actors] == [n.name for n in network.actors]
    head = stats["filter#0"]
    assert head.fused_with == () and head.state == "done"
    assert head.rows_in == 3 and head.rows_out == 2
    for member in group[1:]:
        row = stats[member.name]
        assert row.fused_with == ("filter#0",)
        assert row.state == "done" and row.messages_in == row.messages_out == 0
        assert member.result() is None
    assert stats["collect#0"].rows_in == 2
    # what the tables show users: a member says which actor ran its step
    lines = {line.split()[0]: line for line in str(network.statistics()).splitlines() if line}
    assert "done (fused into filter#0)" in lines["with_columns#0"]
    assert "fused" not in lines["filter#0"]


def test_an_error_in_a_fused_step_names_its_actor() -> None:
    df = pl.DataFrame({"i": [1, 2]})
    with Context() as ctx:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        network = Network(ctx, [
            actors.from_polars(ctx, a, df),
            actors.filter(ctx, a, b, pl.col("i") > 0),
            actors.with_columns(ctx, b, c, j=pl.col("missing") + 1),
            actors.collect(ctx, c),
        ])  # fmt: skip
        assert len(network.fused) == 1
        with pytest.raises(ColumnNotFoundError, match="with_columns#0"):
            network.run()


@pytest.mark.timeout(60)
def test_a_limit_after_a_chain_stops_its_head() -> None:
    df = pl.DataFrame({"i": list(range(1000))})
    with Context() as ctx:
        ch = [ctx.create_channel() for _ in range(4)]
        out = actors.collect(ctx, ch[3], into="polars")
        network = Network(ctx, [
            actors.from_polars(ctx, ch[0], df, chunk_rows=10),
            actors.filter(ctx, ch[0], ch[1], pl.col("i") % 2 == 0),
            actors.with_columns(ctx, ch[1], ch[2], j=pl.col("i") + 1),
            actors.limit(ctx, ch[2], ch[3], 7),
            out,
        ])  # fmt: skip
        network.run()
    assert out.result()["i"].to_list() == [0, 2, 4, 6, 8, 10, 12]


def test_the_picture_draws_a_group_as_a_cluster_and_explain_lists_its_plan() -> None:
    df = pl.DataFrame({"i": [1]})
    with Context() as ctx:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        network = Network(ctx, [
            actors.from_polars(ctx, a, df),
            actors.filter(ctx, a, b, pl.col("i") > 0),
            actors.select(ctx, b, c, "i"),
            actors.collect(ctx, c),
        ])  # fmt: skip
        dot = network.to_dot()
        assert 'subgraph "cluster_filter#0"' in dot
        assert "(fused)" in dot and "style=dashed" in dot
        text = network.explain()
        assert "group `filter#0` (filter#0, select#0)" in text
        assert "2. Select  [select#0]" in text
        unfused = Network(ctx, [
            actors.from_polars(ctx, d := ctx.create_channel(), df),
            actors.filter(ctx, d, e := ctx.create_channel(), pl.col("i") > 0),
            actors.collect(ctx, e),
        ], fuse=False)  # fmt: skip
        assert "cluster" not in unfused.to_dot()
        assert unfused.explain() == "network `network`: 0 fused groups"
