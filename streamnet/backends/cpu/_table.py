"""The CPU backend's tables: `CpuTable`, and the host boundary, metadata, slice and concat.

A CPU chunk's native table is a `CpuTable`: an Arrow table or a Polars frame
(or both once converted), converted between the two only when asked, and the
file it was spilled to while it is on disk. The methods of `CpuTables` hand
chunks to and from the host and cut and join them without converting data
where they can.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from streamnet._errors import ColumnNotFoundError, SchemaError, SpillError
from streamnet._schema import (
    CANNOT_HOLD,
    SchemaInfo,
    canonical_schema,
    describe_schema,
    empty_table,
    frame_of_arrow,
    info_of_arrow,
    info_of_frame,
    info_of_schema,
    polars_to_arrow,
    schema_differences,
)
from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend, is_pandas_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CpuTable", "CpuTables", "check_one_schema", "cpu_table", "frame_nbytes", "spill_file_gone",
]  # fmt: skip

_VIEW_BYTES = 16
"""Bytes of the view Polars keeps per string or binary value, besides the value's bytes."""


def frame_nbytes(frame: pl.DataFrame, info: SchemaInfo | None = None) -> int:
    """The bytes ``frame`` holds: Polars' ``estimated_size``, plus the 16-byte view of
    every string or binary value of its top-level columns, which ``estimated_size``
    leaves out (it counts the values' bytes only). ``info``, the frame's schema if
    known, saves reading its types."""
    if info is not None:
        views = info.views()
    else:
        views = sum(dtype in (pl.String, pl.Binary) for dtype in frame.schema.dtypes())
    return int(frame.estimated_size()) + _VIEW_BYTES * frame.height * views


