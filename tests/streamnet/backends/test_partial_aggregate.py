"""Plans ending in a PartialAggregate step: partials that the aggregation kernel finishes as Polars."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import (
    Agg,
    AggHow,
    Backend,
    ColumnNotFoundError,
    Filter,
    ParquetScan,
    PartialAggregate,
    Plan,
    PlanParams,
    ScanTask,
    Stamp,
    TableChunk,
    WithColumns,
)

x, f = pl.col("x"), pl.col("f")
DECOMPOSABLE: list[AggHow] = ["sum", "count", "len", "mean", "min", "max", "first", "last", "std", "var"]  # fmt: skip
STEPS = (
    Filter(x.is_null() | (x > -50), actor="filter#0"),
    WithColumns(((x * f).alias("y"),), actor="with_columns#1"),
)


def before(df: pl.DataFrame) -> pl.DataFrame:
    """The steps of ``STEPS`` on a Polars frame."""
    return df.filter(x.is_null() | (x > -50)).with_columns((x * f).alias("y"))


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(0, 40))

    def column(values: st.SearchStrategy[object]) -> list[object]:
        return draw(st.lists(st.none() | values, min_size=n, max_size=n))

    return pl.DataFrame(
        {
            "k": column(st.integers(0, 3)),
            "x": column(st.integers(-100, 100)),
            "f": column(st.floats(-10, 10, allow_nan=False)),
            "s": column(st.sampled_from(["a", "bb", ""])),
        },
        schema={"k": pl.Int64, "x": pl.Int64, "f": pl.Float64, "s": pl.String},
    )


@st.composite
def aggregations(draw: st.DrawFn) -> list[Agg]:
    hows = draw(st.lists(st.sampled_from(DECOMPOSABLE), min_size=1, max_size=4, unique=True))
    columns = ["x", "y", "f"]
    return [
        Agg(None, "len", f"n{i}") if how == "len" else Agg(draw(st.sampled_from(columns)), how, f"a{i}")
        for i, how in enumerate(hows)
    ]  # fmt: skip


def expected(df: pl.DataFrame, keys: list[str], aggs: list[Agg]) -> pl.DataFrame:
    wholes = [agg.polars() for agg in aggs]
    return df.group_by(keys).agg(wholes) if keys else df.select(wholes)


def assert_same(got: pl.DataFrame, want: pl.DataFrame, keys: list[str]) -> None:
    if keys:
        got, want = got.sort(keys, nulls_last=True), want.sort(keys, nulls_last=True)
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-6, abs_tol=1e-6)


def plan_of(keys: list[str], aggs: list[Agg], source: ParquetScan | None = None) -> Plan:
    ordered = any(agg.follows_order for agg in aggs)
    tail = (PartialAggregate(tuple(keys), tuple(aggs), ordered, actor="groupby_agg#2"),)
    return Plan(source, STEPS + ((Stamp(actor="groupby_agg#2"),) if ordered else ()) + tail)


def finished(
    backend: Backend, schema: pa.Schema, keys: list[str], aggs: list[Agg], parts: list[TableChunk]
) -> pl.DataFrame:
    """The partials ``parts`` merged and finished by the kernel a group-by would build."""
    ordered = any(agg.follows_order for agg in aggs)
    kernel = backend.aggregation(keys, aggs, schema, ordered=ordered)
    for part in parts:
        assert part.schema.equals(kernel.partial_schema)
    merged = kernel.merge(parts) if parts else backend.empty(kernel.partial_schema)
    return backend.to_polars(kernel.finish(merged))


@settings(max_examples=40, deadline=None)
@given(
    df=frames(),
    keys=st.sampled_from([["k"], ["k", "s"], []]),
    aggs=aggregations(),
    cuts=st.lists(st.integers(0, 40), max_size=4),
)
def test_partials_of_a_plan_finish_as_polars_aggregates_the_steps_output(
    backend: Backend, df: pl.DataFrame, keys: list[str], aggs: list[Agg], cuts: list[int]
) -> None:
    plan = plan_of(keys, aggs)
    bounds = [0, *sorted(min(c, df.height) for c in cuts), df.height]
    chunks = [backend.from_polars(df[lo:hi]) for lo, hi in itertools.pairwise(bounds)]
    compiled = backend.compile(plan, chunks[0].schema)
    parts = [backend.run(compiled, c, params=PlanParams(sequence=i)) for i, c in enumerate(chunks)]
    for chunk, part in zip(chunks, parts, strict=True):
        assert part.schema is compiled.output_schema
        if not chunk.num_rows:  # an empty chunk adds nothing, even without keys
            assert part.num_rows == 0
    schema = TableChunk.from_polars(before(df.head(0))).schema
    got = finished(backend, schema, keys, aggs, parts)
    assert_same(got, expected(before(df), keys, aggs), keys)


@settings(max_examples=15, deadline=None)
@given(
    df=frames(),
    keys=st.sampled_from([["k"], []]),
    aggs=aggregations(),
    group_rows=st.integers(1, 12),
)
def test_a_scan_plan_ending_in_partials_finishes_as_polars_reads_the_file(
    backend: Backend, df: pl.DataFrame, keys: list[str], aggs: list[Agg], group_rows: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        df.write_parquet(path, row_group_size=group_rows)
        source = ParquetScan((path,), actor="read_parquet#0")
        compiled = backend.compile(plan_of(keys, aggs, source), pq.read_schema(path))
        metadata = pq.read_metadata(path)
        parts, offset = [], 0
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            task = ScanTask(path, (group,), offset, rows)
            parts.append(backend.scan(compiled, task, params=PlanParams(sequence=group)))
            offset += rows
        schema = TableChunk.from_polars(before(df.head(0))).schema
        got = finished(backend, schema, keys, aggs, parts)
        assert_same(got, expected(before(pl.read_parquet(path)), keys, aggs), keys)


def test_partial_aggregate_steps_are_refused_clearly(backend: Backend) -> None:
    df = pl.DataFrame({"k": [1, 2], "x": [1, 2], "f": [1.0, 2.0]})
    schema = backend.from_polars(df).schema
    n_unique = PartialAggregate(("k",), (Agg("x", "n_unique"),), actor="groupby_agg#0")
    with pytest.raises(ValueError, match=r"actor `groupby_agg#0`.*partials.*n_unique"):
        backend.compile(Plan(steps=(n_unique,)), schema)
    first = PartialAggregate(("k",), (Agg("x", "first"),), True, actor="groupby_agg#0")
    with pytest.raises(ColumnNotFoundError, match=r"`groupby_agg#0`.*Stamp"):
        backend.compile(Plan(steps=(first,)), schema)
    missing = PartialAggregate(("k",), (Agg("z", "sum"),), actor="groupby_agg#0")
    with pytest.raises(ColumnNotFoundError, match=r"`groupby_agg#0`.*`z`"):
        backend.compile(Plan(steps=(missing,)), schema)
    total = PartialAggregate((), (Agg("x", "sum"),), actor="groupby_agg#0")
    with pytest.raises(ValueError, match=r"ends a plan.*groupby_agg#0"):
        Plan(steps=(total, *STEPS))
    with pytest.raises(TypeError, match="`aggs` must be"):
        PartialAggregate(("k",), (("x", "sum"),))  # type: ignore[arg-type]
    assert total == PartialAggregate((), (Agg("x", "sum"),), actor="groupby_agg#0")
