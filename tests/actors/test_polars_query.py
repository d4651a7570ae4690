"""from_polars_query / collect_query: Polars queries run as networks give what Polars gives.

Every query is checked against Polars' own ``collect`` of the same LazyFrame, on 1
and 2 ranks (the TPC-H queries and some others also on 3): rows equal as a set (floats to a relative 1e-9), and in
the same order where the query sorts (the sort keys row by row, so ties may come
in any order). The TPC-H queries run on SF 0.01 data cut into small row groups, so
that every rank reads a share, and their answers are also checked against DuckDB's
answers to the same queries written in SQL (`benchmarks.tpch_sql`), an engine that
shares nothing with Polars.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from ranks import run, size
from strategies import frames

import actors
from actors import QueryNetwork, collect, collect_query, collect_query_async, from_polars_query
from actors._query import _plan
from benchmarks import tpch_data, tpch_sql
from benchmarks.tpch_polars import QUERIES, SORTED_BY
from streamnet import Context, Network, SchemaError

pytestmark = pytest.mark.timeout(120)


def _query(lazy_frame: pl.LazyFrame, nranks: int) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """The query's result on ``nranks`` ranks (every rank's the same), and its fallbacks."""

    async def job(ctx: Context) -> tuple[pl.DataFrame, tuple[str, ...]]:
        ch = ctx.create_channel()
        query = from_polars_query(ctx, lazy_frame, ch)
        gathered = ctx.create_channel()
        sink = collect(ctx, gathered, into="polars")
        await Network(ctx, [*query, actors.allgather(ctx, ch, gathered), sink]).run_async()
        return sink.result(), query.fallbacks

    outcomes = run(size(nranks), job)
    for frame, _ in outcomes[1:]:
        assert_frame_equal(frame, outcomes[0][0])
    first: tuple[pl.DataFrame, tuple[str, ...]] = outcomes[0]
    return first


def _assert_same(got: pl.DataFrame, want: pl.DataFrame, sorted_by: Sequence[str] = ()) -> None:
    """Equal as sets of rows, and in the same order of ``sorted_by`` keys."""
    assert got.schema == want.schema
    if sorted_by:
        assert_frame_equal(got.select(sorted_by), want.select(sorted_by), check_exact=False, rel_tol=1e-9)
    assert_frame_equal(
        got.sort(got.columns, nulls_last=True),
        want.sort(want.columns, nulls_last=True),
        check_exact=False,
        rel_tol=1e-9,
    )


def _check(lazy_frame: pl.LazyFrame, nranks: int, sorted_by: Sequence[str] = ()) -> tuple[str, ...]:
    got, fallbacks = _query(lazy_frame, nranks)
    _assert_same(got, lazy_frame.collect(), sorted_by)
    return fallbacks


# ----------------------------------------------------------------------------- TPC-H
@pytest.fixture(scope="session")
def tpch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """TPC-H SF 0.01 as Parquet in row groups of 2,000 rows (several per rank)."""
    try:
        tpch_data.tpchgen()
    except FileNotFoundError:
        pytest.skip("tpchgen-cli is not installed (the `bench` extra)")
    folder = tmp_path_factory.mktemp("tpch")
    paths = tpch_data.tables(0.01, folder / "generated")
    small = {}
    for name, path in paths.items():
        small[name] = folder / f"{name}.parquet"
        pq.write_table(pq.read_table(path), small[name], row_group_size=2_000)
    return small


DuckAnswer = Callable[[str, pl.Schema], pl.DataFrame]


@pytest.fixture(scope="session")
def duckdb_tpch(tpch: dict[str, Path]) -> Iterator[DuckAnswer]:
    """DuckDB's answer to a TPC-H query on the same files, cast to the Polars query's
    types; each query runs once per session."""
    con = tpch_sql.connect(tpch, threads=1)
    answers: dict[str, pl.DataFrame] = {}

    def answer(name: str, schema: pl.Schema) -> pl.DataFrame:
        if name not in answers:
            answers[name] = tpch_sql.answer(con, name, 0.01, schema=schema)
        return answers[name]

    yield answer
    con.close()


# Queries with a part that runs on rank 0 through Polars, and why (none now).
TPCH_FALLBACKS: dict[str, str] = {}


def _check_tpch(
    tpch: dict[str, Path], duckdb_tpch: DuckAnswer, name: str, nranks: int
) -> tuple[str, ...]:
    """The query's result equals Polars' and DuckDB's answers; its fallbacks."""
    tables = {table: pl.scan_parquet(path) for table, path in tpch.items()}
    lazy_frame = QUERIES[name](tables, 0.01)
    got, fallbacks = _query(lazy_frame, nranks)
    _assert_same(got, lazy_frame.collect(), SORTED_BY[name])
    _assert_same(got, duckdb_tpch(name, got.schema), SORTED_BY[name])
    return fallbacks


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("name", list(QUERIES))
def test_tpch_query_equals_polars_and_duckdb(
    tpch: dict[str, Path], duckdb_tpch: DuckAnswer, name: str, nranks: int
) -> None:
    fallbacks = _check_tpch(tpch, duckdb_tpch, name, nranks)
    expected = TPCH_FALLBACKS.get(name)
    assert [expected is not None and expected in line for line in fallbacks] == ([True] if expected else [])


@pytest.mark.parametrize("name", list(QUERIES))
def test_tpch_query_on_three_ranks(
    tpch: dict[str, Path], duckdb_tpch: DuckAnswer, name: str
) -> None:
    _check_tpch(tpch, duckdb_tpch, name, 3)


