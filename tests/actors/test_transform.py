"""Each transform equals the same Polars operation on the same random data."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given
from polars.testing import assert_frame_equal
from strategies import chunk_rows, frames

import actors
from actors.testing import Stage, run_pipeline
from streamnet import ColumnNotFoundError, StreamnetError


@given(frames(), chunk_rows)
def test_filter_equals_polars(df: pl.DataFrame, rows: int) -> None:
    pred = (pl.col("i") > 0) | pl.col("s").is_null()
    out = run_pipeline(df, lambda c, i, o: actors.filter(c, i, o, pred), chunk_rows=rows)
    assert_frame_equal(out, df.filter(pred))


@given(frames(), chunk_rows)
def test_filter_that_keeps_nothing_gives_an_empty_frame_with_schema(
    df: pl.DataFrame, rows: int
) -> None:
    out = run_pipeline(df, lambda c, i, o: actors.filter(c, i, o, pl.lit(False)), chunk_rows=rows)
    assert out.height == 0
    assert out.schema == df.schema


@given(frames(), chunk_rows)
def test_select_equals_polars(df: pl.DataFrame, rows: int) -> None:
    exprs: list[pl.Expr | str] = ["s", (pl.col("i") * 2).alias("i2")]
    out = run_pipeline(
        df, lambda c, i, o: actors.select(c, i, o, *exprs, f1=pl.col("f") + 1), chunk_rows=rows
    )
    assert_frame_equal(out, df.select(*exprs, f1=pl.col("f") + 1))


@given(frames(), chunk_rows)
def test_with_columns_equals_polars(df: pl.DataFrame, rows: int) -> None:
    expr = pl.when(pl.col("i").is_null()).then(pl.col("f")).otherwise(pl.col("i").cast(pl.Float64))
    out = run_pipeline(
        df,
        lambda c, i, o: actors.with_columns(
            c, i, o, expr.alias("g"), s=pl.col("s").str.len_chars()
        ),
        chunk_rows=rows,
    )
    assert_frame_equal(out, df.with_columns(expr.alias("g"), s=pl.col("s").str.len_chars()))


def test_select_and_with_columns_take_lists_of_expressions_as_polars_does() -> None:
    df = pl.DataFrame({"x": [1, 2, 3], "s": ["a", "b", None]})
    exprs: list[pl.Expr | str] = ["s", (pl.col("x") * 2).alias("y")]
    out = run_pipeline(df, lambda c, i, o: actors.select(c, i, o, exprs), chunk_rows=2)
    assert_frame_equal(out, df.select(exprs))
    more = [(pl.col("x") + 1).alias("z"), pl.col("s").str.len_chars().alias("n")]
    out = run_pipeline(df, lambda c, i, o: actors.with_columns(c, i, o, more), chunk_rows=2)
    assert_frame_equal(out, df.with_columns(more))


@given(frames(), chunk_rows)
def test_rename_equals_polars(df: pl.DataFrame, rows: int) -> None:
    out = run_pipeline(
        df, lambda c, i, o: actors.rename(c, i, o, {"i": "id", "s": "name"}), chunk_rows=rows
    )
    assert_frame_equal(out, df.rename({"i": "id", "s": "name"}))


@pytest.mark.parametrize("kind", ["arrow", "polars", "pandas"])
@given(df=frames(), rows=chunk_rows)
def test_map_chunks_in_each_native_type(
    kind: actors.ChunkKind, df: pl.DataFrame, rows: int
) -> None:
    def double(table: Any) -> Any:  # a pyarrow, Polars or pandas table, as ``kind`` says
        if kind == "arrow":
            import pyarrow.compute as pc

            return table.set_column(0, "i", pc.multiply(table["i"], 2))
        if kind == "polars":
            return table.with_columns(pl.col("i") * 2)
        table = table.copy()
        table["i"] = (table["i"] * 2).astype("Int64")  # keep ints with nulls as ints
        return table

    out = run_pipeline(
        df, lambda c, i, o: actors.map_chunks(c, i, o, double, kind=kind), chunk_rows=rows
    )
    assert_frame_equal(out, df.with_columns(pl.col("i") * 2))


def test_map_chunks_returning_none_drops_the_chunk() -> None:
    df = pl.DataFrame({"x": range(10)})
    out = run_pipeline(
        df,
        lambda c, i, o: actors.map_chunks(
            c, i, o, lambda t: t if t["x"][0].as_py() % 4 == 0 else None
        ),
        chunk_rows=2,
    )
    assert out["x"].to_list() == [0, 1, 4, 5, 8, 9]


def test_map_chunks_rejects_a_bad_return_type() -> None:
    with pytest.raises(TypeError, match=r"function's result: expected a pyarrow\.Table.*got int"):
        run_pipeline(
            pl.DataFrame({"x": [1]}), lambda c, i, o: actors.map_chunks(c, i, o, lambda t: 3)
        )


@pytest.mark.parametrize(
    ("stage", "column"),
    [
        (lambda c, i, o: actors.filter(c, i, o, pl.col("nope") > 1), "nope"),
        (lambda c, i, o: actors.select(c, i, o, "x", "missing"), "missing"),
        (lambda c, i, o: actors.with_columns(c, i, o, y=pl.col("gone") + 1), "gone"),
        (lambda c, i, o: actors.rename(c, i, o, {"absent": "b"}), "absent"),
    ],
)
def test_missing_column_error_names_column_and_actor(stage: Stage, column: str) -> None:
    with pytest.raises(ColumnNotFoundError) as info:
        run_pipeline(pl.DataFrame({"x": [1, 2]}), stage)
    text = str(info.value)
    assert f"column `{column}` not found" in text
    assert "actor `" in text and "#0`" in text
    assert "columns are ['x']" in text
    assert isinstance(info.value, KeyError) and isinstance(info.value, StreamnetError)


def test_bad_arguments_are_rejected_clearly() -> None:
    df = pl.DataFrame({"x": [1]})
    with pytest.raises(TypeError, match="`predicate` must be a Polars expression"):
        run_pipeline(df, lambda c, i, o: actors.filter(c, i, o, "x > 1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a Polars expression or a column name, got int"):
        run_pipeline(df, lambda c, i, o: actors.select(c, i, o, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`kind` must be"):
        run_pipeline(df, lambda c, i, o: actors.map_chunks(c, i, o, len, kind="numpy"))  # type: ignore[arg-type]


def test_nothing_to_rename_or_add_passes_chunks_through_and_a_select_of_nothing_is_refused() -> None:
    df = pl.DataFrame({"x": [1, 2]})
    for stage in (
        lambda c, i, o: actors.rename(c, i, o, {}),
        lambda c, i, o: actors.with_columns(c, i, o),
        lambda c, i, o: actors.cast(c, i, o, {}),
    ):
        assert_frame_equal(run_pipeline(df, stage), df)
    with pytest.raises(TypeError, match=r"^actor `select#\d+`: `select` needs at least one"):
        run_pipeline(df, lambda c, i, o: actors.select(c, i, o))
