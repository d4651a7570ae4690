from __future__ import annotations

import asyncio
import math
import operator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import actors
from streamnet import (
    Channel,
    ColumnNotFoundError,
    Context,
    FileReadError,
    Network,
    SchemaError,
    define_actor,
)


def _scan(path: Path | list[Path] | str, **kwargs: Any) -> tuple[pl.DataFrame, actors.ParquetScanReport]:
    ctx = Context()
    ch = ctx.create_channel()
    scan = actors.read_parquet(ctx, ch, path, **kwargs)
    sink = actors.collect(ctx, ch, into="polars")
    Network(ctx, [scan, sink]).run()
    return sink.result(), scan.result()


@pytest.fixture(scope="module")
def sorted_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 row groups of 1000 rows; `k` increases so row-group statistics are selective."""
    path = tmp_path_factory.mktemp("pq") / "sorted.parquet"
    rng = np.random.default_rng(1)
    n = 10_000
    df = pl.DataFrame(
        {
            "k": np.arange(n),
            "v": rng.normal(size=n),
            "s": rng.choice(np.array(["red", "green", "blue", None], dtype=object), size=n),
        }
    )
    df.write_parquet(path, row_group_size=1000)
    assert pq.ParquetFile(path).num_row_groups == 10
    return path


@settings(max_examples=25)
@given(
    st.integers(-10, 10_010),
    st.integers(-10, 10_010),
    st.sampled_from([None, ["v"], ["s", "k"]]),
)
def test_scan_with_pushdown_equals_polars(
    sorted_file: Path, lo: int, hi: int, columns: list[str] | None
) -> None:
    pred = (pl.col("k") >= lo) & (pl.col("k") < hi) & pl.col("v").is_not_null()
    out, report = _scan(sorted_file, columns=columns, filters=pred)
    lazy = pl.scan_parquet(sorted_file).filter(pred)
    expected = lazy.select(columns).collect() if columns else lazy.collect()
    assert_frame_equal(out, expected)
    # Statistics prune a row group when its [min, max] of k proves a bound false.
    possible = sum(1 for g in range(10) if g * 1000 + 999 >= lo and g * 1000 < hi)
    assert report.row_groups_total == 10
    assert report.row_groups_read == possible
    assert report.rows_emitted == expected.height


def test_pushdown_skips_row_groups(sorted_file: Path) -> None:
    out, report = _scan(sorted_file, filters=pl.col("k") >= 9_500)
    assert out.height == 500
    assert (report.row_groups_read, report.rows_read) == (1, 1000)


def test_untranslatable_predicate_reads_everything_but_filters_exactly(sorted_file: Path) -> None:
    pred = pl.col("s").str.contains("ee")
    out, report = _scan(sorted_file, filters=pred)
    assert report.row_groups_read == 10
    assert_frame_equal(out, pl.read_parquet(sorted_file).filter(pred))


def test_partly_translatable_predicate_still_prunes(sorted_file: Path) -> None:
    pred = (pl.col("k") < 1500) & pl.col("s").str.contains("ee")
    out, report = _scan(sorted_file, filters=pred)
    assert report.row_groups_read == 2
    assert_frame_equal(out, pl.read_parquet(sorted_file).filter(pred))


def test_projection_reads_only_the_columns_asked(sorted_file: Path) -> None:
    out, _ = _scan(sorted_file, columns=["s"])
    assert out.columns == ["s"]
    assert out.height == 10_000


def test_filter_that_matches_nothing_keeps_the_schema(sorted_file: Path) -> None:
    out, report = _scan(sorted_file, columns=["k", "s"], filters=pl.col("k") > 10**9)
    assert out.height == 0
    assert out.columns == ["k", "s"]
    assert report.row_groups_read == 0


def test_limit_stops_the_scan_early(tmp_path: Path) -> None:
    path = tmp_path / "many.parquet"
    pl.DataFrame({"x": range(100_000)}).write_parquet(path, row_group_size=1000)
    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    scan = actors.read_parquet(ctx, a, path, prefetch=2)
    sink = actors.collect(ctx, b)
    Network(ctx, [scan, actors.limit(ctx, a, b, 2500), sink]).run()
    assert sink.result()["x"].to_pylist() == list(range(2500))
    report = scan.result()
    assert report.row_groups_total == 100
    assert report.row_groups_read < 10


def test_directory_and_glob_read_files_in_name_order(tmp_path: Path) -> None:
    for i in range(3):
        pl.DataFrame({"f": [i] * 5}).write_parquet(tmp_path / f"part-{i}.parquet")
    out, report = _scan(tmp_path)
    assert out["f"].to_list() == [0] * 5 + [1] * 5 + [2] * 5
    assert report.files == 3
    out, _ = _scan(str(tmp_path / "part-[12].parquet"))
    assert out["f"].unique().sort().to_list() == [1, 2]
    out, _ = _scan([tmp_path / "part-2.parquet", tmp_path / "part-0.parquet"])
    assert out["f"].to_list() == [2] * 5 + [0] * 5


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.parquet` does not exist"):
        _scan(tmp_path / "nope.parquet")
    with pytest.raises(FileNotFoundError, match=r"no files match `.*\*.parquet`"):
        _scan(str(tmp_path / "*.parquet"))


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet at all")
    with pytest.raises(FileReadError, match="cannot read `.*bad.parquet` as Parquet"):
        _scan(bad)


def test_schema_mismatch_between_files_names_both(tmp_path: Path) -> None:
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame({"a": ["x"]}).write_parquet(tmp_path / "b.parquet")
    with pytest.raises(
        SchemaError, match=r"b.parquet` does not have the schema of `.*a.parquet`"
    ) as info:
        _scan(tmp_path)
    assert "{a: String}" in str(info.value)  # Polars' type names, as every message uses


@pytest.mark.parametrize("nranks", [1, 2])
def test_files_with_their_columns_in_another_order_read_as_polars_reads_them(
    tmp_path: Path, nranks: int
) -> None:
    """Polars reads a file's columns by name; the scan gives the first file's order."""
    from streamnet import run_ranks

    pl.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]}).write_parquet(tmp_path / "0.parquet")
    pl.DataFrame({"c": [2.5], "b": ["z"], "a": [3]}).write_parquet(tmp_path / "1.parquet")
    hive = tmp_path / "hive"
    for key, path in (("p", "0.parquet"), ("q", "1.parquet")):
        (hive / f"k={key}").mkdir(parents=True)
        (tmp_path / path).rename(hive / f"k={key}" / path)
    want = pl.scan_parquet(hive).collect()
    assert want.columns == ["a", "b", "c", "k"]

    async def job(ctx: Context) -> list[pl.DataFrame]:
        frames = []
        for columns, filters in ((None, None), (["c", "a"], pl.col("a") > 1)):
            ch = ctx.create_channel()
            sink = actors.collect(ctx, ch, into="polars")
            await Network(ctx, [actors.read_parquet(ctx, ch, hive, columns=columns, filters=filters), sink]).run_async()
            frames.append(sink.result())
        frames.append(await actors.collect_query_async(ctx, pl.scan_parquet(hive).filter(pl.col("c") > 1)))
        return frames

    ranks = run_ranks(nranks, job)  # a read_parquet gives each rank its share
    everything, some = (pl.concat([frames[i] for frames in ranks]).sort("a") for i in (0, 1))
    assert_frame_equal(everything, want)
    assert_frame_equal(some, want.filter(pl.col("a") > 1).select("c", "a"))
    for frames in ranks:  # a query gives every rank the whole answer
        assert_frame_equal(frames[2].sort("a"), want.filter(pl.col("c") > 1))


def test_a_query_of_files_unlike_the_first_runs_through_polars(tmp_path: Path) -> None:
    pl.DataFrame({"a": [1, 2], "b": ["x", "y"]}).write_parquet(tmp_path / "0.parquet")
    pl.DataFrame({"a": [3]}).write_parquet(tmp_path / "1.parquet")
    for query in (
        pl.scan_parquet(tmp_path / "*.parquet", missing_columns="insert"),
        pl.scan_parquet(tmp_path / "*.parquet", missing_columns="insert", cast_options=pl.ScanCastOptions(integer_cast="upcast")),
    ):
        if pl.__version__.startswith("1."):  # its plan does not tell how files unlike the first read
            with pytest.raises(SchemaError, match=r"1.parquet` does not have the schema of `.*0.parquet`"):
                actors.collect_query(query)
            continue
        assert_frame_equal(actors.collect_query(query).sort("a"), query.collect().sort("a"))


def test_missing_column_names_the_column_and_actor(sorted_file: Path) -> None:
    with pytest.raises(ColumnNotFoundError, match=r"actor `read_parquet#0`: column `zz` not found"):
        _scan(sorted_file, columns=["k", "zz"])
    with pytest.raises(ColumnNotFoundError, match="column `q` not found"):
        _scan(sorted_file, filters=pl.col("q") > 1)


def test_bad_scan_arguments(sorted_file: Path) -> None:
    with pytest.raises(TypeError, match="`filters` must be a Polars expression"):
        _scan(sorted_file, filters=[("k", ">", 3)])
    with pytest.raises(TypeError, match="not a single string"):
        _scan(sorted_file, columns="k")
    with pytest.raises(ValueError, match="`prefetch`"):
        _scan(sorted_file, prefetch=0)
    with pytest.raises(ValueError, match=r"`columns` names \['k'\] more than once"):
        _scan(sorted_file, columns=["k", "k"])
    with pytest.raises(TypeError, match="`columns` must be a list of column names, got 5"):
        _scan(sorted_file, columns=5)


def test_write_parquet_refuses_row_groups_of_no_rows(tmp_path: Path) -> None:
    ctx = Context()
    with pytest.raises(ValueError, match="actor `write_parquet#0`: `row_group_rows` must be an int >= 1"):
        actors.write_parquet(ctx, ctx.create_channel(), tmp_path / "t.parquet", row_group_rows=0)


@pytest.mark.slow
def test_round_trip_of_a_million_rows_with_bounded_memory(tmp_path: Path) -> None:
    source = tmp_path / "in.parquet"
    target = tmp_path / "out.parquet"
    n = 1_200_000
    rng = np.random.default_rng(7)
    table = pa.table(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "tag": pa.array(rng.choice(["alpha", "beta", "gamma"], size=n)),
        }
    )
    pq.write_table(table, source, row_group_size=25_000)  # 48 row groups
    full = table.nbytes
    del table

    peak = 0
    baseline = pa.total_allocated_bytes()

    @define_actor
    async def watch(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None:
        nonlocal peak
        async for msg in ch_in:
            peak = max(peak, pa.total_allocated_bytes() - baseline)
            await ch_out.send(ctx, msg)

    async def main() -> None:
        ctx = Context()
        a, b = ctx.create_channel(), ctx.create_channel()
        writer = actors.write_parquet(ctx, b, target, row_group_rows=25_000)
        await Network(
            ctx, [actors.read_parquet(ctx, a, source), watch(ctx, a, b), writer]
        ).run_async()
        assert writer.result().rows == n

    asyncio.run(main())
    assert peak < 0.35 * full, f"peak {peak} bytes against {full} for the whole table"
    out = pl.read_parquet(target)
    assert_frame_equal(out, pl.read_parquet(source))
    assert pq.ParquetFile(target).num_row_groups == 48


def test_write_partitioned_gives_one_file_per_chunk(tmp_path: Path) -> None:
    ctx = Context()
    ch = ctx.create_channel()
    writer = actors.write_parquet(ctx, ch, tmp_path / "parts", partitioned=True)
    src = actors.from_arrow(ctx, ch, pa.table({"x": range(10)}), chunk_rows=4)
    Network(ctx, [src, writer]).run()
    report = writer.result()
    assert [Path(f).name for f in report.files] == [f"part-0000000{i}.parquet" for i in range(3)]
    assert pl.read_parquet(tmp_path / "parts")["x"].to_list() == list(range(10))


def test_write_rejects_a_chunk_with_another_schema(tmp_path: Path) -> None:
    from streamnet import Message, TableChunk

    @define_actor
    async def mixed(ctx: Context, ch_out: Channel[Any]) -> None:
        await ch_out.send(ctx, Message(0, TableChunk.from_arrow(pa.table({"a": [1]}))))
        await ch_out.send(ctx, Message(1, TableChunk.from_arrow(pa.table({"b": [1]}))))

    ctx = Context()
    ch = ctx.create_channel()
    with pytest.raises(
        SchemaError, match=r"chunk 1 does not match .*column `b` \(Int64\) is not in the stream"
    ):
        Network(ctx, [mixed(ctx, ch), actors.write_parquet(ctx, ch, tmp_path / "x.parquet")]).run()


# -- pushdown never drops a row group that could hold a matching row --------------------------

SPECIAL_FLOATS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.5, -2.5, 100.0]
FLOAT_LITERALS = st.one_of(
    st.sampled_from(SPECIAL_FLOATS), st.just(pl.lit(None, pl.Float64)), st.floats(-200, 200)
)
COMPARISONS = [
    operator.eq,
    operator.ne,
    operator.lt,
    operator.le,
    operator.gt,
    operator.ge,
]


def _atoms() -> st.SearchStrategy[pl.Expr]:
    f, i, s = pl.col("f"), pl.col("i"), pl.col("s")
    return st.one_of(
        st.builds(lambda op, v: op(f, v), st.sampled_from(COMPARISONS), FLOAT_LITERALS),
        st.builds(lambda op, v: op(i, v), st.sampled_from(COMPARISONS), st.integers(-3, 3)),
        st.builds(lambda op, v: op(s, v), st.sampled_from(COMPARISONS), st.sampled_from("abz")),
        st.builds(f.is_in, st.lists(st.sampled_from([*SPECIAL_FLOATS, None]), max_size=3)),
        st.builds(i.is_in, st.lists(st.integers(-3, 3), max_size=3)),
        st.sampled_from([f.is_nan(), f.is_not_nan(), f.is_null(), f.is_not_null()]),
        st.sampled_from([i.is_null(), i.is_not_null(), s.is_null(), s.is_not_null()]),
    )


PREDICATES_OVER_SPECIAL_VALUES = st.recursive(
    _atoms(),
    lambda inner: st.one_of(
        st.builds(operator.and_, inner, inner),
        st.builds(operator.or_, inner, inner),
        st.builds(operator.invert, inner),
    ),
    max_leaves=4,
)


@st.composite
def special_frames(draw: st.DrawFn) -> pl.DataFrame:
    """Floats with NaN, nulls, infinities and both zeros; ints and strings with nulls."""
    n = draw(st.integers(0, 40))
    floats = st.one_of(st.none(), st.sampled_from(SPECIAL_FLOATS), st.floats(-200, 200))
    return pl.DataFrame(
        {
            "f": draw(st.lists(floats, min_size=n, max_size=n)),
            "i": draw(st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=n, max_size=n)),
            "s": draw(st.lists(st.sampled_from(["a", "b", "c", None]), min_size=n, max_size=n)),
        },
        schema={"f": pl.Float64, "i": pl.Int64, "s": pl.String},
    )


@settings(max_examples=150)
@given(special_frames(), st.integers(1, 12), st.booleans(), PREDICATES_OVER_SPECIAL_VALUES)
def test_pushdown_equals_polars_with_nan_nulls_and_infinities(
    tmp_path_factory: pytest.TempPathFactory,
    df: pl.DataFrame,
    group_rows: int,
    by_pyarrow: bool,
    pred: pl.Expr,
) -> None:
    """Files written by Polars and by pyarrow (their statistics differ around NaN)."""
    path = tmp_path_factory.mktemp("special") / "t.parquet"
    if by_pyarrow:
        pq.write_table(df.to_arrow(), path, row_group_size=group_rows)
    else:
        df.write_parquet(path, row_group_size=group_rows)
    out, report = _scan(path, filters=pred)
    assert_frame_equal(out, df.filter(pred))
    assert report.rows_emitted == out.height


@pytest.mark.parametrize(
    "pred",
    [
        pl.col("f").is_nan(),
        pl.col("f") > 100,
        pl.col("f") >= 100,
        pl.col("f") != 1.0,
        ~(pl.col("f") <= 100),
        pl.col("f") == math.nan,
        pl.col("f").is_in([math.nan]),
    ],
    ids=str,
)
def test_pushdown_keeps_row_groups_whose_nan_matches(tmp_path: Path, pred: pl.Expr) -> None:
    """Parquet's min/max leave NaN out, and Polars orders NaN above every number."""
    path = tmp_path / "nan.parquet"
    df = pl.DataFrame({"f": [1.0, math.nan, 2.0, 3.0]})
    pq.write_table(df.to_arrow(), path, row_group_size=2)
    statistics = pq.read_metadata(path).row_group(0).column(0).statistics
    assert (statistics.min, statistics.max) == (1.0, 1.0)  # NaN left out
    out, _ = _scan(path, filters=pred)
    assert_frame_equal(out, df.filter(pred))
    assert out["f"].is_nan().any()


