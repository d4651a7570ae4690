"""A fused chain ending at groupby_agg: the head computes partials, the group-by merges them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from ranks import run, size
from strategies import chunk_rows, frames

import actors
from streamnet import ActorNode, Agg, Context, Network

DECOMPOSABLE = [
    Agg("i", "sum"), Agg("f", "mean"), Agg("i", "min"), Agg("s", "max"), Agg("i", "count"),
    Agg(None, "len", "n"), Agg("i", "first"), Agg("s", "last"), Agg("i", "std"), Agg("g", "var"),
]  # fmt: skip


def _steps(ctx: Context, ch_in: Any, ch_out: Any) -> list[Any]:
    mid = ctx.create_channel()
    return [
        actors.filter(ctx, ch_in, mid, (pl.col("i") > -40) | pl.col("s").is_null()),
        actors.with_columns(ctx, mid, ch_out, g=pl.col("i") * 2),
    ]


def _before(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter((pl.col("i") > -40) | pl.col("s").is_null()).with_columns(g=pl.col("i") * 2)


def _expected(df: pl.DataFrame, keys: list[str], aggs: list[Agg]) -> pl.DataFrame:
    wholes = [agg.polars() for agg in aggs]
    return df.group_by(keys).agg(wholes) if keys else df.select(wholes)


def _same(got: pl.DataFrame, want: pl.DataFrame, keys: list[str]) -> None:
    if keys:
        got, want = got.sort(keys, nulls_last=True), want.sort(keys, nulls_last=True)
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-6, abs_tol=1e-6)


def _share(df: pl.DataFrame, rank: int, nranks: int) -> pl.DataFrame:
    """Rank ``rank``'s contiguous slice of ``df``: the ranks' streams in rank order are ``df``."""
    per = -(-df.height // nranks)
    return df.slice(rank * per, per)


def _aggregate(
    df: pl.DataFrame, nranks: int, rows: int, keys: list[str], aggs: list[Agg], *, fuse: bool
) -> tuple[pl.DataFrame, str]:
    """The network's result over ``nranks`` ranks, and rank 0's explain()."""

    async def job(ctx: Context) -> tuple[pl.DataFrame, str]:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        out = actors.collect(ctx, c, into="polars")
        source = actors.from_polars(ctx, a, _share(df, ctx.rank, ctx.nranks), chunk_rows=rows)
        group = actors.groupby_agg(ctx, b, c, keys, aggs)
        network = Network(ctx, [source, *_steps(ctx, a, b), group, out], fuse=fuse)
        await network.run_async()
        assert group.state == "done"  # linked or not, the group-by runs
        return out.result(), network.explain()

    results = run(size(nranks), job)
    return pl.concat([frame for frame, _ in results]), results[0][1]


@settings(max_examples=20, deadline=None)
@given(
    df=frames(),
    rows=chunk_rows,
    nranks=st.integers(1, 3),
    keys=st.sampled_from([["s"], []]),
    aggs=st.lists(st.sampled_from(DECOMPOSABLE), min_size=1, max_size=4, unique=True),
)
def test_a_chain_fused_into_its_group_by_equals_the_unfused_network_and_polars(
    df: pl.DataFrame, rows: int, nranks: int, keys: list[str], aggs: list[Agg]
) -> None:
    aggs = [agg for agg in aggs if agg.column not in keys]
    if not aggs:
        aggs = [Agg(None, "len", "n")]
    want = _expected(_before(df), keys, aggs)
    for fuse in (True, False):
        got, explained = _aggregate(df, nranks, rows, keys, aggs, fuse=fuse)
        _same(got, want, keys)
        assert ("partials to `groupby_agg#0`" in explained) is fuse
        assert ("Stamp  [groupby_agg#0]" in explained) is (
            fuse and any(a.follows_order for a in aggs)
        )


@settings(max_examples=10, deadline=None)
@given(
    df=frames(),
    rows=st.integers(1, 20),
    nranks=st.integers(1, 3),
    keys=st.sampled_from([["s"], []]),
)
def test_a_parquet_scan_fused_into_its_group_by_equals_polars(
    df: pl.DataFrame, rows: int, nranks: int, keys: list[str]
) -> None:
    aggs = [Agg("i", "sum"), Agg("g", "mean"), Agg("i", "first"), Agg(None, "len", "n")]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        df.write_parquet(path, row_group_size=rows)
        want = _expected(_before(pl.read_parquet(path)), keys, aggs)
        for fuse in (True, False):

            async def job(ctx: Context, fuse: bool = fuse) -> pl.DataFrame:
                a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
                out = actors.collect(ctx, c, into="polars")
                nodes = [
                    actors.read_parquet(ctx, a, path, prefetch=2),
                    *_steps(ctx, a, b),
                    actors.groupby_agg(ctx, b, c, keys, aggs),
                    out,
                ]
                network = Network(ctx, nodes, fuse=fuse)
                assert ("partials to" in network.explain()) is fuse
                await network.run_async()
                return out.result()  # type: ignore[no-any-return]

            _same(pl.concat(run(size(nranks), job)), want, keys)


def test_a_scan_straight_into_a_group_by_is_linked(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    df = pl.DataFrame({"k": [1, 2, 1, 2, 3], "x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    df.write_parquet(path, row_group_size=2)
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        out = actors.collect(ctx, b, into="polars")
        group = actors.groupby_agg(ctx, a, b, "k", {"x": ["sum", "mean"]})
        network = Network(ctx, [actors.read_parquet(ctx, a, path), group, out])
        assert [[n.name for n in g] for g in network.fused] == [["read_parquet#0"]]
        assert "1. PartialAggregate  [groupby_agg#0]" in network.explain()
        network.run()
        want = df.group_by("k").agg(x_sum=pl.col("x").sum(), x_mean=pl.col("x").mean())
        _same(out.result(), want, ["k"])
        stats = {s.name: s for s in network.statistics().actors}
        assert stats["groupby_agg#0"].fused_with == ()  # it ran, with counts of its own
        assert stats["groupby_agg#0"].messages_in > 0


@pytest.mark.parametrize("keys", [["k"], []])
def test_n_unique_by_key_keeps_the_group_by_out_of_the_chain(keys: list[str]) -> None:
    df = pl.DataFrame({"k": [1, 2, 1, 2, 3], "x": [1, 2, 1, 4, 5]})
    with Context() as ctx:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        out = actors.collect(ctx, c, into="polars")
        nodes: list[ActorNode[Any]] = [
            actors.from_polars(ctx, a, df, chunk_rows=2),
            actors.filter(ctx, a, b, pl.col("x") > 1),
            actors.groupby_agg(ctx, b, c, keys, {"x": ["n_unique"]}),
            out,
        ]
        network = Network(ctx, nodes)
        # by key, the rows must travel; without keys, the distinct values are partials
        assert ("partials to" in network.explain()) is (not keys)
        network.run()
        _same(
            out.result(), _expected(df.filter(pl.col("x") > 1), keys, [Agg("x", "n_unique")]), keys
        )


def test_a_scan_into_a_group_by_reads_runs_of_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    df = pl.DataFrame({"k": [i % 3 for i in range(240)], "x": range(240)})
    df.write_parquet(path, row_group_size=5)  # 48 row groups
    with Context(num_threads=2) as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        out = actors.collect(ctx, b, into="polars")
        scan = actors.read_parquet(ctx, a, path)
        network = Network(ctx, [scan, actors.groupby_agg(ctx, a, b, "k", {"x": ["sum"]}), out])
        network.run()
        _same(out.result(), df.group_by("k").agg(x_sum=pl.col("x").sum()), ["k"])
        report = scan.result()
        assert (report.row_groups_read, report.rows_read) == (48, 240)
        # 240 rows over 2 threads (of the cores there are): a run of rows per thread
        stats = {s.name: s for s in network.statistics().actors}
        assert stats["groupby_agg#0"].messages_in == min(2, os.cpu_count() or 1)


ROWS = pl.DataFrame({"x": range(480)})
"""Written in 48 row groups of 10 rows by `_scan_then`."""


def _scan_then(
    tmp_path: Path, step: Callable[[Context, Any, Any], ActorNode[Any]]
) -> tuple[pl.DataFrame, int, int]:
    """`ROWS` read in 48 row groups (2 threads) through ``step(ctx, ch_in, ch_out)``: what
    comes out, the row groups read and the chunks the scan sent."""
    path = tmp_path / "t.parquet"
    ROWS.write_parquet(path, row_group_size=10)
    with Context(num_threads=2) as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        out = actors.collect(ctx, b, into="polars")
        scan = actors.read_parquet(ctx, a, path)
        network = Network(ctx, [scan, step(ctx, a, b), out])
        network.run()
        sent = network.statistics().actor("read_parquet#0").messages_out
        return out.result(), scan.result().row_groups_read, sent


def test_a_scan_whose_plan_lets_few_rows_through_reads_runs_of_row_groups(tmp_path: Path) -> None:
    keep = pl.col("x") % 10 == 0  # one row of each row group
    got, row_groups, sent = _scan_then(tmp_path, lambda ctx, a, b: actors.filter(ctx, a, b, keep))
    assert_frame_equal(got, ROWS.filter(keep))
    assert row_groups == 48
    # after the first tasks, a tenth of the rows come out: tasks join row groups
    assert sent < 48 / 2


def test_a_scan_into_partials_reads_one_run_per_core_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each run of row groups into a group-by's partials is a query on every core: the scan
    reads one per core at once, not as many as the Context has threads."""
    import threading

    from streamnet.backends.cpu._plans import CpuPlans

    monkeypatch.setattr("actors._parquet.AGGREGATE_TASK_ROWS", 20)
    cores = min(6, os.cpu_count() or 1)
    state = threading.Condition()
    running, most = 0, 0
    scan = CpuPlans.scan

    def counted(self: CpuPlans, *args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with state:
            running += 1
            most = max(most, running)
            state.notify_all()
            # give a task beyond one per core the time to start, were it given out
            state.wait_for(lambda: running > cores, timeout=0.02)
        try:
            return scan(self, *args, **kwargs)
        finally:
            with state:
                running -= 1

    monkeypatch.setattr(CpuPlans, "scan", counted)
    path = tmp_path / "t.parquet"
    ROWS.with_columns(k=pl.col("x") % 3).write_parquet(path, row_group_size=10)
    with Context(num_threads=6) as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        out = actors.collect(ctx, b, into="polars")
        nodes: list[ActorNode[Any]] = [
            actors.read_parquet(ctx, a, path), actors.groupby_agg(ctx, a, b, "k", {"x": "sum"}), out
        ]  # fmt: skip
        network = Network(ctx, nodes)
        assert "partials to" in network.explain()
        network.run()
    want = ROWS.with_columns(k=pl.col("x") % 3).group_by("k").agg(pl.col("x").sum().alias("x_sum"))
    assert_frame_equal(out.result().sort("k"), want.sort("k"))
    assert most <= cores


@pytest.mark.parametrize("filtered", [False, True])
def test_a_scan_that_lets_most_rows_through_reads_runs_of_row_groups_once_its_first_tasks_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filtered: bool
) -> None:
    """Each task is a query with a cost of its own: a plan that drops no row, or few of
    them, joins row groups once its first tasks have run (a scan that a limit stops early
    reads little)."""
    monkeypatch.setattr("actors._parquet.TASK_ROWS", 40)
    kept = pl.col("x") % 10 != 0

    def step(ctx: Context, a: Any, b: Any) -> ActorNode[Any]:
        return actors.filter(ctx, a, b, kept) if filtered else actors.select(ctx, a, b, "x")

    got, _, sent = _scan_then(tmp_path, step)
    assert_frame_equal(got, ROWS.filter(kept) if filtered else ROWS)
    # row groups one by one while the first tasks run, then four at a time
    assert sent < 48 // 2


def test_a_chain_whose_keys_barely_repeat_sends_its_rows_as_partials() -> None:
    """Once a chunk's partials are more than half its rows, the fused head stops grouping
    (the merge groups once): the group-by receives more partial rows than there are groups,
    and the answer is Polars'."""
    n = 400_000  # 20 chunks: those read after the first chunk's partials came back
    df = pl.DataFrame({"k": [i * 4 // 5 for i in range(n)], "x": range(n)})
    with Context() as ctx:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        out = actors.collect(ctx, c, into="polars")
        nodes: list[ActorNode[Any]] = [
            actors.from_polars(ctx, a, df, chunk_rows=20_000),
            actors.filter(ctx, a, b, pl.col("x") >= 0),
            actors.groupby_agg(ctx, b, c, "k", {"x": ["sum", "max"]}),
            out,
        ]
        network = Network(ctx, nodes)
        assert "partials to" in network.explain()
        network.run()
        want = df.group_by("k").agg(x_sum=pl.col("x").sum(), x_max=pl.col("x").max())
        _same(out.result(), want, ["k"])
        received = network.statistics().actor("groupby_agg#0").rows_in
        groups = want.height
        assert received > groups + 20_000 // 2  # chunks after the first were not grouped
