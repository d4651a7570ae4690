"""Fused chains of per-chunk actors: fused and unfused networks equal Polars; what users see."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from polars.testing import assert_frame_equal
from strategies import chunk_rows, frames

import actors
from streamnet import ActorNode, ColumnNotFoundError, Context, Network


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
    return Network(ctx, nodes, fuse=fuse, pushdown=False), out  # the filter sees every row


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
        ], fuse=False, pushdown=False)  # fmt: skip
        assert "cluster" not in unfused.to_dot()
        assert unfused.explain() == "network `network`: 0 fused groups"


def _scan_network(
    ctx: Context, path: Path, *, fuse: bool, limit: int | None = None
) -> tuple[Network, Any, Any]:
    ch = [ctx.create_channel() for _ in range(5)]
    scan = actors.read_parquet(ctx, ch[0], path, columns=["i", "f", "s"], prefetch=2)
    nodes: list[ActorNode[Any]] = [
        scan,
        actors.filter(ctx, ch[0], ch[1], pl.col("i") >= 10),
        actors.with_columns(ctx, ch[1], ch[2], g=pl.col("f") * 2),
        actors.select(ctx, ch[2], ch[3], "i", "g", "s"),
    ]
    if limit is not None:
        nodes.append(actors.limit(ctx, ch[3], ch[4], limit))
    out = actors.collect(ctx, ch[4] if limit is not None else ch[3], into="polars")
    # without pushdown, the unfused filter is not in the scan: it reads every row group
    return Network(ctx, [*nodes, out], fuse=fuse, pushdown=False), scan, out


def _sorted_file(directory: Path, df: pl.DataFrame, group_rows: int) -> Path:
    path = directory / "t.parquet"
    df.with_columns(pl.col("i").sort(nulls_last=True)).write_parquet(
        path, row_group_size=group_rows, statistics=True
    )
    return path


@settings(max_examples=15, deadline=None)
@given(frames(), chunk_rows)
def test_a_parquet_scan_heads_a_chain_fused_and_unfused_equal_polars(
    df: pl.DataFrame, rows: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _sorted_file(Path(tmp), df, rows)
        expected = (
            pl.read_parquet(path)
            .filter(pl.col("i") >= 10)
            .with_columns(g=pl.col("f") * 2)
            .select("i", "g", "s")
        )
        reads = {}
        for fuse in (True, False):
            with Context() as ctx:
                network, scan, out = _scan_network(ctx, path, fuse=fuse)
                assert len(network.fused) == int(fuse)
                network.run()
                assert_frame_equal(out.result(), expected)
                reads[fuse] = scan.result()
        # The chain's leading filter prunes row groups too, never more than it should.
        assert reads[True].row_groups_read <= reads[False].row_groups_read


def test_the_chain_s_leading_filter_prunes_row_groups_by_statistics(tmp_path: Path) -> None:
    df = pl.DataFrame({"i": range(100), "f": [1.0] * 100, "s": ["a"] * 100})
    path = _sorted_file(tmp_path, df, 10)
    reports = {}
    for fuse in (True, False):
        with Context() as ctx:
            network, scan, out = _scan_network(ctx, path, fuse=fuse)
            network.run()
            assert out.result()["i"].to_list() == list(range(10, 100))
            reports[fuse] = scan.result()
            stats = {a.name: a for a in network.statistics().actors}
            if fuse:
                assert stats["filter#0"].fused_with == ("read_parquet#0",)
    assert reports[False].row_groups_read == 10
    assert reports[True].row_groups_read == 9  # the first row group holds only i < 10
    assert reports[True].rows_read == 90
    assert reports[True].rows_emitted == 90


@pytest.mark.timeout(60)
def test_a_limit_after_a_fused_scan_stops_the_read(tmp_path: Path) -> None:
    df = pl.DataFrame({"i": range(10_000), "f": [1.0] * 10_000, "s": ["a"] * 10_000})
    path = _sorted_file(tmp_path, df, 100)
    with Context() as ctx:
        network, scan, out = _scan_network(ctx, path, fuse=True, limit=5)
        assert len(network.fused) == 1
        network.run()
        assert out.result()["i"].to_list() == [10, 11, 12, 13, 14]
    assert scan.result().row_groups_read < 100


def test_a_fused_scan_s_errors_name_the_file_or_the_actor(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame({"i": [1, 2], "f": [1.0, 2.0], "s": ["a", "b"]}).write_parquet(path)
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        network = Network(ctx, [
            actors.read_parquet(ctx, a, path),
            actors.with_columns(ctx, a, b, j=pl.col("missing") + 1),
            actors.collect(ctx, b),
        ])  # fmt: skip
        assert "0. source  [read_parquet#0]" in network.explain()
        with pytest.raises(ColumnNotFoundError, match="with_columns#0"):
            network.run()
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        network = Network(ctx, [
            actors.read_parquet(ctx, a, path),
            actors.cast(ctx, a, b, {"s": pl.Int64}),
            actors.collect(ctx, b),
        ])  # fmt: skip
        with pytest.raises(pl.exceptions.InvalidOperationError) as info:
            network.run()
        assert "cast#0" in "".join(info.value.__notes__)


def test_the_timeline_of_a_fused_network_shows_the_head_working_for_its_members() -> None:
    df = pl.DataFrame({"i": [1, 2, 3]})
    with Context(trace=True) as ctx:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        network = Network(ctx, [
            actors.from_polars(ctx, a, df),
            actors.filter(ctx, a, b, pl.col("i") > 1),
            actors.select(ctx, b, c, "i"),
            actors.collect(ctx, c),
        ])  # fmt: skip
        network.run()
        actors_seen = {span.actor for span in network.timeline().spans}
    assert "filter#0" in actors_seen and "select#0" not in actors_seen
