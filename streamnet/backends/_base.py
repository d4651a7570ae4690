"""Backend: the one interface between the runtime and a table engine; its contract, written once.

Every method's behaviour and every exception it raises are written here, on the
abstract class; a backend (``cpu/``) implements them and the contract tests in
``tests/streamnet/backends/`` check each one against Polars.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar

import polars as pl
import pyarrow as pa

from streamnet._table_chunk import TableChunk
from streamnet._typing import BackendName, Tier

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from streamnet._schema import SchemaInfo
    from streamnet.backends._types import Packed
    from streamnet.memory._spill import SpillDirectory

__all__ = ["Backend", "is_pandas_frame"]


class Backend(ABC):
    """Where tables live and kernels run: all that depends on it, behind one interface.

    A `Context` owns one (``ctx.backend``, made from ``Context(backend=...)``) and
    closes it when it closes; `TableChunk` is the handle of a table it holds.
    Methods take and return TableChunks. The methods that touch data (kernels)
    block and are thread-safe: actors run them in the Context's thread pool,
    ``await ctx.to_thread(ctx.backend.concat, chunks)``. Metadata methods never
    touch data.

    The facets:

    - lifecycle: :meth:`probe`, :meth:`close`, :meth:`fingerprint`;
    - the host boundary: ``from_arrow/from_polars/from_pandas/from_host``,
      ``to_arrow/to_polars/to_pandas``, :meth:`empty`;
    - metadata: :meth:`describe`, :meth:`schema_info`;
    - slice and concat: :meth:`slice`, :meth:`concat`, :meth:`project`;
    - the wire: :meth:`pack`, :meth:`unpack`, :meth:`host_buffer`;
    - hash partitioning: :meth:`hash_partition`, :meth:`partition_and_pack`;
    - memory tiers: :attr:`tiers`, :meth:`residence`, :meth:`nbytes_in`,
      :meth:`spill`, :meth:`make_available`, :meth:`make_available_cost`, and
      :meth:`native_view` (what ``chunk.table_view().native()`` gives).

    The facets still to come, each with the contract tests of its methods: plans
    (compile and run a chain of Polars-expression steps per chunk, a scan's
    included), range partitioning and sampling, the aggregation kernels
    (partial, merge, final) and distinct, joins (partition-wise, broadcast
    build and probe), sorting (sort, top-k, k-way merge), the statistics of
    the memory tiers, and files (Parquet and CSV readers
    and writers).

    Every method that takes a chunk raises `TypeError` for a chunk of another
    backend (the message names both backends and the fix). A backend reaches a
    chunk's native table with `TableChunk.native_for` and makes chunks of its
    tables with `TableChunk.from_native`.
    """

    name: ClassVar[BackendName]
    """The backend's name, as ``Context(backend=...)`` takes it."""

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    @abstractmethod
    def probe(cls) -> str | None:
        """None if the backend can be used here, else why not (``"pylibcudf is not
        installed"``). Cheap: touches no device and imports nothing heavy."""

    @abstractmethod
    def close(self) -> None:
        """Release what the backend holds (memory pools, streams); `Context.close` calls it.

        Idempotent.
        """

    @abstractmethod
    def fingerprint(self) -> str:
        """What the ranks of a run must share for their partitions to agree
        (``"cpu polars=2.1.0"``): the backend and the versions its hashing depends on.

        A `Network` with several ranks checks that every rank's is the same before
        it runs (`NetworkMismatchError` otherwise): Polars' hash of a key differs
        between Polars versions, so ranks with different versions would send equal
        keys to different partitions.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.fingerprint()}>"

    # ------------------------------------------------------------------ host boundary
    @abstractmethod
    def from_arrow(self, data: pa.Table | pa.RecordBatch) -> TableChunk:
        """A chunk of an Arrow table or record batch (no copy on the CPU).

        Raises
        ------
        TypeError
            ``data`` is something else; the message names its type.
        """

    @abstractmethod
    def from_polars(self, df: pl.DataFrame, *, schema: pa.Schema | None = None) -> TableChunk:
        """A chunk of a Polars DataFrame (no copy on the CPU).

        ``schema``, if given, must be the frame's Arrow schema with the canonical
        types, as `TableChunk.schema` gives it: the chunk then shares it.

        Raises
        ------
        TypeError
            ``df`` is not a Polars DataFrame, or ``schema`` not an Arrow schema.
        ValueError
            ``schema`` has another number of columns than the frame.
        """

    @abstractmethod
    def from_pandas(self, df: pd.DataFrame, *, preserve_index: bool = False) -> TableChunk:
        """A chunk of a pandas DataFrame (its index dropped unless ``preserve_index``).

        Raises
        ------
        TypeError
            ``df`` is not a pandas DataFrame.
        """

    def from_host(self, value: object, *, where: str) -> TableChunk:
        """A chunk of whichever host table ``value`` is: an Arrow table or record batch,
        a Polars or a pandas DataFrame, or a chunk of this backend (returned as it is).

        Raises
        ------
        TypeError
            ``value`` is none of these (the message starts with ``where``, what
            the value is, and names the type received), or a chunk of another backend.
        """
        if isinstance(value, TableChunk):
            return self._own(value, where)
        if isinstance(value, pa.Table | pa.RecordBatch):
            return self.from_arrow(value)
        if isinstance(value, pl.DataFrame):
            return self.from_polars(value)
        if is_pandas_frame(value):  # pandas is optional: not imported to check
            return self.from_pandas(value)
        raise TypeError(
            f"{where}: expected a pyarrow.Table, pyarrow.RecordBatch, polars.DataFrame, "
            f"pandas.DataFrame or TableChunk, got {type(value).__name__}"
        )

    @abstractmethod
    def to_arrow(self, chunk: TableChunk) -> pa.Table:
        """The chunk's data as an Arrow table with the canonical types (no copy on the
        CPU when the chunk holds such a table)."""

    @abstractmethod
    def to_polars(self, chunk: TableChunk, *, convert: Iterable[str] = ()) -> pl.DataFrame:
        """The chunk's data as a Polars DataFrame.

        Raises
        ------
        SchemaError
            A column has a type Polars does not hold exactly (``date64``...) and is
            not named in ``convert``, or a type Polars cannot hold at all; the
            message names the column and the type.
        """

    @abstractmethod
    def to_pandas(self, chunk: TableChunk) -> pd.DataFrame:
        """The chunk's data as a pandas DataFrame.

        Raises
        ------
        ImportError
            pandas is not installed.
        """

    @abstractmethod
    def empty(self, schema: pa.Schema) -> TableChunk:
        """A chunk of no rows with the canonical form of ``schema``.

        Raises
        ------
        TypeError
            ``schema`` is not an Arrow schema.
        """

    # ------------------------------------------------------------------ metadata
    @abstractmethod
    def describe(self, native: object) -> tuple[SchemaInfo | None, int, int]:
        """``(schema, rows, bytes)`` of one of the backend's native tables, without
        touching its data; the schema is None where it would cost a conversion (a
        Polars frame on the CPU): `schema_info` works it out when asked.

        Raises
        ------
        TypeError
            ``native`` is not one of the backend's native tables.
        """

    @abstractmethod
    def schema_info(self, native: object) -> SchemaInfo:
        """The canonical schema of a native table, shared by every table of equal schema.

        Raises
        ------
        TypeError
            ``native`` is not one of the backend's native tables.
        SchemaError
            A column's type has no Arrow form; the message names it.
        """

    # ------------------------------------------------------------------ slice and concat
    @abstractmethod
    def slice(self, chunk: TableChunk, offset: int, length: int | None = None) -> TableChunk:
        """Rows ``offset`` to ``offset + length`` (to the end when None) as a chunk of the
        same schema, without copying data; an offset past the end gives no rows.

        Raises
        ------
        ValueError
            ``offset`` or ``length`` is negative or not an int.
        """

    @abstractmethod
    def concat(self, chunks: Sequence[TableChunk]) -> TableChunk:
        """The rows of ``chunks`` one after the other, as one chunk; never a cast.

        Raises
        ------
        ValueError
            ``chunks`` is empty.
        SchemaError
            The chunks do not share one schema (the message says how they differ).
        """

    @abstractmethod
    def project(self, chunk: TableChunk, columns: Sequence[str]) -> TableChunk:
        """The chunk with only ``columns``, in that order, without copying data.

        Raises
        ------
        ColumnNotFoundError
            A column is not in the chunk; the message lists the chunk's columns.
        ValueError
            ``columns`` is empty, or names a column twice.
        """

    # ------------------------------------------------------------------ wire
    @abstractmethod
    def pack(self, chunk: TableChunk) -> Packed:
        """The chunk as one `Packed`, ready to send to another rank or write to a file."""

    @abstractmethod
    def unpack(self, packed: Packed) -> TableChunk:
        """The chunk `pack` made ``packed`` from (on the CPU without a copy of the frames).

        Raises
        ------
        TypeError
            ``packed`` was packed by another backend.
        ValueError
            ``packed`` is not what this backend packs: its header or frames are
            damaged or incomplete.
        """

    @abstractmethod
    def host_buffer(self, nbytes: int) -> memoryview:
        """A writable buffer of ``nbytes`` bytes in host memory to receive packed frames into.

        Raises
        ------
        ValueError
            ``nbytes`` is negative or not an int.
        """

    # ------------------------------------------------------------------ hash partitioning
    @abstractmethod
    def hash_partition(
        self, chunk: TableChunk, keys: Sequence[str], partitions: int
    ) -> dict[int, TableChunk]:
        """The chunk's rows by partition: a seeded hash of ``keys`` modulo ``partitions``.

        Rows with equal keys (nulls too) land in one partition on every rank of one
        `fingerprint`, and integer (or float) keys hash alike whatever their width.
        Empty partitions are left out; no row is lost. Each piece has the chunk's
        schema.

        Raises
        ------
        ColumnNotFoundError
            A key is not a column of the chunk.
        ValueError
            ``keys`` is empty, or ``partitions`` is not an int >= 1.
        SchemaError
            The backend's engine cannot hold a column's type (on the CPU: a type
            Polars does not hold exactly, see `TableChunk.to_polars`).
        """

    def partition_and_pack(
        self,
        chunk: TableChunk,
        keys: Sequence[str],
        partitions: int,
        *,
        local: Collection[int],
    ) -> tuple[dict[int, TableChunk], dict[int, Packed]]:
        """:meth:`hash_partition`, with the pieces of partitions not in ``local`` packed
        for the wire: ``(local pieces, packed pieces)`` by partition.

        A backend may do both in one pass; the base class partitions, then packs.
        Raises what :meth:`hash_partition` raises.
        """
        pieces = self.hash_partition(chunk, keys, partitions)
        kept = {p: piece for p, piece in pieces.items() if p in local}
        packed = {p: self.pack(piece) for p, piece in pieces.items() if p not in local}
        return kept, packed

    # ------------------------------------------------------------------ memory tiers
    tiers: ClassVar[tuple[Tier, ...]]
    """The tiers a chunk's data can be in, fastest first (the CPU's: ``("host", "disk")``).

    Kernels work on chunks in ``tiers[0]`` (available); a chunk in a slower tier
    is made available first, transparently, by the method that needs its data.
    """

    @abstractmethod
    def residence(self, chunk: TableChunk) -> Tier:
        """The tier the chunk's data is in now (O(1), touches no data)."""

    @abstractmethod
    def nbytes_in(self, chunk: TableChunk, tier: Tier) -> int:
        """Bytes the chunk's data takes in ``tier`` (0 in a tier it is not in).

        Raises
        ------
        ValueError
            ``tier`` is not one of the backend's `tiers`.
        """

    @abstractmethod
    def spill(
        self, chunk: TableChunk, *, to: Tier = "disk", directory: SpillDirectory | Path
    ) -> int:
        """Move the chunk's data down to ``to``; returns the bytes freed in the tier it left
        (0 if it is in ``to`` or a slower tier already).

        A file it writes goes to ``directory`` (a Context's `SpillDirectory`, or a
        folder, made if missing) and is removed when the chunk is made available
        again or garbage-collected. Atomic for readers: one that holds the data
        keeps it, one that comes later makes it available again.

        Raises
        ------
        ValueError
            ``to`` is not one of the backend's `tiers`.
        SpillError
            The data cannot be written (a full disk); the message names the file.
        """

    @abstractmethod
    def make_available(self, chunk: TableChunk) -> None:
        """Bring the chunk's data back to ``tiers[0]`` (nothing to do if it is there).

        Raises
        ------
        SpillError
            The data's file is gone (its run failed, or its Context closed).
        """

    @abstractmethod
    def make_available_cost(self, chunk: TableChunk) -> int:
        """Bytes ``tiers[0]`` must find to make the chunk available (0 if it is)."""

    @abstractmethod
    def native_view(self, chunk: TableChunk) -> object:
        """The chunk's data as the backend's own table type, made available first: what
        ``chunk.table_view().native()`` gives (a ``pyarrow.Table`` on the CPU)."""

    # ------------------------------------------------------------------ for implementations
    def _own(self, chunk: object, operation: str) -> TableChunk:
        """``chunk``, checked to be a TableChunk of this backend (for ``operation``'s errors)."""
        if not isinstance(chunk, TableChunk):
            raise TypeError(
                f"{operation}: expected a TableChunk, got {type(chunk).__module__}."
                f"{type(chunk).__name__}"
            )
        if chunk.backend != self.name:
            raise TypeError(
                f"{operation}: the chunk belongs to the `{chunk.backend}` backend, not to the "
                f"`{self.name}` backend; move it with `backend.from_arrow(chunk.to_arrow())`; "
                f"got {chunk!r}"
            )
        return chunk


def is_pandas_frame(value: object) -> bool:
    """Whether ``value`` is a pandas DataFrame (pandas is optional: never imported for it)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)