class CpuTable:
    """The CPU backend's native table: an Arrow table, a Polars frame, or a spill file.

    A table made from a Polars frame keeps the frame and exports it to Arrow
    only when asked (and the other way round), so a chain of Polars kernels
    never converts back and forth. An Arrow table of other flavours than the
    canonical ones (``string``, ``string_view``...) is kept as it is and cast
    once, when first asked for as Arrow with the canonical types.

    While spilled, ``path`` names the Arrow IPC file that holds the data and
    neither form is in memory; the data is read back (and the file removed)
    the next time it is asked for. ``lock`` makes spilling and loading atomic
    for readers: a reader holds either form, never half of one. The file is
    removed when the table is garbage-collected.

    Attributes
    ----------
    table
        The Arrow table, or None.
    frame
        The Polars frame, or None.
    canonical
        Whether ``table`` has the canonical flavours (None: not checked yet).
    path
        The spill file while spilled, else None.
    disk_bytes
        The spill file's size while spilled, else 0.
    batch_starts
        While spilled, the first row of each record batch of the file (a reader of
        slices reads the batches it needs, never the whole file).
    lock
        Held while spilling, loading or casting.
    distinct_by
        Columns whose values no two rows share (together): the keys of the group-by
        that made the table, kept by the pieces a filter or a hash partition cuts
        from it; () where not known. A group-by's finish needs no grouping of them.
    """

    __slots__ = (
        "__weakref__", "batch_starts", "canonical", "disk_bytes", "distinct_by", "frame",
        "frame_schema", "lock", "path", "table",
    )  # fmt: skip

    def __init__(
        self,
        table: pa.Table | None = None,
        frame: pl.DataFrame | None = None,
        *,
        canonical: bool | None = None,
    ) -> None:
        self.table = table
        self.frame = frame
        self.canonical = canonical
        self.path: Path | None = None
        self.disk_bytes = 0
        self.batch_starts: tuple[int, ...] = ()
        self.frame_schema: pl.Schema | None = None
        self.lock = threading.Lock()
        self.distinct_by: tuple[str, ...] = ()

    def arrow(self, info: Callable[[], SchemaInfo], *, canonical: bool) -> pa.Table:
        """The Arrow table, loaded if spilled; with ``canonical``, cast to the canonical
        flavours if it has others. ``info`` gives the chunk's schema when needed.

        Raises
        ------
        SpillError
            The spill file is gone (its run failed, or its Context closed).
        SchemaError
            The frame is not of the schema its chunk was given.
        """
        table = self.table
        if table is not None and (not canonical or self.canonical):
            return table
        with self.lock:
            if self.table is None:
                if self.path is not None:
                    self._load()
                else:
                    self.table = self.exported(info())
                    self.canonical = True
            table = self.table
            assert table is not None
            if canonical and not self.canonical:
                target = info().arrow
                if not table.schema.equals(target, check_metadata=False):
                    table = self.table = table.cast(target)
                self.canonical = True
            return table

    def polars(self, info: Callable[[], SchemaInfo], convert: Iterable[str]) -> pl.DataFrame:
        """The Polars frame (zero-copy from Arrow where Arrow allows); see `TableChunk.to_polars`.

        Raises
        ------
        SchemaError
            A column's type is one Polars does not hold exactly and is not in
            ``convert``, or one it cannot hold at all.
        """
        frame = self.held_frame()
        if frame is not None:
            return frame
        known = info()
        inexact = known.inexact()
        if inexact:
            allowed = set(convert)
            refused = [c for c in inexact if c[0] not in allowed or c[2] == CANNOT_HOLD]
            if refused:
                raise _not_exact(refused)
        table = self.arrow(info, canonical=False)
        try:
            df = frame_of_arrow(table)
        except Exception:  # a flavour Polars cannot import (list views): the canonical one
            canonical = self.arrow(info, canonical=True)
            try:
                df = frame_of_arrow(canonical)
            except pl.exceptions.ComputeError:
                df = frame_of_arrow(_compact_fixed_lists(canonical))
        assert isinstance(df, pl.DataFrame)
        if not inexact:  # keep it: the frame is the table's data, exactly
            self.frame = df
        return df

    def held_frame(self) -> pl.DataFrame | None:
        """The Polars frame, read back first if it was spilled (`_load_frame`); None for a
        table held as Arrow."""
        frame = self.frame
        if frame is None and self.frame_schema is not None:
            with self.lock:
                if self.frame is None and self.path is not None:
                    self._load_frame()
                frame = self.frame
        return frame

    def exported(self, info: SchemaInfo) -> pa.Table:
        """The Polars frame as Arrow, checked against the schema its chunk was given.

        Raises
        ------
        SchemaError
            The frame is not of that schema.
        """
        frame = self.frame
        assert frame is not None
        table = polars_to_arrow(frame)
        if not table.schema.equals(info.arrow, check_metadata=False):
            canonical = canonical_schema(table.schema)  # an Enum's indices: as narrow as it allows
            if canonical.equals(info.arrow, check_metadata=False):
                return table.cast(canonical)
            raise SchemaError(
                "a chunk made with `TableChunk.from_polars(df, schema=...)` was given a schema "
                f"that is not its frame's: {describe_schema(info.arrow)}; "
                f"got {describe_schema(table.schema)}"
            )
        return table

    def _load(self) -> None:
        """Read the spill file back as Arrow (the lock held) and remove it."""
        path = self.path
        assert path is not None
        try:
            with pa.OSFile(str(path), "rb") as source:
                self.table = pa.ipc.open_file(source).read_all()
        except FileNotFoundError as exc:
            raise spill_file_gone(path) from exc
        self._loaded()

    def _load_frame(self) -> None:
        """Read the spill file of a spilled frame back as a Polars frame (the lock held) and
        remove it; read as Arrow instead if Polars reads other types than the frame had.

        Polars reads the file into its own memory: the Arrow form, whose strings
        Polars would copy, is never made, so the chunk is in memory once.
        """
        path = self.path
        assert path is not None
        try:
            with open(path, "rb") as source:  # read, not memory-mapped: the file goes next
                frame = pl.read_ipc(source)
        except FileNotFoundError as exc:
            raise spill_file_gone(path) from exc
        if frame.schema != self.frame_schema:
            self._load()
            return
        self.frame = frame
        self._loaded()

    def _loaded(self) -> None:
        """The spill file was read back: remove it."""
        path = self.path
        assert path is not None
        path.unlink(missing_ok=True)
        self.path = None
        self.disk_bytes = 0
        self.batch_starts = ()
        self.frame_schema = None

    def __del__(self) -> None:
        path = getattr(self, "path", None)
        if path is not None:
            with contextlib.suppress(OSError):  # best effort, also at interpreter exit
                path.unlink(missing_ok=True)


def check_one_schema(
    chunks: Sequence[TableChunk], operation: str, noun: str, *, note: str = ""
) -> None:
    """Raise a `SchemaError` naming the first of ``chunks`` (each a ``noun``, counted
    from 0) whose schema is not the first's; ``note`` comes before what was received."""
    if not chunks:
        return
    schema = chunks[0].schema
    for index, chunk in enumerate(chunks[1:], 1):
        other = chunk.schema
        if other is not schema and not other.equals(schema, check_metadata=False):
            problems = "; ".join(schema_differences(schema, other, of=f"{noun} 0"))
            raise SchemaError(
                f"{operation}: {noun} {index} does not have the schema of {noun} 0: "
                f"{problems}; {note}got {describe_schema(other)}"
            )


def spill_file_gone(path: Path) -> SpillError:
    """The error of a spilled chunk whose file is no longer there."""
    return SpillError(
        f"chunk spilled to `{path}` cannot be loaded: its file is gone (a "
        "failed run removes the files of the chunks it spilled, and a "
        "closed Context all of its own); got no file at that path"
    )