# ----------------------------------------------------------------------------- nodes
FRAME = pl.DataFrame(
    {
        "k": ["a", "b", None, "a", "c", "b", "a", "c", "d", "a"],
        "g": [1, 2, 1, 2, 1, 2, 1, None, 3, 3],
        "x": [1.5, -2.0, None, 4.0, 0.5, 3.0, -1.0, 2.5, 7.0, 1.0],
        "i": [3, 1, 4, 1, 5, 9, 2, 6, 5, 3],
        "s": ["ab", "cd", None, "abc", "x", "yz", "ab", "cd", "q", "r"],
        "d": [date(2020, 1, d) for d in range(1, 11)],
    }
)
OTHER = pl.DataFrame({"k": ["a", "b", "e", None, "a"], "y": [10, 20, 30, 40, 50], "x": [0.1, 0.2, 0.3, 0.4, 0.5]})


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize(
    ("label", "build"),
    [
        ("filter-select", lambda f, o: f.filter(pl.col("i") > 2).select("k", (pl.col("x") * 2).alias("x2"))),
        ("with_columns", lambda f, o: f.with_columns(z=pl.col("i") + pl.col("g"), s=pl.col("s").str.to_uppercase())),
        ("group_by", lambda f, o: f.group_by("k").agg(
            pl.col("x").sum().alias("sum"), pl.col("x").mean().alias("mean"), pl.col("x").min().alias("min"),
            pl.col("x").max().alias("max"), pl.col("i").count().alias("count"), pl.len().alias("len"),
            pl.col("g").n_unique().alias("n_unique"), pl.col("x").std().alias("std"), pl.col("x").var().alias("var"),
        )),
        ("group_by expressions", lambda f, o: f.group_by((pl.col("i") % 3).alias("m")).agg(
            ((pl.col("x") * pl.col("i")).sum() / pl.len()).alias("ratio"),
            pl.col("x").filter(pl.col("g") > 1).sum().alias("filtered"),
        )),
        ("select aggregates", lambda f, o: f.select(pl.col("x").sum(), pl.col("i").max().alias("top"), pl.len())),
        ("inner join", lambda f, o: f.join(o, on="k")),
        ("left join", lambda f, o: f.join(o, on="k", how="left")),
        ("right join", lambda f, o: f.join(o, on="k", how="right")),
        ("full join", lambda f, o: f.join(o, on="k", how="full")),
        ("semi join", lambda f, o: f.join(o, on="k", how="semi")),
        ("anti join", lambda f, o: f.join(o, on="k", how="anti")),
        ("cross join", lambda f, o: f.select("k", "i").join(o.select("y"), how="cross")),
        ("cross join and filter", lambda f, o: f.join(o.select("y"), how="cross").filter(pl.col("i") * 10 > pl.col("y"))),
        ("join and filter", lambda f, o: f.join(o, on="k").filter(pl.col("x") > pl.col("x_right"))),
        ("join on two keys", lambda f, o: f.join(o.rename({"y": "i"}).with_columns(pl.col("i") // 10), on=["k", "i"])),
        ("unique", lambda f, o: f.select("k", "g").unique()),
        ("unique subset", lambda f, o: f.unique(subset=["k"], keep="any").select("k")),
        ("concat", lambda f, o: pl.concat([f.select("k", "x"), o.select("k", "x")]).group_by("k").agg(pl.col("x").sum())),
        ("explode", lambda f, o: f.select("k", pl.concat_list("i", "g").alias("l")).explode("l", empty_as_null=True)),
        ("unpivot", lambda f, o: f.select("k", "i", "g").unpivot(index="k", on=["i", "g"])),
        ("filter by an aggregate", lambda f, o: f.filter(pl.col("x") > pl.col("x").mean())),
        ("with_columns of aggregates", lambda f, o: f.with_columns(d=pl.col("x") - pl.col("x").mean(), n=pl.len())),
        ("select of shares", lambda f, o: f.select("k", (pl.col("i") / pl.col("i").sum()).alias("share"))),
        ("shared subplan", lambda f, o: (lambda j: j.join(j.group_by("k").agg(pl.col("y").sum().alias("t")), on="k"))(f.join(o, on="k"))),
    ],
)  # fmt: skip
def test_node_runs_as_actors(label: str, build: Any, nranks: int) -> None:
    lazy_frame = build(FRAME.lazy(), OTHER.lazy())
    assert _check(lazy_frame, nranks) == ()


@pytest.mark.parametrize("nranks", [1, 2])
def test_sort_and_top_k_keep_polars_order(nranks: int) -> None:
    frame = FRAME.lazy()
    assert _check(frame.sort("i", "x", descending=[True, False], nulls_last=True), nranks, ["i", "x"]) == ()
    assert _check(frame.sort("x", nulls_last=True).head(4), nranks, ["x"]) == ()
    assert _check(frame.sort(pl.col("i") * -1).head(3), nranks, ["i"]) == ()


BIG = pl.DataFrame({"key": [i % 7 for i in range(60)], "kk": list(range(60)), "v": [float(i) for i in range(60)]})
SMALL = pl.DataFrame({"id": [1, 3, 5, None], "kk": [1, 10, 33, 5], "w": ["a", "b", "c", "d"]})


@pytest.mark.parametrize("nranks", [1, 2, 3])
@pytest.mark.parametrize(
    ("label", "build", "swapped"),
    [
        ("keys of other names", lambda s, b: s.drop("kk").join(b, left_on="id", right_on="key"), True),
        ("keys of one name", lambda s, b: s.join(b, on="kk"), True),
        ("two keys", lambda s, b: s.join(b.with_columns(pl.col("kk") % 7), left_on=["id", "kk"], right_on=["key", "kk"]), True),
        ("and a filter", lambda s, b: s.drop("kk").join(b, left_on="id", right_on="key").filter(pl.col("kk") > pl.col("v") / 2), True),
        ("a column on both sides", lambda s, b: s.join(b, left_on="id", right_on="key"), False),
        ("left join", lambda s, b: s.drop("kk").join(b, left_on="id", right_on="key", how="left"), False),
    ],
)  # fmt: skip
def test_an_inner_join_across_ranks_builds_on_its_smaller_side(
    label: str, build: Any, swapped: bool, nranks: int, caplog: pytest.LogCaptureFixture
) -> None:
    query = build(SMALL.lazy(), BIG.lazy())
    with caplog.at_level(logging.DEBUG, logger="streamnet.query"):
        assert _check(query, nranks) == ()
    built_on_left = any("builds on its left input" in r.getMessage() for r in caplog.records)
    assert built_on_left == (swapped and size(nranks) > 1)


def _side_by_side(*frames: pl.LazyFrame) -> pl.LazyFrame:
    with warnings.catch_warnings():  # Polars 1.44 warns that `how="horizontal"` will change
        warnings.simplefilter("ignore", DeprecationWarning)
        return pl.concat(frames, how="horizontal")


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize(
    ("label", "build", "reason"),
    [
        ("head", lambda f: f.filter(pl.col("i") > 1).head(3), "slice (0, 3)"),
        ("tail", lambda f: f.filter(pl.col("i") > 1).tail(2), "slice (-2, 2)"),
        ("stable sort", lambda f: f.sort("g", maintain_order=True, nulls_last=True), "keeps the order of ties"),
        ("row index", lambda f: f.filter(pl.col("i") > 1).with_row_index("n"), "row index"),
        ("unique keep none", lambda f: f.unique(subset=["k"], keep="none").select("k"), "keeps no duplicate"),
        ("unique in order", lambda f: f.unique(subset=["k"], maintain_order=True, keep="first"), "order of rows"),
        ("select over rows", lambda f: f.select(pl.col("x").filter(pl.col("i") > 2)), "read more than one row"),
        ("window", lambda f: f.with_columns(pl.col("x").sum().over("k").alias("w")), "expression node `Window`"),
        ("cumulative", lambda f: f.select("k", pl.col("i").cum_sum()), "function `str.cum_sum`"),
        ("ordered group-by", lambda f: f.group_by("k", maintain_order=True).agg(pl.col("i").sum()), "keeps the order of its groups"),
        ("median", lambda f: f.group_by("k").agg(pl.col("x").median()), "aggregation `median`"),
        ("nulls match", lambda f: f.join(OTHER.lazy(), on="k", nulls_equal=True), "null keys match"),
        ("horizontal concat", lambda f: _side_by_side(f.select("k"), f.select("i")), "horizontal"),
        ("first by another column", lambda f: f.group_by("k").agg(pl.col("x").sort_by("i").first()), "`GroupBy` (node 1)"),
    ],
)  # fmt: skip
def test_what_does_not_distribute_runs_on_rank_zero(
    label: str, build: Any, reason: str, nranks: int, caplog: pytest.LogCaptureFixture
) -> None:
    lazy_frame = build(FRAME.lazy())
    ordered = label in ("head", "tail", "row index", "unique in order")
    with caplog.at_level(logging.INFO, logger="streamnet.query"):
        got, fallbacks = _query(lazy_frame, nranks)
    want = lazy_frame.collect()
    if ordered:
        assert_frame_equal(got, want)
    else:
        _assert_same(got, want, ["g"] if label == "stable sort" else ())
    assert fallbacks, "a part should run on rank 0"
    assert any(reason in line for line in fallbacks), fallbacks
    assert any(reason in record.getMessage() for record in caplog.records)
    assert not any("planned the query differently" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("nranks", [1, 2])
def test_the_length_of_a_concat_is_counted(nranks: int) -> None:
    """Polars pushes a `len` into each input of a concat and sums the lengths as UInt128, a
    type Arrow has not: the sum runs through Polars (it failed, the input of the sum a
    column the user never made)."""
    lf = pl.LazyFrame({"k": [1, 2, 3]})
    for query in (
        pl.concat([lf, lf]).select(pl.len()),
        pl.concat([lf, lf.filter(pl.col("k") > 1)]).select(pl.len()),
    ):
        assert_frame_equal(_query(query, nranks)[0], query.collect())


def _planned_apart() -> pl.LazyFrame:
    """A query that does not distribute (a filter by a mean), built with its schema asked
    at every step: Polars then numbers the nodes of its second optimisation otherwise."""
    other = pl.LazyFrame({"k": ["a", "b"], "g": [3, 2], "i": [None, 20], "b": [True, None], "d": [1, None]})
    lf = pl.LazyFrame({"k": ["b", "c"], "g": [1, 2], "i": [-15, 4], "b": [True, False], "d": [None, 2]})
    lf.collect_schema()
    other.collect_schema()
    steps: list[Callable[[pl.LazyFrame], pl.LazyFrame]] = [
        lambda q: other.filter(pl.col("d").is_null()).join(q, on="k", how="full", suffix="_x"),
        lambda q: q.filter(pl.col("i") > -3),
        lambda q: q.join(other.filter(pl.col("g") > 1).filter(pl.col("b")), on=["d", "k"], how="anti"),
        lambda q: q.filter(pl.col("i_x") >= pl.col("i_x").mean()),
    ]
    for step in steps:
        lf = step(lf)
        lf.collect_schema()
    return lf


@pytest.mark.parametrize("nranks", [1, 2])
def test_rank_zero_finds_the_parts_computed_as_actors_in_a_plan_numbered_otherwise(
    nranks: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Polars optimises the query again to run what does not distribute, and may number
    the nodes of the same plan otherwise: the parts computed as actors are found by their
    place in the plan (a node found by its number alone made Polars panic)."""
    query = _planned_apart()
    with caplog.at_level(logging.INFO, logger="streamnet.query"):
        fallbacks = _check(query, nranks)
    assert fallbacks
    assert not any("planned the query differently" in r.getMessage() for r in caplog.records)


def test_a_plan_optimised_otherwise_on_rank_zero_runs_whole_through_polars(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should Polars' second optimisation give a plan of another shape, no part of it is
    replaced by what the actors computed: Polars reads every source again, and says so."""
    monkeypatch.setattr("actors._query._build.matching_nodes", lambda first, again: None)
    query = FRAME.lazy().join(OTHER.lazy(), on="k").group_by("k").agg(pl.col("y").median())
    with caplog.at_level(logging.INFO, logger="streamnet.query"):
        assert _check(query, 2)
    assert any("planned the query differently" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("nranks", [1, 2])
def test_concat_keeps_the_order_of_its_inputs(nranks: int) -> None:
    query = pl.concat([FRAME.lazy().select("k", "x"), OTHER.lazy().select("k", "x")])
    got, fallbacks = _query(query, nranks)
    assert_frame_equal(got, query.collect())
    assert len(fallbacks) == (1 if size(nranks) > 1 else 0)  # its inputs gathered on rank 0


def test_stable_sort_keeps_the_order_of_ties() -> None:
    frame = pl.LazyFrame({"g": [2, 1, 2, 1, 2], "n": [0, 1, 2, 3, 4]})
    got, _ = _query(frame.sort("g", maintain_order=True), 2)
    assert got["n"].to_list() == [1, 3, 0, 2, 4]


def test_parquet_scan_pushes_columns_predicate_and_head(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    FRAME.write_parquet(path, row_group_size=3)
    scan = pl.scan_parquet(path)
    assert _check(scan.filter(pl.col("i") >= 3).select("k", "x"), 2) == ()
    got, fallbacks = _query(scan.head(4), 2)
    assert_frame_equal(got, FRAME.head(4))
    assert any("slice (0, 4)" in line for line in fallbacks)


def _actor_names(lazy_frame: pl.LazyFrame) -> list[str]:
    ctx = Context()
    return [node.name.split("#")[0] for node in from_polars_query(ctx, lazy_frame, ctx.create_channel())]


LINES = pl.DataFrame({"o": [i % 20 for i in range(200)], "q": [i % 7 for i in range(200)]})


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize(("min_rows", "reread"), [(0, True), (1 << 40, False)])
def test_a_scan_whose_consumers_meet_at_a_join_is_read_again_for_each_when_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nranks: int, min_rows: int, reread: bool
) -> None:
    """TPC-H Q18's shape: a scan joined to a group-by of itself. Polars computes the scan
    once for both; shared, the join's side of it would wait whole for the group-by, so a
    large one is read again (and cut by the join's key filter)."""
    path = tmp_path / "lines.parquet"
    LINES.write_parquet(path, row_group_size=30)
    scan = pl.scan_parquet(path)
    big = scan.group_by("o").agg(pl.col("q").sum().alias("total")).filter(pl.col("total") > 30)
    query = scan.join(big, on="o", how="semi")
    monkeypatch.setattr("actors._query._build.REREAD_MIN_ROWS", min_rows)
    names = _actor_names(query)
    assert names.count("read_parquet") == (2 if reread else 1)
    assert ("fanout" in names) != reread
    assert _check(query, nranks) == ()


def test_a_scan_whose_consumers_meet_at_a_union_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "lines.parquet"
    LINES.write_parquet(path, row_group_size=30)
    scan = pl.scan_parquet(path).with_columns(r=pl.col("q") * 2)
    query = pl.concat([scan.group_by("o").agg(pl.col("r").sum()), scan.group_by("o").agg(pl.col("r").max())])
    monkeypatch.setattr("actors._query._build.REREAD_MIN_ROWS", 0)
    monkeypatch.setattr("actors._query._build.SMALL_REREAD_ROWS", 0)  # as if it were large
    names = _actor_names(query)
    assert names.count("read_parquet") == 1 and "fanout" in names
    assert _check(query, 1) == ()


@pytest.mark.parametrize("nranks", [1, 2])
def test_a_small_scan_whose_consumers_meet_at_a_union_is_read_for_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nranks: int
) -> None:
    """TPC-H Q7's shape: each branch of a union joins the shared `lines` with its own part
    of a small table; read for each branch, that table's keys cut `lines`, which the
    branches still share."""
    monkeypatch.setattr("streamnet.network._predicates.KEY_FILTER_MIN_ROWS", 0)
    monkeypatch.setattr("actors._query._build.SMALL_REREAD_ROWS", 100)  # lines: 200 rows
    lines, small = tmp_path / "lines.parquet", tmp_path / "small.parquet"
    LINES.write_parquet(lines, row_group_size=30)
    pl.DataFrame({"o": range(20), "g": [i % 4 for i in range(20)]}).write_parquet(small)
    scan, groups = pl.scan_parquet(lines), pl.scan_parquet(small)
    query = pl.concat(
        [scan.join(groups.filter(pl.col("g") == g), on="o").with_columns(side=pl.lit(g)) for g in (1, 2)]
    ).group_by("side").agg(pl.len(), pl.col("q").sum())
    names = _actor_names(query)
    assert names.count("read_parquet") == 3 and names.count("fanout") == 1
    assert _check(query, nranks) == ()
    ctx = Context()
    out = ctx.create_channel()
    network = Network(ctx, [*from_polars_query(ctx, query, out), collect(ctx, out)])
    assert "skips the rows that `join#0, join#1` drops: either" in network.explain()


TEXT = FRAME.with_columns(s=pl.Series(["NA", "", None, "null", "x", "NaN", "ab", "cd", "q", "r"]))
"""FRAME with strings Polars' CSV reader keeps as they are (only an empty field is null)."""


@pytest.mark.parametrize("nranks", [1, 2])
def test_csv_scan_reads_with_read_csv(tmp_path: Path, nranks: int) -> None:
    path = tmp_path / "t.csv"
    TEXT.write_csv(path)
    scan = pl.scan_csv(path, try_parse_dates=True)
    queries = [
        scan,
        scan.filter(pl.col("i") >= 3).select("k", "s", "d"),
        scan.group_by("k").agg(pl.col("x").sum(), pl.col("d").max(), pl.len()),
        scan.join(OTHER.lazy(), on="k").select("k", "y", "s"),
    ]
    for query in queries:
        assert _check(query, nranks) == ()
        assert "read_csv" in _actor_names(query)


@pytest.mark.parametrize("nranks", [1, 2])
def test_a_csv_scan_reads_quoted_line_breaks_as_polars_does(tmp_path: Path, nranks: int) -> None:
    """A file that holds a quote is read with quoted values that may hold line breaks
    (`read_csv`'s ``multiline``); one without is cut into byte ranges as before."""
    quoted, plain = tmp_path / "quoted.csv", tmp_path / "plain.csv"
    quoted.write_text('a,b\n1,"x\ny"\n2,z\n3,"w,\n\nv"\n')
    plain.write_text("a,b\n1,x\n2,z\n")
    for path in (quoted, plain):
        assert _check(pl.scan_csv(path), nranks) == ()
        assert _check(pl.scan_csv(path).filter(pl.col("a") > 1), nranks) == ()
    assert _actor_csv_options(pl.scan_csv(quoted))["multiline"] is True
    assert _actor_csv_options(pl.scan_csv(plain))["multiline"] is False


def _actor_csv_options(lazy_frame: pl.LazyFrame) -> dict[str, Any]:
    root, _ = _plan.read_plan(lazy_frame)
    (scan,) = [node for node in root.walk() if node.op == "csv"]
    return scan.args


@pytest.mark.parametrize("nranks", [1, 2, 3])
def test_csv_scan_of_several_files_without_header(tmp_path: Path, nranks: int) -> None:
    for i in range(3):
        TEXT.slice(3 * i, 4).write_csv(tmp_path / f"part{i}.csv", separator=";", include_header=False)
    scan = pl.scan_csv(tmp_path / "*.csv", separator=";", has_header=False)
    query = scan.filter(pl.nth(3) > 1).select(*scan.collect_schema().names()[::2])
    assert _check(query, nranks) == ()
    assert "read_csv" in _actor_names(query)
    got, _ = _query(scan, nranks)  # in file and row order across ranks
    assert_frame_equal(got, scan.collect())


@pytest.mark.parametrize("nranks", [1, 2])
def test_ndjson_scan_reads_with_read_ndjson(tmp_path: Path, nranks: int) -> None:
    path = tmp_path / "t.ndjson"
    TEXT.write_ndjson(path)
    scan = pl.scan_ndjson(path)
    for query in [scan, scan.filter(pl.col("x") > 0).select("k", "d"), scan.group_by("k").agg(pl.col("i").max())]:
        assert _check(query, nranks) == ()
        assert "read_ndjson" in _actor_names(query)
    got, _ = _query(scan, nranks)
    assert_frame_equal(got, scan.collect())


@settings(max_examples=10)
@given(frame=frames(max_rows=40), nranks=st.sampled_from([1, 2]))
def test_random_csv_and_ndjson_scans_equal_polars(
    tmp_path_factory: pytest.TempPathFactory, frame: pl.DataFrame, nranks: int
) -> None:
    folder = tmp_path_factory.mktemp("text")
    frame.write_csv(folder / "t.csv")
    frame.write_ndjson(folder / "t.ndjson")
    for scan in (pl.scan_csv(folder / "t.csv", schema=frame.schema), pl.scan_ndjson(folder / "t.ndjson", schema=frame.schema)):
        query = scan.filter(pl.col("i").is_null() | (pl.col("i") > 0)).select("s", "f")
        assert _check(query, nranks) == ()


@pytest.mark.parametrize(
    ("scan", "reason"),
    [
        (lambda p: pl.scan_csv(p, comment_prefix="#"), "`comment_prefix` other than None"),
        (lambda p: pl.scan_csv(p, null_values=["a"]), "`null_values`"),
        (lambda p: pl.scan_csv(p, skip_rows_after_header=1), "`skip_rows_after_header` other than 0"),
        (lambda p: pl.scan_csv(p, new_columns=["k", "g2", "x2", "i2", "s2", "d2"]), "column_names_overwrite"),
        (lambda p: pl.scan_csv(p, quote_char="'"), "a quote or end of line"),
        (lambda p: pl.scan_csv(p, row_index_name="n"), "row_index"),
    ],
)  # fmt: skip
def test_a_csv_scan_read_otherwise_leaves_the_query_above_it_to_polars(
    tmp_path: Path, scan: Any, reason: str
) -> None:
    path = tmp_path / "t.csv"
    FRAME.write_csv(path)
    query = scan(path).join(OTHER.lazy(), on="k").group_by("k").agg(pl.col("y").sum())
    got, fallbacks = _query(query, 2)
    _assert_same(got, query.collect())
    assert len(fallbacks) == 1 and "a CSV scan" in fallbacks[0] and reason in fallbacks[0], fallbacks


def test_an_unknown_scan_leaves_the_query_above_it_to_polars(tmp_path: Path) -> None:
    path = tmp_path / "t.ipc"
    FRAME.write_ipc(path)
    query = pl.scan_ipc(path).join(OTHER.lazy(), on="k").group_by("k").agg(pl.col("y").sum())
    got, fallbacks = _query(query, 2)
    _assert_same(got, query.collect())
    assert len(fallbacks) == 1 and "shows other engines no ipc scan" in fallbacks[0], fallbacks


def test_the_output_feeds_hand_written_actors() -> None:
    query = FRAME.lazy().group_by("k").agg(pl.col("i").sum())

    async def job(ctx: Context) -> pl.DataFrame:
        ch, kept, gathered = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        sink = collect(ctx, gathered, into="polars")
        own = [actors.filter(ctx, ch, kept, pl.col("i") > 5), actors.allgather(ctx, kept, gathered), sink]
        await Network(ctx, [*from_polars_query(ctx, query, ch), *own]).run_async()
        result: pl.DataFrame = sink.result()
        return result

    for got in run(size(2), job):
        _assert_same(got, query.filter(pl.col("i") > 5).collect())


# ----------------------------------------------------------------------------- scan_channel
def _over_channel(
    nranks: int,
    frame: pl.DataFrame,
    build: Callable[[pl.LazyFrame], pl.LazyFrame],
    *,
    schema: Any = None,
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """``build(scan_channel(ch))`` on ``nranks`` ranks, where hand-written actors send each
    rank's share of ``frame`` into ``ch`` (its rows times ten); the result and the fallbacks."""

    async def job(ctx: Context) -> tuple[pl.DataFrame, tuple[str, ...]]:
        share = frame.slice(ctx.rank * frame.height // ctx.nranks)
        share = share.head((ctx.rank + 1) * frame.height // ctx.nranks - ctx.rank * frame.height // ctx.nranks)
        raw, produced, out, gathered = (ctx.create_channel() for _ in range(4))
        own = [
            actors.from_polars(ctx, raw, share, chunk_rows=2),
            actors.with_columns(ctx, raw, produced, pl.col("i") * 10),
        ]
        lazy_frame = build(actors.scan_channel(produced, frame.schema if schema is None else schema))
        query = from_polars_query(ctx, lazy_frame, out)
        sink = collect(ctx, gathered, into="polars")
        await Network(ctx, [*own, *query, actors.allgather(ctx, out, gathered), sink]).run_async()
        return sink.result(), query.fallbacks

    outcomes = run(size(nranks), job)
    first: tuple[pl.DataFrame, tuple[str, ...]] = outcomes[0]
    return first


@pytest.mark.parametrize("nranks", [1, 2, 3])
@pytest.mark.parametrize(
    ("label", "build"),
    [
        ("whole", lambda s: s),
        ("filter and select", lambda s: s.filter(pl.col("i") > 20).select("k", "x")),
        ("group_by", lambda s: s.group_by("k").agg(pl.col("i").sum(), pl.col("x").mean())),
        ("join", lambda s: s.join(OTHER.lazy(), on="k").select("k", "i", "y")),
        ("self-join", lambda s: s.join(s.group_by("k").agg(pl.col("i").max().alias("top")), on="k")),
        ("sort", lambda s: s.sort("i", "x", nulls_last=True)),
    ],
)  # fmt: skip
def test_scan_channel_reads_a_stream_of_hand_written_actors(label: str, build: Any, nranks: int) -> None:
    got, fallbacks = _over_channel(nranks, FRAME, build)
    want = build(FRAME.lazy().with_columns(pl.col("i") * 10)).collect()
    _assert_same(got, want, ["i", "x"] if label == "sort" else ())
    assert fallbacks == ()


@pytest.mark.parametrize("nranks", [1, 2])
def test_a_query_over_a_channel_that_does_not_distribute_reads_it_gathered(nranks: int) -> None:
    def build(scan: pl.LazyFrame) -> pl.LazyFrame:
        return scan.filter(pl.col("g") > 1).with_columns(pl.col("x").sum().over("k").alias("w"))

    got, fallbacks = _over_channel(nranks, FRAME, build)
    _assert_same(got, build(FRAME.lazy().with_columns(pl.col("i") * 10)).collect())
    assert len(fallbacks) == 1 and "Window" in fallbacks[0]
    got, fallbacks = _over_channel(nranks, FRAME, lambda s: s.head(3))
    assert got.height == 3 and any("slice (0, 3)" in line for line in fallbacks)


@pytest.mark.parametrize("nranks", [1, 2])
def test_a_chunk_of_another_schema_names_the_channel(nranks: int) -> None:
    declared = {**FRAME.schema, "i": pl.Int32}
    with pytest.raises(SchemaError, match=r"scan_channel: chunk \d+ of channel `ch#1` does not have the schema .* i: Int32.*; got \{.*i: Int64"):
        _over_channel(nranks, FRAME, lambda s: s.select("k", "i"), schema=declared)


def test_polars_cannot_collect_a_scan_of_a_channel() -> None:
    ctx = Context()
    lazy_frame = actors.scan_channel(ctx.create_channel(name="orders"), {"x": pl.Int64})
    with pytest.raises(Exception, match="reads the stream of channel `orders`, which only a network can give"):
        lazy_frame.collect()


def test_scan_channel_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="`ch` must be a Channel, got DataFrame"):
        actors.scan_channel(FRAME, FRAME.schema)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scan_channel"):
        actors.scan_channel(Context().create_channel(), ["x"])


def test_query_network_lists_its_actors() -> None:
    ctx = Context()
    query = from_polars_query(ctx, FRAME.lazy().filter(pl.col("i") > 2), ctx.create_channel())
    assert isinstance(query, QueryNetwork)
    assert len(query) == len(list(query)) >= 2
    assert query.fallbacks == ()


def test_collect_query_runs_on_a_context_of_its_own() -> None:
    query = FRAME.lazy().group_by("g").agg(pl.col("i").sum()).sort("g", nulls_last=True)
    assert_frame_equal(collect_query(query), query.collect())


async def test_collect_query_async_on_a_given_context() -> None:
    query = FRAME.lazy().select(pl.col("x").max())
    with Context() as ctx:
        assert_frame_equal(await collect_query_async(ctx, query), query.collect())


def test_a_lazy_frame_is_required() -> None:
    with pytest.raises(TypeError, match="must be a polars.LazyFrame, got DataFrame"):
        from_polars_query(Context(), FRAME, Context().create_channel())  # type: ignore[arg-type]


def test_an_unknown_plan_version_is_not_implemented(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_plan, "PLAN_VERSIONS", (99,))
    with pytest.raises(NotImplementedError, match=r"in version \(\d+, \d+\).*does not know"):
        collect_query(FRAME.lazy())


# ----------------------------------------------------------------------------- expressions
EXPRESSIONS = {
    "negate": -pl.col("x"), "abs": pl.col("x").abs(), "pow": pl.col("x") ** 2, "sqrt": pl.col("i").sqrt(),
    "round": pl.col("x").round(1), "floor": pl.col("x").floor(), "ceil": pl.col("x").ceil(),
    "log": pl.col("i").log(), "exp": pl.col("x").exp(), "clip": pl.col("x").clip(0, 2),
    "is_null": pl.col("x").is_null(), "is_not_null": pl.col("s").is_not_null(),
    "is_nan": pl.col("x").is_nan(), "is_in": pl.col("i").is_in([1, 5]),
    "is_in_strings": pl.col("s").is_in(["ab", "q"]), "is_in_nulls": pl.col("g").is_in([1, None], nulls_equal=True),
    "between": pl.col("i").is_between(2, 5, closed="none"),
    "not": ~(pl.col("i") > 2), "fill_null": pl.col("x").fill_null(0), "coalesce": pl.coalesce("x", "i"),
    "fill_nan": pl.col("x").fill_nan(0), "floordiv": pl.col("i") // 2, "mod": pl.col("i") % 2, "truediv": pl.col("i") / 2,
    "xor": (pl.col("i") > 2) ^ (pl.col("g") > 1), "or": (pl.col("i") > 2) | pl.col("x").is_null(),
    "eq_missing": pl.col("k").eq_missing("a"),
    "starts_with": pl.col("s").str.starts_with("a"), "ends_with": pl.col("s").str.ends_with("b"),
    "contains": pl.col("s").str.contains("a."), "contains_literal": pl.col("s").str.contains("a.", literal=True),
    "slice": pl.col("s").str.slice(1, 1), "slice_open": pl.col("s").str.slice(1), "len_chars": pl.col("s").str.len_chars(),
    "len_bytes": pl.col("s").str.len_bytes(), "lower": pl.col("s").str.to_lowercase(), "upper": pl.col("s").str.to_uppercase(),
    "strip": pl.col("s").str.strip_chars(), "strip_chars": pl.col("s").str.strip_chars("a"),
    "replace": pl.col("s").str.replace("a", "b"), "replace_all": pl.col("s").str.replace_all("a", "b", literal=True),
    "concat_str": pl.concat_str([pl.col("s"), pl.lit("-"), pl.col("i")], separator="_"),
    "head": pl.col("s").str.head(1), "tail": pl.col("s").str.tail(1), "zfill": pl.col("s").str.zfill(4),
    "to_date": pl.col("d").dt.to_string("%Y-%m-%d").str.to_date("%Y-%m-%d"), "to_string": pl.col("d").dt.to_string("%Y"),
    "year": pl.col("d").dt.year(), "month": pl.col("d").dt.month(), "day": pl.col("d").dt.day(),
    "quarter": pl.col("d").dt.quarter(), "weekday": pl.col("d").dt.weekday(), "ordinal_day": pl.col("d").dt.ordinal_day(),
    "truncate": pl.col("d").dt.truncate("1mo"), "offset_by": pl.col("d").dt.offset_by("1d"),
    "sum_horizontal": pl.sum_horizontal("x", "i"), "max_horizontal": pl.max_horizontal("x", "i"),
    "min_horizontal": pl.min_horizontal("x", "i"), "all_horizontal": pl.all_horizontal(pl.col("i") > 1, pl.col("g") > 1),
    "cast": pl.col("i").cast(pl.Float32), "cast_not_strict": pl.col("s").cast(pl.Int64, strict=False),
    "null_literal": pl.lit(None, dtype=pl.Int64) + pl.col("i"), "date_literal": pl.col("d") > date(2020, 1, 4),
    "duration": pl.col("d") + pl.duration(days=3), "sign": pl.col("x").sign(),
    "when": pl.when(pl.col("i") > 4).then(pl.lit("big")).when(pl.col("i") > 2).then(pl.lit("mid")).otherwise(None),
    "fused": pl.col("x") * pl.col("i") - pl.col("g"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(EXPRESSIONS))
def test_expression_is_rebuilt_exactly(name: str) -> None:
    lazy_frame = FRAME.lazy().select("k", EXPRESSIONS[name].alias("out"))
    # Polars warns from the kernels' threads, where pytest's "error" filter raises nothing.
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        got, fallbacks = _query(lazy_frame, 1)
    assert [str(w.message) for w in warned] == []  # e.g. a rebuilt `is_in` Polars deprecates
    assert fallbacks == ()
    assert_frame_equal(got, lazy_frame.collect())


@settings(max_examples=15)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(-5, 5), st.floats(-100, 100) | st.none()),
        max_size=40,
    ),
    nranks=st.sampled_from([1, 2]),
)
def test_random_group_by_and_join_equal_polars(rows: list[tuple[Any, ...]], nranks: int) -> None:
    frame = pl.DataFrame(rows, schema={"k": pl.String, "i": pl.Int64, "x": pl.Float64}, orient="row").lazy()
    query = (
        frame.filter(pl.col("i") != 0)
        .join(frame.group_by("k").agg(pl.col("x").mean().alias("m"), pl.len().alias("n")), on="k", how="left")
        .group_by("k", "n")
        .agg((pl.col("x") - pl.col("m")).abs().max().alias("spread"), pl.col("i").n_unique().alias("u"))
    )
    assert _check(query, nranks) == ()


# ----------------------------------------------------------------------------- no columns left
# Polars prunes every column where only the rows count; a chunk of no columns has no rows.
NO_COLUMNS: dict[str, Callable[[pl.LazyFrame], pl.LazyFrame]] = {
    "len": lambda lf: lf.select(pl.len()),
    "len_after_filter": lambda lf: lf.filter(pl.col("i") > 2).select(pl.len()),
    "row_index": lambda lf: lf.with_row_index().select("index"),
    "cross_join_other_side": lambda lf: lf.join(pl.LazyFrame({"z": [1, 2]}), how="cross").select("z"),
    "cross_join_this_side": lambda lf: pl.LazyFrame({"z": [1, 2]}).join(lf, how="cross").select("z"),
    "cross_join_len": lambda lf: lf.join(lf, how="cross").select(pl.len()),
    "join_len": lambda lf: lf.join(lf, on="i").select(pl.len()),
    "group_by_keys_only": lambda lf: lf.group_by("k").agg(pl.len()).select("k"),
    "group_by_no_aggregation": lambda lf: lf.group_by("k", "g").agg(),
    "group_by_pruned": lambda lf: lf.group_by("g", (pl.col("i") % 2).alias("m")).agg(pl.len()).select("m"),
}


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("source", ["frame", "parquet", "csv"])
@pytest.mark.parametrize("shape", list(NO_COLUMNS))
def test_rows_count_where_polars_keeps_no_column(
    shape: str, source: str, nranks: int, tmp_path: Path
) -> None:
    lazy_frame = _scanned(FRAME.select("k", "g", "i"), source, tmp_path, row_group_size=3)
    _check(NO_COLUMNS[shape](lazy_frame), nranks)


def _scanned(frame: pl.DataFrame, source: str, tmp_path: Path, *, row_group_size: int) -> pl.LazyFrame:
    """``frame`` as a query's source: the frame itself, or a scan of it written to a
    ``"parquet"`` file (row groups of ``row_group_size`` rows) or a ``"csv"`` file."""
    if source == "frame":
        return frame.lazy()
    if source == "parquet":
        frame.write_parquet(tmp_path / "f.parquet", row_group_size=row_group_size)
        return pl.scan_parquet(tmp_path / "f.parquet")
    frame.write_csv(tmp_path / "f.csv")
    return pl.scan_csv(tmp_path / "f.csv")


# ----------------------------------------------------------------------------- common subexpressions
# Polars computes an expression a query repeats once, as a column its input adds without
# broadcasting it to the rows: a select of aggregates stays one row.
REPEATED: dict[str, Callable[[pl.LazyFrame], pl.LazyFrame]] = {
    "aggregate_twice": lambda lf: lf.select(pl.col("i").sum().alias("a"), pl.col("i").sum().alias("b")),
    "aggregate_and_ratio": lambda lf: lf.select(
        pl.col("i").sum().alias("a"), (pl.col("i").sum() / pl.len()).alias("b")
    ),
    "aggregate_ratio_alone": lambda lf: lf.select((pl.col("i").sum() / pl.col("i").sum()).alias("r")),
    "aggregate_after_group_by": lambda lf: lf.group_by("k").agg(pl.col("i").sum())
    .select(pl.col("i").sum().alias("p"), (pl.col("i") * 2).sum().alias("q"), pl.col("i").sum().alias("r")),
    "with_columns": lambda lf: lf.with_columns(
        (pl.col("i").sum() + pl.col("x")).alias("a"), (pl.col("i").sum() * 2).alias("b")
    ),
    "row_wise_twice": lambda lf: lf.select(
        ((pl.col("i") * 2) + 1).alias("a"), ((pl.col("i") * 2) - 1).alias("b")
    ),
    "filter": lambda lf: lf.filter((pl.col("i") * 2 > 4) & (pl.col("i") * 2 < 12)),
    "group_by_aggregations": lambda lf: lf.group_by("k").agg(
        (pl.col("i") * 2).sum().alias("a"), (pl.col("i") * 2).max().alias("b")
    ),
}


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("shape", list(REPEATED))
def test_repeated_expressions_equal_polars(shape: str, nranks: int) -> None:
    _check(REPEATED[shape](FRAME.lazy()), nranks)


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("source", ["frame", "parquet", "csv"])
def test_a_column_whose_name_is_empty_keeps_it(tmp_path: Path, source: str, nranks: int) -> None:
    """Polars' readers keep a column named ``""`` (a CSV header ``a,b,``), where its
    ``from_arrow`` would call it ``column_1``: every chunk made from Arrow keeps it."""
    frame = pl.DataFrame({"a": [1, 2, 3, 1, 2], "": [4, -5, 6, 7, 8]})
    lazy_frame = _scanned(frame, source, tmp_path, row_group_size=2)
    _check(lazy_frame, nranks)
    _check(lazy_frame.select(""), nranks)
    _check(lazy_frame.filter(pl.col("") > 0).group_by("a").agg(pl.col("").sum()), nranks)


FILTERED_LENGTHS = {
    "group_by": lambda lf: lf.group_by("k").agg(
        pl.col("x").filter(pl.col("x") > 0).len().alias("len"),
        pl.col("x").filter(pl.col("i") > 2).count().alias("count"),
        pl.col("s").filter(pl.col("i") > 2).len().alias("with_nulls"),
    ),
    "select": lambda lf: lf.select(
        pl.col("x").filter(pl.col("x") > 0).len().alias("len"), pl.col("x").len().alias("all")
    ),
    "head": lambda lf: lf.group_by("k").agg(pl.col("x").head(1).len().alias("len")),
    "drop_nulls": lambda lf: lf.group_by("k").agg(pl.col("x").drop_nulls().len().alias("len")),
}


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("shape", list(FILTERED_LENGTHS))
def test_the_length_of_a_filtered_column_counts_the_rows_the_filter_keeps(
    shape: str, nranks: int
) -> None:
    """``col.filter(p).len()`` counts the rows ``p`` keeps, nulls included; a length of an
    expression that drops rows is never the group's length."""
    fallbacks = _check(FILTERED_LENGTHS[shape](FRAME.lazy()), nranks)
    if shape in ("group_by", "select"):
        assert fallbacks == ()  # counted from partials, as actors


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("how", ["inner", "left", "right", "full"])
def test_a_join_whose_keys_repeat_a_column_equals_polars(how: str, nranks: int) -> None:
    """Shuffled on several ranks, the keys [s, s] hash as a struct of two fields."""
    left = pl.LazyFrame({"s": ["a", "b", None], "s2": ["a", "x", "y"], "v": [1, 2, 3]})
    right = pl.LazyFrame({"s": ["a", "b"], "w": [10, 20]})
    _check(left.join(right, left_on=["s", "s2"], right_on=["s", "s"], how=how), nranks)  # type: ignore[arg-type]


@pytest.mark.parametrize("nranks", [1, 2])
def test_a_select_of_a_series_literal_runs_through_polars(nranks: int) -> None:
    lazy_frame = pl.LazyFrame({"x": [1, 2, 3]}).select(pl.lit(pl.Series([7, 8, 9])).alias("l"))
    fallbacks = _check(lazy_frame, nranks)
    assert len(fallbacks) == 1 and "read more than one row" in fallbacks[0]


@pytest.mark.parametrize("nranks", [1, 2])
def test_parquet_scan_slices_its_rows_before_its_predicate(tmp_path: Path, nranks: int) -> None:
    """Polars pushes `head(5).filter(...)` into the scan as a slice and a predicate, and
    slices first; the scan filtered first, giving the first 5 rows that pass."""
    path = tmp_path / "s.parquet"
    pl.DataFrame({"x": range(40), "y": [f"v{i}" for i in range(40)]}).write_parquet(
        path, row_group_size=3
    )
    scan = pl.scan_parquet(path)
    even = pl.col("x") % 2 == 0
    for query in (
        scan.head(5).filter(even),
        scan.tail(7).filter(even),
        scan.slice(2, 9).filter(even),
        scan.slice(2, 9).filter(even).select("y"),
        scan.select("y", "x").head(11).filter(pl.col("y").str.ends_with("0") | even).select("y"),
    ):
        got, _ = _query(query, nranks)
        _assert_same(got, query.collect())


@pytest.mark.parametrize("nranks", [1, 2])
def test_union_of_a_shared_subplan_with_its_own_filter(tmp_path: Path, nranks: int) -> None:
    """The shared subplan (many chunks) fans out to both inputs of the union, which kept
    order: on one rank the network deadlocked."""
    path = tmp_path / "dl.parquet"
    pl.DataFrame({"x": range(20), "l": [[i] for i in range(20)]}).write_parquet(
        path, row_group_size=1
    )
    exploded = pl.scan_parquet(path).explode("l", empty_as_null=True)
    query = pl.concat([exploded, exploded.filter(pl.col("x") > 5)])
    got, _ = _query(query, nranks)
    _assert_same(got, query.collect())
