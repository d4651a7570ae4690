"""The files facet: Parquet writers and CSV readers, against Polars' own readers and writers."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from backend_strategies import frames
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Backend, CsvFormat, CsvPart, FileReadError, TableChunk, csv_shares

# ------------------------------------------------------------------ Parquet


def _pieces(backend: Backend, df: pl.DataFrame, cuts: list[int]) -> list[TableChunk]:
    bounds = [0, *sorted(min(cut, df.height) for cut in cuts), df.height]
    return [backend.from_polars(df[a:b]) for a, b in itertools.pairwise(bounds)]


@settings(max_examples=25)
@given(
    df=frames(), cuts=st.lists(st.integers(0, 40), max_size=3), rows=st.none() | st.integers(1, 9)
)
def test_a_parquet_writer_writes_its_chunks_as_polars_reads_them(
    backend: Backend, df: pl.DataFrame, cuts: list[int], rows: int | None
) -> None:
    chunks = _pieces(backend, df, cuts)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.parquet"
        writer = backend.parquet_writer(path, chunks[0].schema, compression="zstd")
        for chunk in chunks:
            writer.write(chunk, row_group_rows=rows)
        writer.close()
        writer.close()  # idempotent
        assert_frame_equal(pl.read_parquet(path), df)
        groups = pq.read_metadata(path).num_row_groups
        if rows is not None:  # no row group larger than asked
            sizes = [pq.read_metadata(path).row_group(i).num_rows for i in range(groups)]
            assert all(size <= rows for size in sizes)


@settings(max_examples=25)
@given(df=frames(), rows=st.none() | st.integers(1, 9))
def test_write_parquet_writes_one_chunk_as_polars_reads_it(
    backend: Backend, df: pl.DataFrame, rows: int | None
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.parquet"
        backend.write_parquet(
            backend.from_polars(df), path, compression="snappy", row_group_rows=rows
        )
        assert_frame_equal(pl.read_parquet(path), df)
        if rows is not None and df.height:
            assert pq.read_metadata(path).num_row_groups == -(-df.height // rows)


def test_a_parquet_writer_refuses_a_chunk_of_another_schema(
    backend: Backend, tmp_path: Path
) -> None:
    writer = backend.parquet_writer(
        tmp_path / "t.parquet", pa.schema([("x", pa.int64())]), compression="zstd"
    )
    with pytest.raises(ValueError, match="schema"):
        writer.write(backend.from_polars(pl.DataFrame({"y": ["a"]})))
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(backend.from_polars(pl.DataFrame({"x": [1]})))


def test_a_parquet_writer_refuses_an_unknown_codec(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nocodec|compression|codec"):
        backend.parquet_writer(
            tmp_path / "t.parquet", pa.schema([("x", pa.int64())]), compression="nocodec"
        )


def test_the_cpu_parquet_writer_gives_a_dictionary_only_to_columns_whose_values_repeat(
    tmp_path: Path,
) -> None:
    from streamnet.backends.cpu import CpuBackend

    backend = CpuBackend()
    n = 200_000
    df = pl.DataFrame(
        {
            "unique": pl.int_range(n, eager=True),
            "flag": pl.Series(["A", "N", "R"] * (n // 3) + ["A"] * (n % 3)),
            "day": pl.int_range(n, eager=True) // 1000,
            "text": pl.int_range(n, eager=True).cast(pl.String) + "-x",
        }
    )
    path = tmp_path / "t.parquet"
    writer = backend.parquet_writer(path, backend.from_polars(df).schema, compression="zstd")
    for start in range(0, n, 50_000):  # row groups of 50,000: a dictionary never fills
        writer.write(backend.from_polars(df.slice(start, 50_000)))
    writer.close()
    assert_frame_equal(pl.read_parquet(path), df)
    group = pq.read_metadata(path).row_group(1)
    encoded = {
        group.column(i).path_in_schema: group.column(i).has_dictionary_page
        for i in range(group.num_columns)
    }
    assert encoded == {"unique": False, "flag": True, "day": True, "text": False}


def test_a_parquet_writer_given_no_chunk_writes_the_schema(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    writer = backend.parquet_writer(path, pa.schema([("x", pa.int64())]), compression="none")
    writer.close()
    assert pl.read_parquet(path).schema == pl.Schema({"x": pl.Int64})


# ------------------------------------------------------------------ CSV

CSV_COLUMNS = {"i": pl.Int64, "f": pl.Float64, "s": pl.String, "b": pl.Boolean}


@st.composite
def csv_frames(draw: st.DrawFn) -> pl.DataFrame:
    """Frames of the flat types CSV holds, with nulls (no empty strings: CSV writes them as nulls)."""
    names = draw(
        st.lists(st.sampled_from(sorted(CSV_COLUMNS)), min_size=1, max_size=4, unique=True)
    )
    rows = draw(st.integers(0, 60))
    values = {
        "i": st.integers(-(2**40), 2**40),
        "f": st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3)),
        "s": st.sampled_from(["a", "b b", "c,c", 'say "hi"', "é"]),
        "b": st.booleans(),
    }
    data = {
        name: draw(st.lists(st.none() | values[name], min_size=rows, max_size=rows))
        for name in names
    }
    return pl.DataFrame(data, schema={name: CSV_COLUMNS[name] for name in names})


def _fmt(block_size: int = 64, *, typed: bool = True, multiline: bool = False) -> CsvFormat:
    return CsvFormat(block_size, ",", True, "utf-8", typed, multiline)


def _read_all(
    backend: Backend, part: CsvPart, schema: pa.Schema | None, fmt: CsvFormat
) -> pl.DataFrame:
    reader = backend.csv_reader(part, schema, fmt)
    chunks = []
    while (chunk := reader.next()) is not None:
        assert chunk.schema.equals(backend.empty(reader.schema).schema)  # its canonical form
        chunks.append(backend.to_polars(chunk))
    assert reader.next() is None  # and None again
    reader.close()
    return pl.concat(chunks) if chunks else backend.to_polars(backend.empty(reader.schema))


@settings(max_examples=25)
@given(df=csv_frames(), block=st.integers(16, 200))
def test_a_csv_reader_reads_what_polars_wrote_as_polars_reads_it(
    backend: Backend, df: pl.DataFrame, block: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        df.write_csv(path)
        schema = df.to_arrow().schema
        read = _read_all(backend, CsvPart(0, path), schema, _fmt(max(block, 64)))
        assert_frame_equal(read, df)
        assert_frame_equal(read, pl.read_csv(path, schema=df.schema))


@settings(max_examples=25)
@given(df=csv_frames(), nranks=st.integers(2, 4))
def test_csv_byte_ranges_of_a_file_read_as_the_whole_file(
    backend: Backend, df: pl.DataFrame, nranks: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        df.write_csv(path)
        fmt = _fmt(64, typed=False)
        whole = _read_all(backend, CsvPart(0, path), None, fmt)
        parts = [part for rank in range(nranks) for part in csv_shares([path], rank, nranks, True)]
        pieces = [_read_all(backend, part, None, fmt) for part in parts]
        assert_frame_equal(pl.concat(pieces), whole)
        assert_frame_equal(whole, pl.read_csv(path, schema=whole.schema))


def test_a_csv_value_not_of_its_type_names_the_file_the_column_and_the_line(
    backend: Backend, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(100)) + "three,z\n")
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    with pytest.raises(FileReadError, match=r"`.*t\.csv`.*column `a` on line 102 .*got 'three'"):
        _read_all(backend, CsvPart(0, path), schema, _fmt(64))  # opening may raise, or a batch


def test_an_empty_csv_file_without_a_schema_is_an_error_and_with_one_no_rows(
    backend: Backend, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"")
    with pytest.raises(FileReadError, match="the file is empty, so it names no columns"):
        backend.csv_reader(CsvPart(0, path), None, _fmt(typed=False))
    schema = pa.schema([("a", pa.int64())])
    reader = backend.csv_reader(CsvPart(0, path), schema, _fmt())
    assert reader.schema.equals(schema)
    assert reader.next() is None


def test_a_csv_line_break_in_a_value_is_an_error_naming_the_line_unless_multiline(
    backend: Backend, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,"x\ny"\n2,z\n')
    reader = backend.csv_reader(CsvPart(0, path), None, _fmt(typed=False))
    with pytest.raises(FileReadError, match="on line 2 holds a line break"):
        reader.next()
    read = _read_all(backend, CsvPart(0, path), None, _fmt(typed=False, multiline=True))
    assert read["b"].to_list() == ["x\ny", "z"]


def test_a_csv_quote_open_at_the_end_is_an_error_naming_its_line_with_multiline(
    backend: Backend, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,x\n2,"y\n3,z\n')
    with pytest.raises(FileReadError, match="opens on line 3 is never closed"):
        _read_all(backend, CsvPart(0, path), None, _fmt(typed=False, multiline=True))


def test_a_closed_csv_reader_gives_no_more_chunks(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n2\n")
    reader = backend.csv_reader(CsvPart(0, path), None, _fmt(typed=False))
    reader.close()
    reader.close()
    assert reader.next() is None
