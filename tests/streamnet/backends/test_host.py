"""The host boundary and metadata of a backend, against Polars' and pyarrow's own conversions."""

from __future__ import annotations

import datetime

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from backend_strategies import frames
from hypothesis import given
from polars.testing import assert_frame_equal

from streamnet import Backend, SchemaError, TableChunk, host_kind
from streamnet._schema import canonical_schema


def _exported(df: pl.DataFrame) -> pa.Table:
    """What Polars exports at its oldest compatibility level: the canonical types."""
    return df.to_arrow(compat_level=pl.CompatLevel.oldest())


@given(df=frames())
def test_a_polars_frame_round_trips_unchanged(backend: Backend, df: pl.DataFrame) -> None:
    chunk = backend.from_polars(df)
    assert_frame_equal(backend.to_polars(chunk), df)
    assert backend.to_arrow(chunk).equals(_exported(df))
    assert (chunk.num_rows, chunk.column_names) == (df.height, df.columns)


@given(df=frames())
def test_an_arrow_table_of_any_flavour_comes_back_with_the_canonical_types(
    backend: Backend, df: pl.DataFrame
) -> None:
    table = df.to_arrow()  # Polars' newest flavours (string views...)
    chunk = backend.from_arrow(table)
    assert backend.to_arrow(chunk).equals(table.cast(canonical_schema(table.schema)))
    assert chunk.schema.equals(_exported(df).schema)
    assert_frame_equal(backend.to_polars(chunk), df)


def test_a_record_batch_becomes_a_chunk(backend: Backend) -> None:
    batch = pa.record_batch({"x": [1, 2, 3]})
    assert backend.to_arrow(backend.from_arrow(batch)).equals(pa.Table.from_batches([batch]))


def test_pandas_round_trips_with_or_without_its_index(backend: Backend) -> None:
    pdf = pd.DataFrame({"x": [1, 2, 3], "s": ["a", "b", None]}, index=[7, 8, 9])
    chunk = backend.from_pandas(pdf)
    pd.testing.assert_frame_equal(backend.to_pandas(chunk), pdf.reset_index(drop=True))
    kept = backend.to_pandas(backend.from_pandas(pdf, preserve_index=True))
    pd.testing.assert_frame_equal(kept, pdf)


def test_from_host_takes_each_host_table_and_names_the_caller_otherwise(
    backend: Backend,
) -> None:
    df = pl.DataFrame({"x": [1, 2]})
    for value in (df, df.to_arrow(), df.to_arrow().to_batches()[0], df.to_pandas()):
        chunk = backend.from_host(value, where="test")
        assert_frame_equal(backend.to_polars(chunk), df)
    chunk = backend.from_polars(df)
    assert backend.from_host(chunk, where="test") is chunk
    with pytest.raises(TypeError, match=r"^my_actor: expected a pyarrow\.Table.*got int$"):
        backend.from_host(3, where="my_actor")


def test_constructors_name_what_they_received(backend: Backend) -> None:
    with pytest.raises(TypeError, match="from_arrow takes a pyarrow.Table.*got dict"):
        backend.from_arrow({"x": [1]})
    with pytest.raises(TypeError, match="from_pandas takes a pandas.DataFrame.*polars"):
        backend.from_pandas(pl.DataFrame({"x": [1]}))
    with pytest.raises(TypeError, match="from_polars takes a polars.DataFrame"):
        backend.from_polars(pa.table({"x": [1]}))
    with pytest.raises(TypeError, match="got a LazyFrame: collect it first"):
        backend.from_polars(pl.LazyFrame({"x": [1]}))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="empty takes a pyarrow.Schema, got dict"):
        backend.empty({"x": pa.int64()})


def test_empty_gives_no_rows_of_the_canonical_schema(backend: Backend) -> None:
    schema = pa.schema([("s", pa.string()), ("x", pa.int32())])
    chunk = backend.empty(schema)
    assert chunk.num_rows == 0
    assert chunk.schema.equals(canonical_schema(schema))
    assert backend.to_polars(chunk).schema == pl.Schema({"s": pl.String, "x": pl.Int32})


def test_empty_without_a_schema_gives_a_table_of_no_columns(backend: Backend) -> None:
    chunk = backend.empty()
    assert (chunk.num_rows, chunk.column_names) == (0, [])
    assert backend.to_polars(chunk).shape == (0, 0)


def test_host_kind_names_each_host_table_and_nothing_else() -> None:
    df = pl.DataFrame({"x": [1]})
    kinds = [df, df.to_arrow(), df.to_arrow().to_batches()[0], df.to_pandas()]
    assert [host_kind(v) for v in kinds] == ["polars", "arrow", "arrow", "pandas"]
    for other in (df.lazy(), {"x": [1]}, [1], None, pl.Series([1])):
        assert host_kind(other) is None


def test_a_type_polars_does_not_hold_exactly_is_converted_only_on_purpose(
    backend: Backend,
) -> None:
    table = pa.table({"day": pa.array([datetime.date(2020, 1, 2)], pa.date64())})
    chunk = backend.from_arrow(table)
    with pytest.raises(SchemaError, match="column `day` has type date64"):
        backend.to_polars(chunk)
    converted = backend.to_polars(chunk, convert=["day"])
    assert converted["day"].to_list() == [datetime.datetime(2020, 1, 2)]
    assert backend.to_arrow(chunk).equals(table)  # Arrow keeps it as it is


# ------------------------------------------------------------------------ metadata
@given(df=frames())
def test_describe_gives_schema_rows_and_bytes_without_converting(
    backend: Backend, df: pl.DataFrame
) -> None:
    table = _exported(df)
    info, rows, nbytes = backend.describe(table)
    assert info is not None and info.arrow.equals(table.schema)
    assert (rows, nbytes) == (table.num_rows, table.nbytes)
    # no export for it; its bytes are Polars' estimate and the 16-byte view of each string or
    # binary value, which the estimate leaves out
    views = sum(dtype in (pl.String, pl.Binary) for dtype in df.schema.dtypes())
    assert backend.describe(df) == (None, df.height, df.estimated_size() + 16 * df.height * views)
    assert backend.schema_info(df).arrow.equals(info.arrow)
    assert backend.schema_info(table).arrow.equals(info.arrow)


def test_metadata_refuses_what_is_not_a_native_table(backend: Backend) -> None:
    with pytest.raises(TypeError, match="pyarrow.Table and polars.DataFrame, got list"):
        backend.describe([1, 2])
    with pytest.raises(TypeError, match="got pandas"):
        backend.schema_info(pd.DataFrame({"x": [1]}))


def test_a_chunk_of_another_backend_is_refused_naming_both(backend: Backend) -> None:
    class Elsewhere(TableChunk):
        __slots__ = ()
        backend = "gpu"

    chunk = Elsewhere(pa.table({"x": [1]}))
    for operation in (backend.to_arrow, backend.to_polars, backend.to_pandas):
        with pytest.raises(TypeError, match="belongs to the `gpu` backend, not to the `cpu`"):
            operation(chunk)
    with pytest.raises(TypeError, match="test: .*`gpu` backend.*from_arrow"):
        backend.from_host(chunk, where="test")
    with pytest.raises(TypeError, match="to_arrow: expected a TableChunk, got pyarrow"):
        backend.to_arrow(pa.table({"x": [1]}))
