"""Sorting: sort, top-k and the merge of sorted runs equal Polars' sort; range partitions cut
the sorted rows in order."""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl
import pytest
from backend_strategies import frames
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Backend, ColumnNotFoundError, SchemaError, SortOrder, TableChunk

SORTABLE = ["i8", "i32", "i64", "u16", "f64", "b", "s", "d", "t", "dec"]


@st.composite
def orders(draw: st.DrawFn, df: pl.DataFrame) -> SortOrder:
    usable = [c for c in df.columns if c in SORTABLE] or [df.columns[0]]
    keys = draw(st.lists(st.sampled_from(usable), min_size=1, max_size=3, unique=True))
    flags = st.lists(st.booleans(), min_size=len(keys), max_size=len(keys))
    return SortOrder(tuple(keys), tuple(draw(flags)), tuple(draw(flags)))


def polars_sort(df: pl.DataFrame, order: SortOrder) -> pl.DataFrame:
    return df.sort(
        list(order.keys),
        descending=list(order.descending),
        nulls_last=list(order.nulls_last),
        maintain_order=True,
    )


@given(df=frames().filter(lambda f: any(c in SORTABLE for c in f.columns)), data=st.data())
def test_sort_and_top_k_equal_polars_stable_sort(
    backend: Backend, df: pl.DataFrame, data: st.DataObject
) -> None:
    order = data.draw(orders(df))
    chunk = backend.from_polars(df)
    assert_frame_equal(backend.to_polars(backend.sort(chunk, order)), polars_sort(df, order))
    k = data.draw(st.integers(0, df.height + 2))
    assert_frame_equal(
        backend.to_polars(backend.top_k(chunk, order, k)), polars_sort(df, order).head(k)
    )


@given(df=frames().filter(lambda f: any(c in SORTABLE for c in f.columns)), data=st.data())
def test_range_partitions_in_order_give_the_sorted_rows(
    backend: Backend, df: pl.DataFrame, data: st.DataObject
) -> None:
    order = data.draw(orders(df))
    parts = data.draw(st.integers(1, 5))
    chunk = backend.from_polars(df)
    samples = backend.sample(chunk, order.keys, data.draw(st.integers(0, 20)), seed=3)
    assert samples.column_names == list(order.keys)
    bounds = backend.range_boundaries(samples, order, parts)
    assert bounds.num_rows == (0 if samples.num_rows == 0 or parts == 1 else parts - 1)
    pieces = backend.range_partition(chunk, bounds, order)
    assert all(0 <= p <= bounds.num_rows and piece.num_rows for p, piece in pieces.items())
    # each range sorted on its own, the ranges read in order: the whole sorted (keys only,
    # ties keep no particular order across the cut)
    ranges = [polars_sort(backend.to_polars(pieces[p]), order) for p in sorted(pieces)]
    got = pl.concat(ranges) if ranges else df.head(0)
    keys = list(order.keys)
    assert_frame_equal(got.select(keys), polars_sort(df, order).select(keys))
    assert got.height == df.height


def test_sorting_errors_name_the_column_and_the_value(backend: Backend) -> None:
    chunk = backend.from_polars(pl.DataFrame({"a": [2, 1]}))
    with pytest.raises(
        ColumnNotFoundError, match=r"sort: column `b` not found; columns are \['a'\]"
    ):
        backend.sort(chunk, SortOrder.of("b"))
    with pytest.raises(ValueError, match=r"top_k: `k` must be an int >= 0, got -1"):
        backend.top_k(chunk, SortOrder.of("a"), -1)
    with pytest.raises(ValueError, match=r"`descending` must hold one bool per key \['a'\]"):
        SortOrder(("a",), (True, False), (False,))
    with pytest.raises(ValueError, match=r"range_boundaries: `parts` must be an int >= 1, got 0"):
        backend.range_boundaries(chunk, SortOrder.of("a"), 0)


