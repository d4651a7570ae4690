"""Sorting: sort and top-k equal Polars' sort; range partitions cut the sorted rows in order."""

from __future__ import annotations

import polars as pl
import pytest
from backend_strategies import frames
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Backend, ColumnNotFoundError, SortOrder

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
