"""Backend: the one interface between the runtime and a table engine; its contract, written once.

Every method's behaviour and every exception it raises are written here, on the
abstract class; a backend (``cpu/``) implements them and the contract tests in
``tests/streamnet/backends/`` check each one against Polars.

The module stays whole (above 400 lines): it is one abstract class, the whole
contract a backend implements, a section per facet; the implementations are
split by facet (``cpu/``, one module each).
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

import polars as pl

from channels.lowlevel import import_lazily
from streamnet._table_chunk import TableChunk
from streamnet._typing import BackendName, HostKind, KernelKind, Tier
from streamnet.plans._compiled import NO_PARAMS, CompiledPlan, PlanParams
from streamnet.plans._plan import Plan

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    import pyarrow as pa

    from streamnet._schema import SchemaInfo
    from streamnet.backends._aggregation import AggregationKernel
    from streamnet.backends._files import ChunkReader, ChunkWriter
    from streamnet.backends._join_spec import JoinBuild, JoinSide, JoinSpec
    from streamnet.backends._sort_order import SortOrder
    from streamnet.backends._types import Packed
    from streamnet.io import CsvFormat, CsvPart, FilePath, ScanTask
    from streamnet.memory._spill import SpillDirectory
    from streamnet.plans._aggregation import Agg
else:  # imported on first use: `import streamnet` stays light
    pa = import_lazily("pyarrow")

__all__ = ["Backend", "host_kind", "is_pandas_frame"]


class Backend(ABC):
    """Where tables live and kernels run: all that depends on it, behind one interface.

    A `Context` owns one (``ctx.backend``, made from ``Context(backend=...)``) and
    closes it when it closes; `TableChunk` is the handle of a table it holds.
    Methods take and return TableChunks. The methods that touch data (kernels)
    block and are thread-safe: actors run them in the Context's thread pool,
    ``await ctx.to_thread(ctx.backend.concat, chunks)``. Metadata methods never
    touch data.

    The facets:

    - lifecycle: :meth:`join_probe`, :meth:`close`, :meth:`fingerprint`;
    - the host boundary: ``from_arrow/from_polars/from_pandas/from_host``,
      ``to_arrow/to_polars/to_pandas``, :meth:`empty`;
    - metadata: :meth:`describe`, :meth:`schema_info`;
    - slice and concat: :meth:`slice`, :meth:`concat`, :meth:`project`;
    - the wire: :meth:`pack`, :meth:`unpack`, :meth:`host_buffer`;
    - hash partitioning: :meth:`hash_partition`, :meth:`partition_and_pack`;
    - files: :meth:`parquet_writer`, :meth:`write_parquet`, :meth:`csv_reader`,
      :meth:`csv_writer`, :meth:`ndjson_reader`, :meth:`ndjson_writer`
      (what to read is planned by `streamnet.io`);
    - plans: :meth:`compile`, :meth:`run` (a chain of Polars-expression steps per chunk),
      :meth:`scan` (a Parquet scan task and the steps after it, as one query);
    - aggregation: :meth:`aggregation` (an `AggregationKernel`: partial, merge, finish);
    - distinct: :meth:`distinct`;
    - sorting and range partitioning: :meth:`sort`, :meth:`top_k`, :meth:`merge_sorted`,
      :meth:`sample`, :meth:`range_boundaries`, :meth:`range_partition`;
    - working memory: :meth:`working_memory` (what a kernel takes at its peak, for the
      reservations of a memory budget), its inverse :meth:`largest_input`, and
      :meth:`free_promptly` (allocators that give freed memory back at once);
    - memory tiers: :attr:`tiers`, :meth:`residence`, :meth:`nbytes_in`,
      :meth:`spill`, :meth:`make_available`, :meth:`make_available_cost`,
      :meth:`iter_slices` (a spilled chunk read a part at a time), and
      :meth:`native_view` (what ``chunk.table_view().native()`` gives);
    - joins: :meth:`join_schema`, :meth:`join` (partition-wise, every `JoinSpec` ``how``),
      :meth:`join_build`, :meth:`join_probe`, :meth:`join_flush` (broadcast: the right side built once),
      :meth:`join_fanout` (how many rows one key can match: a grace join's slices).

    The facets still to come, each with the contract tests of its methods: plans
    with the slices of an in-memory table as source or ending in a partial
    aggregation, and the statistics of the memory tiers.

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
    def empty(self, schema: pa.Schema | None = None) -> TableChunk:
        """A chunk of no rows with the canonical form of ``schema`` (no columns if None).

        Raises
        ------
        TypeError
            ``schema`` is not an Arrow schema.
        """

    # ------------------------------------------------------------------ metadata
    @abstractmethod
    def describe(
        self, native: object, *, info: SchemaInfo | None = None
    ) -> tuple[SchemaInfo | None, int, int]:
        """``(schema, rows, bytes)`` of one of the backend's native tables, without
        touching its data; the schema is None where it would cost a conversion (a
        Polars frame on the CPU): `schema_info` works it out when asked. ``info``, the
        table's schema when the caller knows it, saves looking at its types.

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
        self, chunk: TableChunk, keys: Sequence[str], partitions: int, *, seed: int = 0
    ) -> dict[int, TableChunk]:
        """The chunk's rows by partition: a seeded hash of ``keys`` modulo ``partitions``.

        Rows with equal keys (nulls too) land in one partition on every rank of one
        `fingerprint`, and integer (or float) keys hash alike whatever their width.
        Empty partitions are left out; no row is lost. Each piece has the chunk's
        schema. Being the hash modulo ``partitions``, the rows of partition ``p`` of
        ``n`` fall, partitioned again into ``n * m``, into partitions ``p + n * j``
        only: a partition too big to handle splits by a finer modulus.

        ``seed`` picks the hash: 0 is the one every exchange uses; another seed
        gives a hash independent of it, so that rows of one partition spread over
        all partitions again (a grace hash join re-partitions a partition that is
        too big with seed 1, then 2...). Rows with equal keys still meet.

        Raises
        ------
        ColumnNotFoundError
            A key is not a column of the chunk.
        ValueError
            ``keys`` is empty, ``partitions`` is not an int >= 1, or ``seed`` is
            not an int in [0, 2**32).
        SchemaError
            The backend's engine cannot hold a column's type (on the CPU: a type
            Polars does not hold exactly, see `TableChunk.to_polars`).
        """

    @abstractmethod
    def split_by_values(
        self, chunk: TableChunk, columns: Sequence[str]
    ) -> list[tuple[tuple[object, ...], TableChunk]]:
        """The chunk's rows by their values of ``columns``: one ``(values, rows)`` per
        distinct combination (nulls one value), in order of first appearance, the rows in
        their order and without ``columns`` (a hive-partitioned write keeps them in folder
        names). Values are Python scalars (``int``, ``str``, ``datetime.date``, None...).

        Raises
        ------
        ColumnNotFoundError
            A column is not in the chunk; the message lists those there are.
        ValueError
            ``columns`` is empty, or names every column (nothing would be left to write).
        SchemaError
            A column holds nested values (lists, structs), which cannot name a partition.
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

    # ------------------------------------------------------------------ files
    # Reading and writing file formats; what to read (paths, footers, row groups,
    # byte ranges per rank) is planned beforehand by `streamnet.io`, the same for
    # every backend. Parquet is read with a plan (its scan is a plan's source).
    @abstractmethod
    def parquet_writer(
        self, path: FilePath, schema: pa.Schema, *, compression: str
    ) -> ChunkWriter:
        """A writer of one Parquet file at ``path`` (a local path, or an object of a store:
        a `StorePath`; created or replaced) whose chunks all
        have ``schema``; ``compression`` is the codec (``"zstd"``, ``"snappy"``,
        ``"none"``...).

        Raises
        ------
        OSError
            ``path`` cannot be written.
        ValueError
            ``compression`` names no codec (the message names it).
        """

    @abstractmethod
    def write_parquet(
        self,
        chunk: TableChunk,
        path: FilePath,
        *,
        compression: str,
        row_group_rows: int | None = None,
    ) -> None:
        """Write ``chunk`` as the one Parquet file ``path`` (created or replaced), in row
        groups of at most ``row_group_rows`` rows (one when None).

        Raises what :meth:`parquet_writer` and `ChunkWriter.write` raise.
        """

    @abstractmethod
    def csv_reader(self, part: CsvPart, schema: pa.Schema | None, fmt: CsvFormat) -> ChunkReader:
        """A reader of the rows of ``part`` (a whole file, or the rows that start in a byte
        range of it), in chunks of about ``fmt.block_size`` bytes.

        ``schema`` gives the names and types; when None the types are inferred
        from the first block of the whole file (a column with no value there is a
        string column, as in Polars), so that each byte range of a file reads as
        the whole file would. The reader's `ChunkReader.schema` is the file's.
        An empty chunk comes only where the part has no rows.

        Raises
        ------
        FileReadError
            Here or from `ChunkReader.next`, naming the file, and the line and the
            column where they can be told, and the fix: an empty file without
            ``schema``; bytes that are not text in ``fmt.encoding``; a value that is
            not of its column's type; without ``fmt.multiline``, a value holding a
            line break (most often a quote that does not close on its line); with
            it, a quote still open at the end of the part.
        """

    @abstractmethod
    def csv_writer(
        self, path: FilePath, schema: pa.Schema, *, delimiter: str = ",", header: bool = True
    ) -> ChunkWriter:
        """A writer of one CSV file at ``path`` (a local path or a `StorePath`; created or
        replaced) whose chunks all have ``schema``: Polars' CSV, the header once at the top
        (a file of no chunk is the header alone).

        Raises
        ------
        OSError
            ``path`` cannot be written.
        """

    @abstractmethod
    def ndjson_writer(self, path: FilePath, schema: pa.Schema) -> ChunkWriter:
        """A writer of one NDJSON file at ``path`` (one JSON object per line, per row)
        whose chunks all have ``schema``.

        Raises
        ------
        OSError
            ``path`` cannot be written.
        """

    @abstractmethod
    def ndjson_reader(
        self, part: CsvPart, schema: pa.Schema | None, *, block_size: int
    ) -> ChunkReader:
        """A reader of the lines of ``part`` of an NDJSON file (a whole file, or the lines
        that start in a byte range of it), in chunks of about ``block_size`` bytes of
        whole lines.

        ``schema`` gives the names and types (read as Polars reads them); when
        None they are inferred from the first 100 lines of the whole file (as
        Polars infers them), so that each byte range reads as the whole file would.

        Raises
        ------
        FileReadError
            Here or from `ChunkReader.next`, naming the file and the lines: a
            line that is not a JSON object of the schema, or a file with no line to
            infer the types from.
        """

    # ------------------------------------------------------------------ plans
    @abstractmethod
    def compile(self, plan: Plan, input_schema: pa.Schema) -> CompiledPlan:
        """Check ``plan`` against chunks of ``input_schema`` and prepare it to :meth:`run`.

        A plan whose source is a `ParquetScan` is prepared for :meth:`scan`
        instead: ``input_schema`` is then the files' schema (`ParquetFiles.schema`),
        and the source's predicate and columns are checked as steps are.

        Each step is checked against the schema its predecessors give, in order:
        its expressions must be row-wise, the columns it reads must be there, and
        its types must apply. Every error names the actor of the failing step.
        The result's ``output_schema`` is the schema of every chunk the plan
        makes, shared by equal schemas; when a step's types depend on the data
        (a Python function), ``certain`` is False and each output chunk's schema
        is worked out from its data.

        A plan ending in a `PartialAggregate` makes, per chunk, the partials of
        the kernel `aggregation` gives for the schema before that step (of its
        ``partial_schema``; a chunk without rows makes no partial rows).

        Raises
        ------
        TypeError
            ``plan`` is not a `Plan` or ``input_schema`` not an Arrow schema.
        ValueError
            The plan has a `Slices` source (run by its actor, not compiled), or ends
            in a `PartialAggregate` whose kernel is not `decomposable`.
        ExpressionError
            A step's expression is not row-wise.
        ColumnNotFoundError
            A step reads a column its input does not have (for an ordered
            `PartialAggregate`, the stream-order columns a `Stamp` adds); the
            message lists the columns there are.
        SchemaError
            The input has a column of a type the backend's engine does not hold
            exactly, not named by a leading `Cast` step (see `TableChunk.to_polars`).
        polars.exceptions.PolarsError
            A step's types do not apply (``filter`` of a non-boolean, arithmetic on
            strings): Polars' own error, its message prefixed with the step's actor.
        """

    @abstractmethod
    def run(
        self, compiled: CompiledPlan, chunk: TableChunk, *, params: PlanParams = NO_PARAMS
    ) -> TableChunk:
        """``chunk`` through the compiled plan's steps, as one chunk.

        ``params`` gives the values of a `Stamp` step. An error while running is
        raised as the engine raised it, with a note naming the actor of the step
        that fails (found, when the plan has several steps, by running the chunk
        through them one at a time).

        Raises
        ------
        TypeError
            ``compiled`` was compiled by another backend, or ``chunk`` is not a
            chunk of this backend.
        SchemaError
            ``chunk`` does not have the schema the plan was compiled for.
        """

    @abstractmethod
    def scan(
        self, compiled: CompiledPlan, task: ScanTask, *, params: PlanParams = NO_PARAMS
    ) -> TableChunk:
        """The rows of one scan task through a compiled `ParquetScan` plan, as one chunk.

        The scan, the source's predicate and projection and the steps run as
        one query (the predicate and the columns the steps read are pushed into
        the reader). A task with no row group gives an empty chunk of the
        plan's output schema. A failure to read is a `FileReadError` naming the
        file; a step's failure is raised as :meth:`run` raises it.

        Raises
        ------
        TypeError
            ``compiled`` was compiled by another backend, or its plan has no
            `ParquetScan` source.
        FileReadError
            The task's file cannot be read.
        """

    # ------------------------------------------------------------------ aggregation
    @abstractmethod
    def aggregation(
        self,
        keys: Sequence[str],
        aggs: Sequence[Agg],
        input_schema: pa.Schema,
        *,
        ordered: bool,
        actor: str = "",
    ) -> AggregationKernel:
        """The kernel of ``aggs`` by ``keys`` over chunks of ``input_schema``
        (``keys == ()``: the global aggregation, one row).

        ``ordered`` says whether the chunks will carry the stream-order columns
        ``__rank`` and ``__seq`` (needed by ``first`` and ``last``). The result
        types are Polars' own for ``input_schema``; the same arguments give the
        same `AggregationKernel.partial_schema` on every rank of one `fingerprint`.
        ``actor``, if given, is named in the errors.

        Raises
        ------
        ColumnNotFoundError
            A key or aggregated column is not in ``input_schema``.
        TypeError
            An aggregation does not apply to its column's type (the ``sum`` of a
            string), or cannot be computed from partials (the ``mean`` of a Date);
            the message names the actor, the aggregation, the column and its type.
        ValueError
            ``aggs`` is empty or has an output name twice or equal to a key, or
            ``first``/``last`` without ``ordered``.
        """

    # ------------------------------------------------------------------ distinct
    @abstractmethod
    def distinct(
        self,
        chunk: TableChunk,
        subset: Sequence[str] | None,
        keep: Literal["any", "first", "last"],
        *,
        order: Sequence[str] = (),
    ) -> TableChunk:
        """The chunk without duplicate rows, judged on ``subset`` (when None or empty:
        every column but the ``order`` columns), as Polars' ``unique`` drops them.

        ``keep="first"`` (``"last"``) keeps the first (last) of each set of
        duplicates, in the order of the ``order`` columns (the stream order
        ``__rank``, ``__seq``) then of the rows, and returns the rows in that
        order; ``"any"`` keeps any one, in any order. The ``order`` columns stay,
        so that the result can be deduplicated again with others.

        Raises
        ------
        ColumnNotFoundError
            A ``subset`` or ``order`` column is not in the chunk.
        ValueError
            ``keep`` is none of the three.
        """

    # ------------------------------------------------------------------ sorting
    @abstractmethod
    def sort(self, chunk: TableChunk, order: SortOrder) -> TableChunk:
        """The chunk's rows in ``order``, as Polars' stable sort puts them (equal keys keep
        their row order).

        Raises
        ------
        ColumnNotFoundError
            A key is not a column of the chunk.
        """

    @abstractmethod
    def top_k(self, chunk: TableChunk, order: SortOrder, k: int) -> TableChunk:
        """The first ``k`` rows of :meth:`sort` (all rows if there are fewer).

        Raises
        ------
        ColumnNotFoundError
            A key is not a column of the chunk.
        ValueError
            ``k`` is not an int >= 0.
        """

    @abstractmethod
    def merge_sorted(
        self,
        runs: Sequence[TableChunk],
        order: SortOrder,
        *,
        rows: int,
        slice_rows: int | None = None,
    ) -> Iterator[TableChunk]:
        """The rows of ``runs``, each already in ``order``, merged into one stream in
        ``order``: chunks of ``rows`` rows (the last one fewer), made one at a time as
        the iterator is advanced. Ties keep no particular order.

        The runs are never loaded whole: each is read ``slice_rows`` rows at a time
        (``rows`` when None) with :meth:`iter_slices`, so a spilled run stays on its
        tier and is read a part at a time. Memory holds about ``2 * slice_rows`` rows
        of every run at once, and their sort. A run may be spilled or made available
        while the merge goes on. No runs, or runs without rows, give no chunk.
        Arguments are checked when called, before the first chunk is asked for.

        Raises
        ------
        ColumnNotFoundError
            A key is not a column of a run.
        SchemaError
            The runs do not share one schema.
        ValueError
            ``rows`` or ``slice_rows`` is not an int >= 1.
        SpillError
            While iterating: a spilled run's file is gone.
        """

    @abstractmethod
    def sample(self, chunk: TableChunk, columns: Sequence[str], n: int, *, seed: int) -> TableChunk:
        """``min(n, rows)`` rows of ``columns`` drawn at random without replacement,
        the same for the same ``seed``.

        Raises
        ------
        ColumnNotFoundError
            A column is not in the chunk.
        ValueError
            ``n`` is not an int >= 0.
        """

    @abstractmethod
    def range_boundaries(self, samples: TableChunk, order: SortOrder, parts: int) -> TableChunk:
        """``parts - 1`` rows of the order's keys that cut the sorted ``samples`` into
        ``parts`` ranges of about equal size; no rows if ``parts == 1`` or there are
        no samples.

        Raises
        ------
        ColumnNotFoundError
            A key is not a column of ``samples``.
        ValueError
            ``parts`` is not an int >= 1.
        """

    @abstractmethod
    def range_partition(
        self, chunk: TableChunk, boundaries: TableChunk, order: SortOrder
    ) -> dict[int, TableChunk]:
        """The chunk's rows by range: partition ``i`` holds the rows that come after ``i``
        of the ``boundaries`` rows under exactly ``order`` (a row equal to a boundary
        comes after it). Empty partitions are left out; no row is lost.

        Raises
        ------
        ColumnNotFoundError
            A key is not a column of the chunk or of ``boundaries``.
        """

    # ------------------------------------------------------------------ working memory
    WORKING_MEMORY: ClassVar[dict[KernelKind, float]] = {
        "scan": 2.0, "scan_aggregate": 4.0, "aggregate": 4.0, "finish": 4.0,
        "hash_partition": 4.0, "range_partition": 4.0, "concat": 2.0, "sort": 4.0,
        "merge": 8.0, "join": 4.0, "write": 3.0,
    }  # fmt: skip
    """Per kind of kernel, the bytes it has in use at its peak per byte of its input
    (input and result included): what `working_memory` multiplies by. A backend sets
    the factors measured on it (``benchmarks/kernel_memory.py`` measures them); these
    are cautious ones for a backend that has not."""

    def working_memory(self, kind: KernelKind, nbytes: int) -> int:
        """The bytes a kernel of ``kind`` has in use at its peak for ``nbytes`` of input
        (as `TableChunk.nbytes` counts them): what an operator under a memory budget
        reserves for it, the input it holds included.

        The input of each kind: ``"scan"`` and ``"scan_aggregate"``, the bytes a Parquet
        scan task decodes (`ScanTask.decoded`; the encoded bytes it reads come on top),
        the second for a plan that ends in a partial aggregation; ``"merge"``, the
        slices of the runs a merge step holds; the others, the chunks the kernel takes
        (``"finish"``: an aggregation's partials; ``"write"``: a chunk written to a file).

        Raises
        ------
        ValueError
            ``kind`` is not a `KernelKind`, or ``nbytes`` is negative.
        """
        factor = self.WORKING_MEMORY.get(kind)
        if factor is None:
            raise ValueError(
                f"working_memory: `kind` must be one of {sorted(self.WORKING_MEMORY)}; got {kind!r}"
            )
        if type(nbytes) is not int or nbytes < 0:
            raise ValueError(f"working_memory: `nbytes` must be an int >= 0, got {nbytes!r}")
        return int(factor * nbytes)

    def free_promptly(self) -> None:
        """Make the allocators of the backend's kernels give freed memory back to the
        operating system at once, so that what the process holds follows what a memory
        budget counts (an allocator that keeps freed pages for reuse holds memory no
        budget sees). A `Context` with a memory limit calls it; process-wide and
        idempotent. The base does nothing."""
        return None

    def largest_input(self, kind: KernelKind, nbytes: int) -> int:
        """The most bytes of input a kernel of ``kind`` can take within ``nbytes`` of working
        memory (the inverse of `working_memory`; at least 1): how an operator sizes what
        it works on at once to a share of its budget.

        Raises
        ------
        ValueError
            As `working_memory`.
        """
        per_mib = self.working_memory(kind, 1 << 20) / (1 << 20)
        if type(nbytes) is not int or nbytes < 0:
            raise ValueError(f"largest_input: `nbytes` must be an int >= 0, got {nbytes!r}")
        return max(1, int(nbytes / max(per_mib, 1e-9)))

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
    def iter_slices(self, chunk: TableChunk, rows: int) -> Iterator[TableChunk]:
        """The chunk's rows in order, as chunks of ``rows`` rows (the last one fewer), each
        read when the iterator is advanced.

        The chunk stays in its tier: a slice of a chunk in ``tiers[0]`` shares its
        data; of a spilled one, only the part of the slower tier that holds it is
        read (on the CPU, the record batches of its file, of about 256 KiB each),
        never the whole. Each slice is read from where the chunk is then, so the
        chunk may be spilled or made available between two slices.

        Raises
        ------
        ValueError
            ``rows`` is not an int >= 1.
        SpillError
            While iterating: the chunk's file is gone (its run failed, or its
            Context closed).
        """

    @abstractmethod
    def make_available_cost(self, chunk: TableChunk) -> int:
        """Bytes ``tiers[0]`` must find to make the chunk available (0 if it is)."""

    @abstractmethod
    def native_view(self, chunk: TableChunk) -> object:
        """The chunk's data as the backend's own table type, made available first: what
        ``chunk.table_view().native()`` gives (a ``pyarrow.Table`` on the CPU)."""

    # ------------------------------------------------------------------ joins
    def key_values(self, chunks: Sequence[TableChunk], column: str) -> pl.Series:
        """The distinct non-null values of ``column`` in ``chunks``, on the host: a join's
        keys that the other side's sources filter by (`streamnet.KeySet`).

        Raises
        ------
        ColumnNotFoundError
            ``column`` is not a column of a chunk.
        """
        parts = [self.to_polars(self.project(chunk, [column])).to_series() for chunk in chunks]
        if not parts:
            return pl.Series(column, [])
        return pl.concat(parts).drop_nulls().unique()

    @abstractmethod
    def join_schema(self, left: pa.Schema, right: pa.Schema, spec: JoinSpec) -> pa.Schema:
        """The schema of :meth:`join`'s result for sides of schemas ``left`` and ``right``:
        Polars' own for the join of empty frames of these schemas.

        Raises
        ------
        ColumnNotFoundError
            A key is not a column of its side.
        SchemaError
            Polars cannot join the key types (a string key against an integer one).
        """

    @abstractmethod
    def join(self, left: TableChunk, right: TableChunk, spec: JoinSpec) -> TableChunk:
        """The rows of ``left`` joined with those of ``right`` as Polars' ``join`` gives them,
        for every ``spec.how`` (null keys never match), in a schema of :meth:`join_schema`.

        A partition-wise join: with both sides hash-partitioned on their keys,
        the joins of the partitions together are the join of the whole.

        Raises
        ------
        ColumnNotFoundError
            A key is not a column of its side.
        SchemaError
            Polars cannot join the key types.
        """

    @abstractmethod
    def join_fanout(self, right: TableChunk, keys: Sequence[str]) -> int:
        """The most rows of ``right`` one row of the other side can match: the largest
        number of rows sharing one value of ``keys`` (rows with a null key left out,
        since they match nothing); 0 when no row has a full key.

        A grace join sizes the slices it joins with a block of the right side by it,
        so that a key repeated on many rows cannot make one result too big.

        Raises
        ------
        ColumnNotFoundError
            A key is not a column of ``right``.
        """

    @abstractmethod
    def join_build(
        self, built: TableChunk, spec: JoinSpec, *, side: JoinSide = "right"
    ) -> JoinBuild:
        """One whole side of a broadcast join, prepared once for :meth:`join_probe` to
        join the other side's chunks against it.

        The right side (``side="right"``) for a join that keeps no unmatched right
        row: ``spec.how`` is inner, left, semi or anti. The left side only for an
        inner join, whose rows either side can stream: a small left side read whole
        before a large right one.

        Raises
        ------
        ColumnNotFoundError
            A key of ``side`` is not a column of ``built``.
        ValueError
            ``spec.how`` keeps unmatched rows of the built side, or is not inner for a
            left build.
        """

    @abstractmethod
    def join_probe(self, build: JoinBuild, chunk: TableChunk) -> TableChunk | None:
        """The join of a chunk of the side streaming by with the build side, or None
        while the backend holds it back to join it with later ones.

        Every row given is joined once, by this call or a later one, or by
        :meth:`join_flush`; together the results are the join of the whole streamed
        side with the built one, its rows in the order they were given, columns as
        :meth:`join` gives them. The CPU backend joins the streamed rows in batches of
        at least twice the built side's rows (each join hashes the built side: so the
        hashing costs no more than the probing), so a small built side still joins
        chunk by chunk.

        Raises
        ------
        ColumnNotFoundError
            A key of the streamed side is not a column of ``chunk``.
        SchemaError
            Polars cannot join the key types.
        """

    @abstractmethod
    def join_flush(self, build: JoinBuild) -> TableChunk | None:
        """The join of the rows :meth:`join_probe` held back; None if it holds none.

        Raises
        ------
        SchemaError
            Polars cannot join the key types.
        """

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


def host_kind(value: object) -> HostKind | None:
    """Which host table ``value`` is: ``"arrow"`` (a table or record batch), ``"polars"``
    (a DataFrame; a LazyFrame is not one) or ``"pandas"`` (a DataFrame); None for anything else."""
    if isinstance(value, pa.Table | pa.RecordBatch):
        return "arrow"
    if isinstance(value, pl.DataFrame):
        return "polars"
    if is_pandas_frame(value):  # pandas is optional: not imported to check
        return "pandas"
    return None


def is_pandas_frame(value: object) -> bool:
    """Whether ``value`` is a pandas DataFrame (pandas is optional: never imported for it)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)
