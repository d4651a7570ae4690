"""Slice, concat and project, against Polars' own ``slice``, ``concat`` and ``select``."""

from __future__ import annotations

import itertools

import polars as pl
import pyarrow as pa
import pytest
from backend_strategies import frames
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Backend, ColumnNotFoundError, SchemaError, TableChunk


def _chunk(backend: Backend, df: pl.DataFrame, held: str) -> TableChunk:
    """A chunk of ``df`` held as a Polars frame, or as an Arrow table (of Polars' newest flavours)."""
    return backend.from_polars(df) if held == "polars" else backend.from_arrow(df.to_arrow())


@given(
    df=frames(),
    offset=st.integers(0, 50),
    length=st.none() | st.integers(0, 50),
    held=st.sampled_from(["polars", "arrow"]),
)
def test_slice_equals_polars_slice_and_keeps_the_schema(
    backend: Backend, df: pl.DataFrame, offset: int, length: int | None, held: str
) -> None:
    chunk = _chunk(backend, df, held)
    part = backend.slice(chunk, offset, length)
    assert_frame_equal(backend.to_polars(part), df.slice(offset, length))
    assert part.schema.equals(chunk.schema)


@pytest.mark.parametrize(("offset", "length"), [(-1, None), (0, -2), (1.5, None), (0, "2")])
def test_slice_refuses_negative_or_odd_bounds(
    backend: Backend, offset: object, length: object
) -> None:
    chunk = backend.from_polars(pl.DataFrame({"x": [1, 2, 3]}))
    with pytest.raises(ValueError, match="slice: `(offset|length)` must be"):
        backend.slice(chunk, offset, length)  # type: ignore[arg-type]


@given(
    df=frames(),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    helds=st.lists(st.sampled_from(["polars", "arrow"]), min_size=5, max_size=5),
)
def test_concat_equals_polars_concat_of_the_pieces(
    backend: Backend, df: pl.DataFrame, cuts: list[int], helds: list[str]
) -> None:
    bounds = [0, *sorted(min(cut, df.height) for cut in cuts), df.height]
    pieces = [df[start:end] for start, end in itertools.pairwise(bounds)]
    chunks = [_chunk(backend, piece, held) for piece, held in zip(pieces, helds, strict=False)]
    joined = backend.concat(chunks)
    assert_frame_equal(backend.to_polars(joined), pl.concat(pieces))
    assert joined.schema.equals(chunks[0].schema)
    if len(chunks) == 1:
        assert joined is chunks[0]


def test_concat_of_nothing_is_an_error(backend: Backend) -> None:
    with pytest.raises(ValueError, match="no chunks to concatenate"):
        backend.concat([])


def test_concat_never_casts_and_says_how_schemas_differ(backend: Backend) -> None:
    a = backend.from_polars(pl.DataFrame({"k": [1], "v": [1.0]}))
    b = backend.from_arrow(pa.table({"k": pa.array([2], pa.int32()), "v": [2.0]}))
    with pytest.raises(
        SchemaError, match="chunk 1 .*column `k` has type Int32 where chunk 0 has Int64"
    ):
        backend.concat([a, b])


@given(df=frames(), held=st.sampled_from(["polars", "arrow"]), data=st.data())
def test_project_equals_polars_select(
    backend: Backend, df: pl.DataFrame, held: str, data: st.DataObject
) -> None:
    columns = data.draw(st.lists(st.sampled_from(df.columns), min_size=1, unique=True))
    chunk = _chunk(backend, df, held)
    part = backend.project(chunk, columns)
    assert_frame_equal(backend.to_polars(part), df.select(columns))
    assert part.num_rows == df.height


def test_project_names_a_missing_column_and_refuses_duplicates(backend: Backend) -> None:
    chunk = backend.from_polars(pl.DataFrame({"a": [1], "b": [2]}))
    with pytest.raises(
        ColumnNotFoundError, match=r"column `z` not found; columns are \['a', 'b'\]"
    ):
        backend.project(chunk, ["a", "z"])
    with pytest.raises(ValueError, match="names a column twice"):
        backend.project(chunk, ["a", "a"])
    with pytest.raises(ValueError, match="must name at least one column"):
        backend.project(chunk, [])