def _runs(
    backend: Backend, df: pl.DataFrame, order: SortOrder, cuts: list[int]
) -> list[TableChunk]:
    """``df`` cut at ``cuts`` into runs, each sorted in ``order``."""
    bounds = [0, *sorted(set(cuts)), df.height]
    return [
        backend.sort(backend.from_polars(df.slice(a, b - a)), order)
        for a, b in itertools.pairwise(bounds)
    ]


@settings(max_examples=30)
@given(
    df=frames(max_rows=60).filter(lambda f: any(c in SORTABLE for c in f.columns)), data=st.data()
)
def test_merging_sorted_runs_equals_polars_sort(
    backend: Backend, tmp_path: Path, df: pl.DataFrame, data: st.DataObject
) -> None:
    order = data.draw(orders(df))
    df = df.with_row_index("row")  # tells the rows apart: ties keep no particular order
    cuts = data.draw(st.lists(st.integers(0, df.height), max_size=5))
    runs = _runs(backend, df, order, cuts)
    spilled = data.draw(st.lists(st.booleans(), min_size=len(runs), max_size=len(runs)))
    for run, spill in zip(runs, spilled, strict=True):
        if spill:
            backend.spill(run, to=backend.tiers[-1], directory=tmp_path)
    rows = data.draw(st.integers(1, 25))
    slice_rows = data.draw(st.none() | st.integers(1, 10))

    out = list(backend.merge_sorted(runs, order, rows=rows, slice_rows=slice_rows))

    assert [c.num_rows for c in out[:-1]] == [rows] * (len(out) - 1)
    assert all(0 < c.num_rows <= rows for c in out[-1:])
    got = pl.concat([backend.to_polars(c) for c in out]) if out else df.head(0)
    expected = polars_sort(df, order)
    keys = list(order.keys)
    assert_frame_equal(got.select(keys), expected.select(keys))
    assert_frame_equal(got.sort("row"), df)
    # read in slices: the spilled runs stay spilled
    assert [run.is_spilled for run in runs] == [s for s, run in zip(spilled, runs, strict=True)]


def test_merging_reads_each_run_a_slice_at_a_time_while_it_moves_between_tiers(
    backend: Backend, tmp_path: Path
) -> None:
    df = pl.DataFrame({"k": [i % 97 for i in range(3_000)], "v": range(3_000)})
    order = SortOrder.of(["k", "v"], descending=[True, False])
    runs = _runs(backend, df, order, [1_000, 2_000])
    backend.spill(runs[0], to="disk", directory=tmp_path)
    merged = backend.merge_sorted(runs, order, rows=100, slice_rows=50)
    first = next(merged)
    assert runs[0].is_spilled  # its first slice was read from the file, the file stayed
    backend.make_available(runs[0])  # runs may change tiers while the merge goes on
    backend.spill(runs[1], to="disk", directory=tmp_path)
    rest = list(merged)
    got = pl.concat([backend.to_polars(c) for c in [first, *rest]])
    assert_frame_equal(got, polars_sort(df, order))
    assert runs[1].is_spilled


def test_merging_checks_its_arguments_when_called(backend: Backend) -> None:
    a = backend.from_polars(pl.DataFrame({"a": [1, 2]}))
    other = backend.from_polars(pl.DataFrame({"a": ["x"]}))
    with pytest.raises(ColumnNotFoundError, match=r"merge_sorted: column `b` not found"):
        backend.merge_sorted([a], SortOrder.of("b"), rows=10)
    with pytest.raises(SchemaError, match=r"merge_sorted: run 1 does not have the schema of run 0"):
        backend.merge_sorted([a, other], SortOrder.of("a"), rows=10)
    with pytest.raises(ValueError, match=r"merge_sorted: `rows` must be an int >= 1, got 0"):
        backend.merge_sorted([a], SortOrder.of("a"), rows=0)
    with pytest.raises(ValueError, match=r"merge_sorted: `slice_rows` must be an int >= 1, got 0"):
        backend.merge_sorted([a], SortOrder.of("a"), rows=1, slice_rows=0)
    assert list(backend.merge_sorted([], SortOrder.of("a"), rows=1)) == []
