"""Column pruning: a scan reads only the columns the actors downstream need, and every
network gives what Polars gives, pruned or not."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import actors
from streamnet import ActorNode, Agg, Context, Network, define_actor


@pytest.fixture(scope="module")
def tables() -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        n = 2_000
        fact = pl.DataFrame({
            "k": [i % 50 for i in range(n)], "a": range(n), "b": [i * 0.5 for i in range(n)],
            "s": [f"s{i % 7}" for i in range(n)], "wide": ["x" * 40] * n, "y": [i % 3 for i in range(n)],
        })  # fmt: skip
        dim = pl.DataFrame({"k": range(50), "y": [i % 4 for i in range(50)], "name": [f"n{i}" for i in range(50)]})
        fact_path, dim_path = Path(tmp) / "fact.parquet", Path(tmp) / "dim.parquet"
        fact.write_parquet(fact_path, row_group_size=300)
        dim.write_parquet(dim_path)
        yield fact, dim, fact_path, dim_path


def _run(build: Any, *, prune: bool) -> tuple[pl.DataFrame, Network]:
    with Context() as ctx:
        out = ctx.create_channel()
        nodes, sink = build(ctx, out)
        network = Network(ctx, [*nodes, sink], prune=prune)
        network.run()
        return sink.result(), network


def test_a_join_then_a_group_by_reads_only_their_columns(tables: Any) -> None:
    fact, dim, fact_path, dim_path = tables

    def build(ctx: Context, out: Any) -> Any:
        a, b, c, d = (ctx.create_channel() for _ in range(4))
        return [
            actors.read_parquet(ctx, a, fact_path),
            actors.filter(ctx, a, b, pl.col("a") % 2 == 0),
            actors.read_parquet(ctx, c, dim_path),
            actors.join(ctx, b, c, d, on="k"),
            actors.groupby_agg(ctx, d, out, ["name"], [Agg("b", "sum"), Agg("y_right", "max")]),
        ], actors.collect(ctx, out, into="polars")

    want = (
        fact.filter(pl.col("a") % 2 == 0).join(dim, on="k")
        .group_by("name").agg(pl.col("b").sum().alias("b_sum"), pl.col("y_right").max().alias("y_right_max"))
        .sort("name")
    )  # fmt: skip
    results = {}
    for prune in (True, False):
        got, network = _run(build, prune=prune)
        assert_frame_equal(got.sort("name"), want)
        results[prune] = network
    explained = results[True].explain()
    # each side reads those of the names it has: `s`, `wide` and nothing else of the fact
    # table, nor `a`, which only the filter read (the scan applies it, so it is left out)
    needed = "reads only the columns needed downstream:"
    assert f"source `read_parquet#0` {needed} ['b', 'k', 'name', 'y', 'y_right']" in explained
    assert f"source `read_parquet#1` {needed} ['b', 'k', 'name', 'y', 'y_right']" in explained
    assert "reads only" not in results[False].explain()
    sent = {p: n.statistics().actor("read_parquet#0").bytes_out for p, n in results.items()}
    assert sent[True] < sent[False] / 2  # the wide column and `s` stayed on disk


def test_a_sink_that_keeps_everything_prunes_nothing(tables: Any) -> None:
    fact, _, fact_path, _ = tables

    def build(ctx: Context, out: Any) -> Any:
        a = ctx.create_channel()
        return [
            actors.read_parquet(ctx, a, fact_path),
            actors.filter(ctx, a, out, pl.col("k") == 3),
        ], actors.collect(ctx, out, into="polars")

    got, network = _run(build, prune=True)
    assert_frame_equal(got, fact.filter(pl.col("k") == 3))
    assert "reads only" not in network.explain()


def test_an_actor_of_unknown_code_needs_every_column_unless_it_declares_them(tables: Any) -> None:
    fact, _, fact_path, _ = tables

    @define_actor
    async def opaque(ctx: Context, ch_in: Any, ch_out: Any) -> None:
        async for msg in ch_in:
            await ch_out.send(ctx, msg)

    @define_actor(columns=lambda wanted, **_: (wanted or frozenset()) | {"a"})
    async def declared(ctx: Context, ch_in: Any, ch_out: Any) -> None:
        async for msg in ch_in:
            await ch_out.send(ctx, msg)

    for kind, expect in ((opaque, None), (declared, ["a", "k"])):

        def build(ctx: Context, out: Any, kind: Any = kind) -> Any:
            a, b = ctx.create_channel(), ctx.create_channel()
            return [
                actors.read_parquet(ctx, a, fact_path),
                kind(ctx, a, b),
                actors.select(ctx, b, out, "k"),
            ], actors.collect(ctx, out, into="polars")

        got, network = _run(build, prune=True)
        assert_frame_equal(got, fact.select("k"))
        line = f"source `read_parquet#0` reads only the columns needed downstream: {expect}"
        assert (line in network.explain()) is (expect is not None)


def test_counting_rows_reads_one_column_still(tables: Any) -> None:
    fact, _, fact_path, _ = tables

    def build(ctx: Context, out: Any) -> Any:
        a = ctx.create_channel()
        return [
            actors.read_parquet(ctx, a, fact_path),
            actors.groupby_agg(ctx, a, out, [], [Agg(None, "len", "n")]),
        ], actors.collect(ctx, out, into="polars")

    got, network = _run(build, prune=True)
    assert got["n"].to_list() == [fact.height]
    assert "source `read_parquet#0` reads only the columns needed downstream: []" in network.explain()


COLUMNS = ["k", "a", "b", "s", "wide", "y"]
STAGES = st.sampled_from([
    ("filter", lambda: pl.col("a") % 3 != 0),
    ("with_columns", lambda: {"c": pl.col("b") * 2}),
    ("with_columns", lambda: {"a": pl.col("a") + pl.col("y")}),
    ("rename", lambda: {"s": "t"}),
    ("shuffle", lambda: "k"),
    ("sort", lambda: ["k", "a"]),
])  # fmt: skip


def _apply(frame: pl.DataFrame, kind: str, arg: Any) -> pl.DataFrame:
    if kind == "filter":
        return frame.filter(arg)
    if kind == "with_columns":
        return frame.with_columns(**arg)
    if kind == "rename":
        return frame.rename(arg) if "s" in frame.columns else frame
    if kind == "sort":
        return frame.sort(arg)
    return frame


@settings(max_examples=12, deadline=None)
@given(stages=st.lists(STAGES, max_size=4), keep=st.lists(st.sampled_from([*COLUMNS, "c", "t"]), min_size=1, unique=True))
def test_any_chain_then_a_select_equals_polars_pruned_or_not(
    tables: Any, stages: list[tuple[str, Any]], keep: list[str]
) -> None:
    fact, _, fact_path, _ = tables
    want = fact
    plan = []
    for kind, make in stages:
        if kind == "rename" and "s" not in want.columns:
            continue
        arg = make()
        plan.append((kind, arg))
        want = _apply(want, kind, arg)
    keep = [c for c in keep if c in want.columns] or ["k"]
    want = want.select(keep)

    def build(ctx: Context, out: Any) -> Any:
        chans = [ctx.create_channel() for _ in range(len(plan) + 1)]
        nodes: list[ActorNode[Any]] = [actors.read_parquet(ctx, chans[0], fact_path)]
        for i, (kind, arg) in enumerate(plan):
            src, dst = chans[i], chans[i + 1]
            if kind == "filter":
                nodes.append(actors.filter(ctx, src, dst, arg))
            elif kind == "with_columns":
                nodes.append(actors.with_columns(ctx, src, dst, **arg))
            elif kind == "rename":
                nodes.append(actors.rename(ctx, src, dst, arg))
            elif kind == "shuffle":
                nodes.append(actors.shuffle(ctx, src, dst, arg))
            else:
                nodes.append(actors.sort(ctx, src, dst, arg))
        nodes.append(actors.select(ctx, chans[-1], out, *keep))
        return nodes, actors.collect(ctx, out, into="polars")

    for prune in (True, False):
        got, _ = _run(build, prune=prune)
        if any(kind in ("shuffle",) for kind, _ in plan) and not any(k == "sort" for k, _ in plan):
            got, expected = got.sort(keep), want.sort(keep)
        else:
            expected = want
        assert_frame_equal(got, expected)
