"""distinct: Polars' ``unique`` of the chunk, in stream order where the row to keep is chosen."""

from __future__ import annotations

from typing import Literal

import polars as pl
import pytest
from backend_strategies import frames
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Backend, ColumnNotFoundError


@given(df=frames(), data=st.data())
def test_distinct_equals_polars_unique(
    backend: Backend, df: pl.DataFrame, data: st.DataObject
) -> None:
    subset = data.draw(st.none() | st.lists(st.sampled_from(df.columns), min_size=1, unique=True))
    keep: Literal["any", "first", "last"] = data.draw(st.sampled_from(["any", "first", "last"]))
    got = backend.to_polars(backend.distinct(backend.from_polars(df), subset, keep))
    want = df.unique(subset=subset, keep=keep, maintain_order=True)
    if keep == "any":  # any one of the duplicates, in any order
        keys = subset or df.columns
        assert got.height == want.height
        assert_frame_equal(got.select(keys).sort(keys), want.select(keys).sort(keys))
    else:
        assert_frame_equal(got, want)


@given(df=frames(max_rows=20), data=st.data())
def test_first_and_last_follow_the_order_columns_then_the_rows(
    backend: Backend, df: pl.DataFrame, data: st.DataObject
) -> None:
    seqs = data.draw(st.lists(st.integers(0, 3), min_size=df.height, max_size=df.height))
    stamped = df.with_columns(
        pl.lit(0, pl.Int64).alias("__rank"), pl.Series("__seq", seqs, pl.Int64)
    )
    keep: Literal["first", "last"] = data.draw(st.sampled_from(["first", "last"]))
    chunk = backend.from_polars(stamped)
    got = backend.to_polars(backend.distinct(chunk, None, keep, order=["__rank", "__seq"]))
    in_order = stamped.with_row_index("__i").sort(["__rank", "__seq", "__i"]).drop("__i")
    want = in_order.unique(subset=df.columns, keep=keep, maintain_order=True)
    assert_frame_equal(got, want)


def test_distinct_names_missing_columns_and_bad_keep(backend: Backend) -> None:
    chunk = backend.from_polars(pl.DataFrame({"a": [1, 1], "b": [2, 2]}))
    with pytest.raises(
        ColumnNotFoundError, match=r"distinct: column `c` not found; columns are \['a', 'b'\]"
    ):
        backend.distinct(chunk, ["c"], "any")
    with pytest.raises(ColumnNotFoundError, match=r"column `__seq` not found"):
        backend.distinct(chunk, None, "first", order=["__seq"])
    with pytest.raises(ValueError, match=r"`keep` must be 'any', 'first' or 'last', got 'none'"):
        backend.distinct(chunk, None, "none")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a TableChunk"):
        backend.distinct(pl.DataFrame({"a": [1]}), None, "any")  # type: ignore[arg-type]
