"""Memory tiers: spilling a chunk and making it available again, with its accounting."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pyarrow as pa
import pytest
from backend_strategies import frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Backend, BackendName, SortOrder, SpillDirectory, SpillError, TableChunk
from streamnet.backends.cpu import CpuBackend, _tiers


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(df=frames(), arrow=...)
def test_a_spilled_chunk_comes_back_equal(
    backend: Backend, tmp_path: Path, df: pl.DataFrame, arrow: bool
) -> None:
    chunk = backend.from_arrow(df.to_arrow()) if arrow else backend.from_polars(df)
    schema, rows, nbytes = chunk.schema, chunk.num_rows, chunk.nbytes
    assert (backend.residence(chunk), chunk.is_available) == (backend.tiers[0], True)
    assert backend.make_available_cost(chunk) == 0

    freed = backend.spill(chunk, to=backend.tiers[-1], directory=tmp_path)

    assert freed == nbytes
    assert (backend.residence(chunk), chunk.is_available) == (backend.tiers[-1], False)
    assert backend.nbytes_in(chunk, backend.tiers[0]) == 0
    assert backend.nbytes_in(chunk, backend.tiers[-1]) > 0
    assert backend.make_available_cost(chunk) == nbytes
    assert (chunk.schema, chunk.num_rows, chunk.nbytes) == (schema, rows, nbytes)  # no load
    assert backend.spill(chunk, to=backend.tiers[-1], directory=tmp_path) == 0  # already there

    backend.make_available(chunk)

    assert chunk.is_available and backend.nbytes_in(chunk, backend.tiers[0]) == nbytes
    assert list(tmp_path.iterdir()) == []  # the file goes once loaded
    assert_frame_equal(backend.to_polars(chunk), df)


def test_the_chunk_handle_delegates_its_tiers_to_its_backend(tmp_path: Path) -> None:
    chunk = TableChunk.from_polars(pl.DataFrame({"x": [1, 2, 3]}))
    assert (chunk.residence, chunk.nbytes_in("host"), chunk.nbytes_in("disk")) == (
        "host",
        chunk.nbytes,
        0,
    )
    assert chunk.spill(tmp_path) == chunk.nbytes
    assert (chunk.residence, chunk.is_available, chunk.is_spilled) == ("disk", False, True)
    assert chunk.make_available_cost() == chunk.nbytes
    assert "spilled to disk" in repr(chunk)
    native = chunk.table_view().native()  # loads it
    assert isinstance(native, pa.Table) and native.equals(pa.table({"x": [1, 2, 3]}))
    assert (chunk.residence, chunk.make_available_cost()) == ("host", 0)


def test_a_reader_holding_the_data_keeps_it_while_the_chunk_spills(
    backend: Backend, tmp_path: Path
) -> None:
    chunk = backend.from_arrow(pa.table({"x": list(range(100))}))
    held = backend.to_arrow(chunk)
    backend.spill(chunk, to="disk", directory=tmp_path)
    assert held.column("x").to_pylist() == list(range(100))
    assert backend.to_arrow(chunk).equals(held)


def test_spilling_into_a_context_spill_directory_counts_the_file(
    backend: Backend, tmp_path: Path
) -> None:
    spills = SpillDirectory(tmp_path)
    try:
        chunk = backend.from_polars(pl.DataFrame({"s": ["a", "b"] * 50}))
        backend.spill(chunk, to="disk", directory=spills)
        assert spills.statistics().files_written == 1
        del chunk  # garbage-collected while spilled: its file goes with it
        assert [p for p in spills.root.rglob("*") if p.is_file()] == []
    finally:
        spills.close()


def test_a_tier_the_backend_lacks_is_refused(backend: Backend, tmp_path: Path) -> None:
    chunk = backend.from_arrow(pa.table({"x": [1]}))
    with pytest.raises(ValueError, match=r"tiers are \['host', 'disk'\]; got 'device'"):
        backend.nbytes_in(chunk, "device")
    with pytest.raises(ValueError, match="spill: .*got 'device'"):
        backend.spill(chunk, to="device", directory=tmp_path)
    assert backend.spill(chunk, to="host", directory=tmp_path) == 0  # where it is already


def test_a_lost_spill_file_is_an_error_naming_it(backend: Backend, tmp_path: Path) -> None:
    chunk = backend.from_arrow(pa.table({"x": [1]}))
    backend.spill(chunk, to="disk", directory=tmp_path)
    (file,) = tmp_path.iterdir()
    file.unlink()
    with pytest.raises(SpillError, match=f"spilled to `{file}` cannot be loaded"):
        backend.make_available(chunk)


def test_a_chunk_of_other_arrow_flavours_comes_back_with_the_canonical_ones(
    backend: Backend, tmp_path: Path
) -> None:
    chunk = backend.from_arrow(pa.table({"s": pa.array(["a", None], pa.string())}))
    backend.spill(chunk, to="disk", directory=tmp_path)
    assert backend.to_arrow(chunk).schema == chunk.schema  # large_string, as before the spill
    (piece,) = backend.iter_slices(_spilled(backend, chunk, tmp_path), 10)
    assert backend.to_arrow(piece).schema == chunk.schema


def _spilled(backend: Backend, chunk: TableChunk, folder: Path) -> TableChunk:
    backend.spill(chunk, to=backend.tiers[-1], directory=folder)
    return chunk


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(df=frames(), rows=st.integers(1, 15), spill=...)
def test_slices_of_a_chunk_are_its_rows_in_order_and_leave_it_where_it_is(
    backend: Backend, tmp_path: Path, df: pl.DataFrame, rows: int, spill: bool
) -> None:
    chunk = backend.from_polars(df)
    if spill:
        _spilled(backend, chunk, tmp_path)
    pieces = list(backend.iter_slices(chunk, rows))
    assert [p.num_rows for p in pieces] == [
        min(rows, df.height - start) for start in range(0, df.height, rows)
    ]
    assert all(p.schema == chunk.schema for p in pieces)
    got = pl.concat([backend.to_polars(p) for p in pieces]) if pieces else df.head(0)
    assert_frame_equal(got, df)
    assert chunk.is_spilled == spill


def test_a_spilled_chunk_is_read_one_batch_of_its_file_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_tiers, "SPILL_BATCH_BYTES", 64 * 1024)
    backend = CpuBackend()
    chunk = backend.from_arrow(pa.table({"x": pa.array(range(400_000), pa.int64())}))  # 3.2 MB
    backend.spill(chunk, to="disk", directory=tmp_path)
    before = pa.total_allocated_bytes()
    slices = backend.iter_slices(chunk, 1_000)
    first = next(slices)
    assert pa.total_allocated_bytes() - before <= 2 * 64 * 1024  # one batch, not 3.2 MB
    assert backend.to_arrow(first).column("x").to_pylist() == list(range(1_000))
    backend.make_available(chunk)  # read from where it is now: memory
    backend.spill(chunk, to="disk", directory=tmp_path)  # and a file again
    rest = list(slices)
    assert sum(p.num_rows for p in rest) == 399_000
    assert backend.to_arrow(rest[-1]).column("x")[-1].as_py() == 399_999
    assert chunk.is_spilled


def test_slices_of_a_chunk_whose_file_is_gone_raise_naming_it(
    backend: Backend, tmp_path: Path
) -> None:
    chunk = _spilled(backend, backend.from_arrow(pa.table({"x": [1, 2]})), tmp_path)
    (file,) = tmp_path.iterdir()
    file.unlink()
    with pytest.raises(SpillError, match=f"spilled to `{file}` cannot be loaded"):
        next(backend.iter_slices(chunk, 1))
    with pytest.raises(ValueError, match=r"iter_slices: `rows` must be an int >= 1, got 0"):
        backend.iter_slices(chunk, 0)


class _Elsewhere(CpuBackend):
    """A backend of another name (what a chunk of the GPU backend looks like to the CPU's)."""

    name: ClassVar[BackendName] = "gpu"


def test_a_chunk_of_another_backend_is_refused_naming_both_and_the_fix(
    backend: Backend, tmp_path: Path
) -> None:
    chunk = _Elsewhere().from_arrow(pa.table({"x": [1]}))
    assert chunk.backend == "gpu"
    with pytest.raises(TypeError, match=r"`gpu` backend was given to the `cpu` backend; move it"):
        chunk.native_for(backend)
    for operation in (backend.residence, backend.make_available, backend.make_available_cost):
        with pytest.raises(TypeError, match="`gpu` backend.*`cpu` backend"):
            operation(chunk)
    with pytest.raises(TypeError, match="`gpu` backend.*`cpu` backend"):
        backend.spill(chunk, to="disk", directory=tmp_path)


def test_chunks_are_made_on_the_backend_asked_for(backend: Backend) -> None:
    table = pa.table({"x": [1]})
    elsewhere = _Elsewhere()
    assert TableChunk.from_arrow(table, backend=elsewhere).backend == "gpu"
    assert TableChunk.from_polars(pl.DataFrame({"x": [1]}), backend=elsewhere).backend == "gpu"
    assert TableChunk.from_arrow(table).backend == "cpu"  # the process's default
    with pytest.raises(TypeError, match="`backend` must be a streamnet.Backend"):
        TableChunk.from_arrow(table, backend="cpu")  # type: ignore[arg-type]


def test_a_polars_chunk_is_spilled_a_batch_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spilling exports a frame to Arrow a batch of rows at a time (strings are copied by the
    export): spilling never holds a second copy of the whole chunk."""
    from streamnet._schema import polars_to_arrow as export

    exported: list[int] = []

    def counted(frame: pl.DataFrame) -> pa.Table:
        exported.append(frame.height)
        return export(frame)

    monkeypatch.setattr(_tiers, "polars_to_arrow", counted)
    monkeypatch.setattr(_tiers, "SPILL_BATCH_BYTES", 4096)
    df = pl.DataFrame({"k": range(10_000), "s": [f"value {i}" for i in range(10_000)]})
    chunk = CpuBackend().from_polars(df)
    chunk.spill(tmp_path)
    assert len(exported) > 10 and max(exported) < df.height
    assert_frame_equal(chunk.to_polars(), df)


@pytest.mark.parametrize("nested", [False, True])
def test_a_slice_of_a_list_column_whose_rows_hold_no_values_spills_and_comes_back(
    backend: Backend, tmp_path: Path, nested: bool
) -> None:
    """Polars 1.44 exports such a slice with empty list values at an offset past their
    buffer, which Arrow's IPC writer wrote as a file it could not read back (or with
    another column's nulls wrong): the export mends it."""
    values: list[Any] = [None] * 4 + [[0]] + [None] * 35 + [[]]
    if nested:
        values = [None if v is None else [v] for v in values]
    df = pl.DataFrame({"l": values, "i32": [None] * 40 + [0]}, schema_overrides={"i32": pl.Int32})
    sliced = backend.sort(backend.from_polars(df.slice(5)), SortOrder(("i32",), (False,), (False,)))
    expected = backend.to_polars(sliced)
    backend.spill(sliced, to=backend.tiers[-1], directory=tmp_path)
    assert_frame_equal(
        pl.concat([backend.to_polars(c) for c in backend.iter_slices(sliced, 7)]), expected
    )
    backend.make_available(sliced)
    assert_frame_equal(backend.to_polars(sliced), expected)
    assert expected["i32"].drop_nulls().to_list() == [0]


def test_a_spilled_polars_chunk_comes_back_as_a_frame_and_stays_one(tmp_path: Path) -> None:
    """A chunk spilled from a frame is read back by Polars: it is not held twice (as Arrow,
    and as the frame Polars copies the strings into), and slicing or concatenating it
    with frames keeps the result in Polars."""
    from streamnet.backends.cpu._table import cpu_table

    backend = CpuBackend()
    df = pl.DataFrame({"k": range(5_000), "s": [f"value {i}" for i in range(5_000)]})
    spilled, kept = backend.from_polars(df), backend.from_polars(df.head(3))
    backend.spill(spilled, to="disk", directory=tmp_path)
    for made in (
        backend.slice(spilled, 10, 20),
        backend.concat([spilled, kept]),
        backend.project(spilled, ["s"]),
    ):
        native = cpu_table(made, backend)
        assert (native.table, type(native.frame)) == (None, pl.DataFrame)
    assert list(tmp_path.iterdir()) == []  # read once, by the first of them
    assert cpu_table(spilled, backend).table is None
    assert_frame_equal(backend.to_polars(spilled), df)
    both = backend.concat([spilled, kept])
    assert_frame_equal(backend.to_polars(both), pl.concat([df, df.head(3)]))


def test_a_spill_file_polars_reads_as_other_types_is_read_as_arrow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should Polars read a spill file back with other types than the frame had, the
    chunk is read as Arrow and converted as any Arrow chunk: never another type."""
    from streamnet.backends.cpu import _table

    backend = CpuBackend()
    df = pl.DataFrame({"t": [1, 2]}, schema={"t": pl.Datetime("ms", "UTC")})
    chunk = backend.from_polars(df)
    backend.spill(chunk, to="disk", directory=tmp_path)
    monkeypatch.setattr(pl, "read_ipc", lambda source: pl.DataFrame({"t": [1, 2]}))
    assert_frame_equal(backend.to_polars(chunk), df)
    assert _table.cpu_table(chunk, backend).table is not None  # read by Arrow


@pytest.mark.parametrize("categories", [3, 300, 70_000])
def test_an_enum_chunk_spills_and_exports_with_the_canonical_indices(
    tmp_path: Path, categories: int
) -> None:
    """Polars exports an Enum with the narrowest indices its categories allow; the chunk's
    schema says ``uint32``, as for every dictionary, and the export is cast to it."""
    enum = pl.Enum([str(i) for i in range(categories)])
    df = pl.DataFrame({"e": pl.Series(["1", None, "2"], dtype=enum)})
    chunk = CpuBackend().from_polars(df)
    canonical = pa.dictionary(pa.uint32(), pa.large_string(), ordered=True)
    assert chunk.to_arrow().schema.field("e").type == canonical
    chunk.spill(tmp_path)
    assert_frame_equal(chunk.to_polars(), df)


@pytest.mark.parametrize("arrow", [False, True])
def test_a_chunk_whose_pieces_have_dictionaries_of_their_own_spills(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arrow: bool
) -> None:
    """An IPC file holds one dictionary per column: Categorical pieces that each bring
    their own (a frame not rechunked, a table of several chunks) are unified first."""
    monkeypatch.setattr(_tiers, "SPILL_BATCH_BYTES", 64)  # several batches per file
    pieces = [
        pl.DataFrame({"c": pl.Series(values, dtype=pl.Categorical), "i": range(len(values))})
        for values in (["x"] * 10, ["a", "b", "c", "d"] * 10)
    ]
    df = pl.concat(pieces, rechunk=False)
    if arrow:
        table = pa.concat_tables([p.to_arrow() for p in pieces])
        assert table.column("c").num_chunks == 2
        chunk = backend.from_arrow(table)
    else:
        chunk = backend.from_polars(df)
    backend.spill(chunk, to=backend.tiers[-1], directory=tmp_path)
    backend.make_available(chunk)
    assert_frame_equal(backend.to_polars(chunk), df, categorical_as_str=True)