def cpu_table(chunk: TableChunk, backend: Backend) -> CpuTable:
    """The `CpuTable` of a CPU chunk (as it is: spilled or not).

    Raises
    ------
    TypeError
        ``chunk`` belongs to another backend (see `TableChunk.native_for`).
    """
    native = chunk.native_for(backend)
    assert isinstance(native, CpuTable)
    return native


def _not_exact(columns: list[tuple[str, pa.DataType, str]]) -> SchemaError:
    """The error of a chunk that cannot become a Polars frame without changing types."""
    from streamnet._actor import current_actor_name

    actor = current_actor_name()
    where = f"actor `{actor}`: " if actor else ""
    listed = "; ".join(f"column `{name}` has type {dtype}, and {why}" for name, dtype, why in columns)
    if all(why == CANNOT_HOLD for _, _, why in columns):
        fix = "cast the source table with pyarrow to a type Polars has"
    else:
        fix = (
            "cast them first to a type Polars has, with `actors.cast` (or cast the source "
            "table)"
        )
    return SchemaError(
        f"{where}{listed}; Polars does not hold these types exactly, so they are not converted "
        f"implicitly: {fix}; got {', '.join(str(dtype) for _, dtype, _ in columns)}"
    )


class CpuTables(Backend):
    """Host boundary, metadata, slice and concat of Arrow tables and Polars frames."""

    # ------------------------------------------------------------------ host boundary
    def from_arrow(self, data: pa.Table | pa.RecordBatch) -> TableChunk:
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        elif not isinstance(data, pa.Table):
            raise TypeError(
                f"from_arrow takes a pyarrow.Table or pyarrow.RecordBatch, got {_kind(data)}"
            )
        return TableChunk.from_native(self, CpuTable(data))

    def from_polars(self, df: pl.DataFrame, *, schema: pa.Schema | None = None) -> TableChunk:
        if isinstance(df, pl.LazyFrame):
            raise TypeError("from_polars takes a polars.DataFrame, got a LazyFrame: collect it first")
        if not isinstance(df, pl.DataFrame):
            raise TypeError(f"from_polars takes a polars.DataFrame, got {type(df).__name__}")
        if schema is not None:
            if not isinstance(schema, pa.Schema):
                raise TypeError(
                    f"from_polars: `schema` must be a pyarrow.Schema, got {type(schema).__name__}"
                )
            if len(schema) != df.width:
                raise ValueError(
                    f"from_polars: `schema` has {len(schema)} columns, the frame has "
                    f"{df.width}; got {schema.names}"
                )
        return TableChunk.from_native(self, CpuTable(frame=df), schema=schema)

    def from_pandas(self, df: pd.DataFrame, *, preserve_index: bool = False) -> TableChunk:
        if not is_pandas_frame(df):
            raise TypeError(f"from_pandas takes a pandas.DataFrame, got {_kind(df)}")
        return self.from_arrow(pa.Table.from_pandas(df, preserve_index=preserve_index))

    def to_arrow(self, chunk: TableChunk) -> pa.Table:
        native = cpu_table(self._own(chunk, "to_arrow"), self)
        return native.arrow(lambda: info_of_schema(chunk.schema), canonical=True)

    def to_polars(self, chunk: TableChunk, *, convert: Iterable[str] = ()) -> pl.DataFrame:
        native = cpu_table(self._own(chunk, "to_polars"), self)
        return native.polars(lambda: info_of_schema(chunk.schema), convert)

    def to_pandas(self, chunk: TableChunk) -> pd.DataFrame:
        try:
            import pandas  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("TableChunk.to_pandas needs pandas: pip install pandas") from exc
        return self.to_arrow(chunk).to_pandas()

    def empty(self, schema: pa.Schema | None = None) -> TableChunk:
        if schema is None:
            schema = pa.schema([])
        if not isinstance(schema, pa.Schema):
            raise TypeError(f"empty takes a pyarrow.Schema, got {_kind(schema)}")
        return self.from_arrow(empty_table(schema))

    # ------------------------------------------------------------------ metadata
    def describe(
        self, native: object, *, info: SchemaInfo | None = None
    ) -> tuple[SchemaInfo | None, int, int]:
        if isinstance(native, CpuTable):
            table = native.table
            if table is not None:
                return info_of_arrow(table.schema), int(table.num_rows), int(table.nbytes)
            frame = native.frame
            if frame is not None:
                return None, frame.height, frame_nbytes(frame, info)
            raise TypeError("describe: a spilled table's metadata is its chunk's; got one on disk")
        if isinstance(native, pa.Table):
            return info_of_arrow(native.schema), int(native.num_rows), int(native.nbytes)
        if isinstance(native, pl.DataFrame):
            return None, native.height, frame_nbytes(native, info)
        raise TypeError(_not_native(native))

    def schema_info(self, native: object) -> SchemaInfo:
        if isinstance(native, CpuTable):
            table, frame = native.table, native.frame
            if table is not None:
                return info_of_arrow(table.schema)
            if frame is not None:
                return info_of_frame(frame)
            raise TypeError("schema_info: a spilled table's schema is its chunk's; got one on disk")
        if isinstance(native, pa.Table):
            return info_of_arrow(native.schema)
        if isinstance(native, pl.DataFrame):
            return info_of_frame(native)
        raise TypeError(_not_native(native))

    # ------------------------------------------------------------------ slice and concat
    def slice(self, chunk: TableChunk, offset: int, length: int | None = None) -> TableChunk:
        chunk = self._own(chunk, "slice")
        if type(offset) is not int or offset < 0:
            raise ValueError(f"slice: `offset` must be an int >= 0, got {offset!r}")
        if length is not None and (type(length) is not int or length < 0):
            raise ValueError(f"slice: `length` must be None or an int >= 0, got {length!r}")
        schema = chunk.schema  # worked out once for all the slices of a chunk
        native = cpu_table(chunk, self)
        frame = native.held_frame()
        if frame is not None:
            return TableChunk.from_native(
                self, CpuTable(frame=frame.slice(offset, length)), like=chunk
            )
        table = native.arrow(lambda: info_of_schema(schema), canonical=False)
        piece = CpuTable(table.slice(offset, length), canonical=native.canonical)
        return TableChunk.from_native(self, piece, like=chunk)

    def concat(self, chunks: Sequence[TableChunk]) -> TableChunk:
        chunks = [self._own(chunk, "concat") for chunk in chunks]
        if not chunks:
            raise ValueError("concat: no chunks to concatenate; got an empty sequence")
        check_one_schema(
            chunks, "concat", "chunk", note="chunks are concatenated as they are, never cast; "
        )
        if len(chunks) == 1:
            return chunks[0]
        natives = [cpu_table(chunk, self) for chunk in chunks]
        frames = [frame for native in natives if (frame := native.held_frame()) is not None]
        if len(frames) == len(chunks):  # all held by Polars: the result stays in Polars
            joined = pl.concat(frames, how="vertical", rechunk=False)
            return TableChunk.from_native(self, CpuTable(frame=joined), like=chunks[0])
        return self.from_arrow(pa.concat_tables([self.to_arrow(chunk) for chunk in chunks]))

    def project(self, chunk: TableChunk, columns: Sequence[str]) -> TableChunk:
        chunk = self._own(chunk, "project")
        columns = list(columns)
        arrow = chunk.schema
        names = arrow.names
        missing = [name for name in columns if name not in names]
        if missing:
            listed = ", ".join(f"`{name}`" for name in missing)
            raise ColumnNotFoundError(
                f"project: column {listed} not found; columns are {names}; got {columns}"
            )
        if not columns:
            raise ValueError("project: `columns` must name at least one column; got []")
        if len(set(columns)) != len(columns):
            raise ValueError(f"project: `columns` names a column twice; got {columns}")
        schema = info_of_schema(
            pa.schema([arrow.field(name) for name in columns], metadata=arrow.metadata)
        ).arrow
        native = cpu_table(chunk, self)
        frame = native.held_frame()
        if frame is not None:
            # Indexing by names picks the columns without a query (`select` plans one:
            # about 70 µs against 8 µs a chunk, on the event loop when it projects).
            return self.from_polars(frame[columns], schema=schema)
        table = native.arrow(lambda: info_of_schema(arrow), canonical=False)
        return self.from_arrow(table.select(columns))

    # ------------------------------------------------------------------ the handle's view
    def native_view(self, chunk: TableChunk) -> pa.Table:
        return self.to_arrow(chunk)


def _kind(value: object) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _not_native(native: object) -> str:
    return f"the cpu backend's tables are pyarrow.Table and polars.DataFrame, got {_kind(native)}"


def _compact_fixed_lists(table: pa.Table) -> pa.Table:
    """``table`` with its fixed-size list columns copied where their values run past
    their rows: pyarrow's slice of such an array keeps all its values, which Polars
    refuses once the array has nulls ("validity mask length must be equal...")."""
    columns = []
    for column in table.columns:
        if pa.types.is_fixed_size_list(column.type):
            size = column.type.list_size
            column = pa.chunked_array(
                [
                    pa.concat_arrays([chunk])
                    if chunk.offset or len(chunk.values) != len(chunk) * size
                    else chunk
                    for chunk in column.chunks
                ],
                type=column.type,
            )
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=table.schema)
