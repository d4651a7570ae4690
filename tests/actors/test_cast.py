"""cast: explicit type changes equal Polars' ``DataFrame.cast``."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from strategies import chunk_rows, frames

import actors
from actors.testing import run_pipeline
from streamnet import ColumnNotFoundError

SCHEMAS = [  # (what the actor is given, the same as Polars types)
    ({"i": pl.Float64}, {"i": pl.Float64}),
    ({"i": pl.Int32, "f": pl.Float32}, {"i": pl.Int32, "f": pl.Float32}),
    ({"i": pl.String, "s": pl.Categorical}, {"i": pl.String, "s": pl.Categorical}),
    ({"i": pa.float64(), "s": pa.large_string()}, {"i": pl.Float64, "s": pl.String}),
    (pa.schema([("f", pa.int64())]), {"f": pl.Int64}),
    (pl.Schema({"i": pl.Int16}), {"i": pl.Int16}),
]


@settings(max_examples=25)
@given(frames(), chunk_rows, st.sampled_from(SCHEMAS))
def test_cast_equals_polars_cast(
    df: pl.DataFrame, rows: int, schemas: tuple[Any, Any]
) -> None:
    given_schema, types = schemas
    got = run_pipeline(df, lambda c, i, o: actors.cast(c, i, o, given_schema), chunk_rows=rows)
    assert_frame_equal(got, df.cast(types))


def test_cast_names_a_missing_column_and_rejects_what_is_not_a_type() -> None:
    df = pl.DataFrame({"x": [1]})
    with pytest.raises(ColumnNotFoundError, match=r"actor `cast#0`: column `y` not found \(cast\)"):
        run_pipeline(df, lambda c, i, o: actors.cast(c, i, o, {"y": pl.Int8}))
    with pytest.raises(TypeError, match="the type of column `x` must be a Polars or Arrow type"):
        run_pipeline(df, lambda c, i, o: actors.cast(c, i, o, {"x": "int"}))


def test_cast_is_strict_unless_told_otherwise() -> None:
    df = pl.DataFrame({"x": ["1", "a"]})
    with pytest.raises(pl.exceptions.InvalidOperationError):
        run_pipeline(df, lambda c, i, o: actors.cast(c, i, o, {"x": pl.Int64}))
    got = run_pipeline(df, lambda c, i, o: actors.cast(c, i, o, {"x": pl.Int64}, strict=False))
    assert got["x"].to_list() == [1, None]