def test_pushdown_on_floats_still_prunes_where_nan_cannot_match(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    df = pl.DataFrame({"f": [-2.0, -1.0, 1.0, math.nan, 5.0, 6.0]})
    pq.write_table(df.to_arrow(), path, row_group_size=2)
    out, report = _scan(path, filters=pl.col("f") < 0)
    assert out["f"].to_list() == [-2.0, -1.0]
    assert report.row_groups_read == 1  # [1, NaN] and [5, 6] cannot hold a negative number


def test_directory_scan_skips_hidden_and_underscore_entries(tmp_path: Path) -> None:
    """A write in progress stages under hidden names; markers start with `_` (as in pyarrow)."""
    pl.DataFrame({"f": [1]}).write_parquet(tmp_path / "part-0.parquet")
    for hidden in [".out.parquet.1234.tmp/part-0.parquet", "_temporary/part-9.parquet"]:
        (tmp_path / hidden).parent.mkdir()
        pl.DataFrame({"f": [2]}).write_parquet(tmp_path / hidden)
    pl.DataFrame({"f": [3]}).write_parquet(tmp_path / ".part-1.parquet")
    (tmp_path / "_SUCCESS").touch()
    out, report = _scan(tmp_path)
    assert out["f"].to_list() == [1]
    assert report.files == 1
