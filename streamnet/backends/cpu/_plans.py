"""The CPU backend's plans: each chunk through one Polars LazyFrame of the plan's steps.

A plan is checked once per input schema (`compile`): step by step, against the
schema Polars resolves for the steps before it, so an error names the actor of
the step that fails. Each chunk then runs as one query (`run`), built anew per
chunk (building costs microseconds; Polars cannot reuse a collected query).

The engine: Polars' in-memory engine, for plans of row-wise steps over chunks
already in memory (its fixed cost per chunk is about half the streaming
engine's). A plan of one step runs without Polars' optimisations, as the eager
``DataFrame`` method would (nothing to optimise in one step, and they cost
per chunk); a plan of several runs with them (a filter pushed before a
projection, common expressions computed once).

A plan that ends in a `PartialAggregate` appends the aggregation kernel's
partial expressions to the query (``group_by(keys).agg(partials)``, or a
``select(partials)`` for no keys) and runs on the streaming engine, whose
group-by is several times faster than the in-memory one on large chunks.

A plan whose source is a `ParquetScan` runs one query per scan task (`scan`):
``pl.scan_parquet(path).slice(offset, rows)`` (a slice aligned on row groups
decodes only those), the source's predicate and columns, then the steps, on
Polars' streaming engine, with its optimisations: the predicates and the
columns the steps read are pushed into the reader, which decodes the predicate
columns first and the rest only for the rows that pass. A scan without steps
reads as Polars' default engine does. An object of a store (`StorePath`) is
read by pyarrow through its filesystem instead, the task's row groups and the
columns the query reads, as the source of the same query (Polars' predicates
run on what it read, so their semantics are Polars').
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
from polars.io.plugins import register_io_source

from streamnet._errors import ColumnNotFoundError, FileReadError, SchemaError
from streamnet._schema import (
    describe_schema,
    empty_table,
    frame_of_arrow,
    info_of_arrow,
    info_of_frame,
)
from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends.cpu._aggregate import CpuAggregationKernel
from streamnet.backends.cpu._aggregation_steps import ORDER
from streamnet.io._parquet_meta import ScanTask, file_version
from streamnet.io._stores import FilePath, StorePath
from streamnet.plans._check import calls_python, check_step, step_label
from streamnet.plans._compiled import NO_PARAMS, CompiledPlan, PlanParams
from streamnet.plans._plan import (
    Cast,
    Filter,
    ParquetScan,
    PartialAggregate,
    Plan,
    Rename,
    Select,
    Stamp,
    Step,
    WithColumns,
)

__all__ = ["CpuPlans"]

_STORE_BATCH_ROWS = 65_536
"""Rows decoded at once when a task reads some rows of a row group of an object (pyarrow)."""

_UNSURE = (pl.Null, pl.Object, pl.Unknown)


def _sure(dtype: pl.DataType) -> bool:
    """Whether ``dtype`` (and every type nested in it) cannot depend on the data."""
    if isinstance(dtype, _UNSURE) or dtype in _UNSURE:
        return False
    if isinstance(dtype, pl.List | pl.Array):
        return _sure(dtype.inner)  # type: ignore[arg-type]
    if isinstance(dtype, pl.Struct):
        return all(_sure(field.dtype) for field in dtype.fields)  # type: ignore[arg-type]
    return True


def _lower(
    step: Step,
    frame: pl.LazyFrame,
    params: PlanParams,
    kernel: CpuAggregationKernel | None = None,
    grouping: bool | None = None,
) -> pl.LazyFrame:
    """``step`` applied to ``frame``, lazily; ``kernel`` lowers a `PartialAggregate`
    (grouping its rows or not as ``grouping`` says, by default as it has learnt)."""
    if isinstance(step, Filter):
        return frame.filter(step.predicate)
    if isinstance(step, Select):
        return frame.select(step.exprs)
    if isinstance(step, WithColumns):
        return frame.with_columns(step.exprs)
    if isinstance(step, Rename):
        return frame.rename(dict(step.mapping))
    if isinstance(step, Cast):
        return frame.cast(dict(step.types), strict=step.strict)  # type: ignore[arg-type]
    if isinstance(step, Stamp):
        rank, sequence = step.columns
        return frame.with_columns(
            pl.lit(params.rank, pl.Int64).alias(rank),
            pl.lit(params.sequence, pl.Int64).alias(sequence),
        )
    if isinstance(step, PartialAggregate):
        assert kernel is not None  # made by compile
        return kernel.partials_of(frame, grouping=grouping)
    raise TypeError(f"a plan's steps are `Filter`, `Select`...; got {type(step).__name__}")


def _named(exc: pl.exceptions.PolarsError, step: Step) -> pl.exceptions.PolarsError:
    """Polars' error ``exc``, of its own type, with its message prefixed by the step's actor."""
    try:
        return type(exc)(f"{step_label(step)}: {exc}")
    except Exception:  # an error class that takes other arguments: a note instead
        exc.add_note(f"in {step_label(step)}")
        return exc


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CpuCompiledPlan(CompiledPlan):
    """A plan the CPU backend compiled: how a chunk becomes its first frame, and the engine."""

    convert: tuple[str, ...]
    """Columns a leading `Cast` converts from a type Polars does not hold exactly."""
    optimizations: pl.QueryOptFlags
    engine: str = "in-memory"
    """Polars' engine: the streaming one for a plan that scans and has steps, or aggregates."""
    kernel: CpuAggregationKernel | None = None
    """The aggregation kernel of a final `PartialAggregate` step (its partial expressions)."""


SCANS_KEPT = 32
"""How many local files' Polars scans a process keeps (`polars_scan`)."""
_scans: OrderedDict[tuple[str, int, int], pl.LazyFrame] = OrderedDict()
_scans_lock = threading.Lock()


def polars_scan(path: str) -> pl.LazyFrame:
    """Polars' scan of the local Parquet file ``path``, made once per version of the file
    (by its path, modification time and size; the latest `SCANS_KEPT` are kept).

    Polars keeps what it learned of the file (its footer) in the scan: every task of
    every plan that reads the file slices the same one rather than reading the footer
    again (a few milliseconds per task for a file of a few hundred row groups; 0.2-1.5
    ms per plan's compile). A file written again meanwhile gets a scan of its own,
    which reads its new footer."""
    key = file_version(path)
    if key is None:  # gone: Polars' own scan reports it
        return pl.scan_parquet(path, hive_partitioning=False)
    with _scans_lock:
        found = _scans.get(key)
        if found is not None:
            _scans.move_to_end(key)
            return found
        found = _scans[key] = pl.scan_parquet(path, hive_partitioning=False)
        while len(_scans) > SCANS_KEPT:
            _scans.popitem(last=False)
    return found


def _scan_query(source: ParquetScan, task: ScanTask, files: ExitStack) -> pl.LazyFrame:
    """The rows of ``task``, filtered and projected by ``source``.

    A local file is Polars' scan, sliced to the task's rows (a slice aligned on
    row groups decodes only those), and so is an object of a store whose options
    Polars' object-store client takes (`StorePath.polars_options`: S3 by URI).
    Any other object of a store is read by pyarrow through its filesystem
    (``files`` closes it): the task's row groups one at a time, only the columns
    the query reads, each filtered by the predicates pushed into the scan with
    Polars' semantics.
    """
    if isinstance(task.path, StorePath) and task.path.polars_options is not None:
        # Polars' own object-store reader: range requests for the row groups of the slice,
        # several in flight, and the predicate columns decoded first.
        options = dict(task.path.polars_options)
        query = pl.scan_parquet(
            task.path.uri, storage_options=options or None, hive_partitioning=False
        ).slice(task.offset, task.rows)
    elif isinstance(task.path, StorePath):
        query = _store_scan(task.path, task, files)
    else:
        query = polars_scan(str(task.path)).slice(task.offset, task.rows)
    if source.partitioning:
        values = task.partition or (None,) * len(source.partitioning)
        query = query.with_columns(
            pl.lit(value, dtype).alias(name)
            for (name, dtype), value in zip(source.partitioning, values, strict=True)
        )
    if source.predicate is not None:
        query = query.filter(source.predicate)
    if source.columns is not None:
        query = query.select(source.columns)
    return query


def _store_scan(path: StorePath, task: ScanTask, files: ExitStack) -> pl.LazyFrame:
    """The rows of ``task`` (its row groups, or some rows of one) of the object ``path``
    as a Polars scan: its footer is read now, the row groups as the query reads them
    (range requests, several column chunks at once)."""
    import pyarrow.parquet as pq  # loaded on first use, with the first object read

    file = files.enter_context(path.filesystem.open_input_file(path.path))
    parquet = pq.ParquetFile(file, pre_buffer=True)
    empty = frame_of_arrow(empty_table(parquet.schema_arrow))
    metadata = parquet.metadata
    starts = [0]
    for group in range(metadata.num_row_groups):
        starts.append(starts[-1] + metadata.row_group(group).num_rows)

    def tables(with_columns: list[str] | None) -> Iterator[pa.Table]:
        """The task's rows, a row group (or a part of one) at a time."""
        for group in task.row_groups:
            first = max(task.offset, starts[group]) - starts[group]
            last = min(task.offset + task.rows, starts[group + 1]) - starts[group]
            if first == 0 and last == starts[group + 1] - starts[group]:
                yield parquet.read_row_group(group, columns=with_columns)
                continue
            seen = 0  # some rows of the group: decoded a batch at a time, never all of it
            for batch in parquet.iter_batches(
                batch_size=_STORE_BATCH_ROWS, row_groups=[group], columns=with_columns
            ):
                lo, hi = max(first, seen) - seen, min(last, seen + batch.num_rows) - seen
                if lo < hi:
                    yield pa.Table.from_batches([batch.slice(lo, hi - lo)])
                seen += batch.num_rows
                if seen >= last:
                    break

    def read(
        with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:  # fmt: skip
        left = n_rows
        for table in tables(with_columns):
            if left is not None and left <= 0:
                return
            frame = frame_of_arrow(table)
            if predicate is not None:  # Polars' semantics (NaN, nulls), not the reader's
                frame = frame.filter(predicate)
            if left is not None:
                frame = frame.head(left)
                left -= frame.height
            yield frame

    return register_io_source(read, schema=empty.schema)


def _read_error(path: FilePath, exc: BaseException) -> FileReadError:
    return FileReadError(f"cannot read `{path}`: {exc}")


class CpuPlans(Backend):
    """Plans as Polars LazyFrames, one query per chunk on the in-memory engine."""

    def compile(self, plan: Plan, input_schema: pa.Schema) -> CompiledPlan:
        with ExitStack() as files:  # an object of a store, open while its scan is checked
            return self._compile(plan, input_schema, files)

    def _compile(self, plan: Plan, input_schema: pa.Schema, files: ExitStack) -> CompiledPlan:
        if not isinstance(plan, Plan):
            raise TypeError(f"compile: expected a Plan, got {type(plan).__name__}")
        if not isinstance(input_schema, pa.Schema):
            raise TypeError(
                f"compile: `input_schema` must be a pyarrow.Schema, got {type(input_schema).__name__}"
            )
        if plan.source is not None and not isinstance(plan.source, ParquetScan):
            raise ValueError(
                f"compile: the `{self.name}` backend compiles plans of steps, or of a "
                f"ParquetScan and steps; a {type(plan.source).__name__} source (of actor "
                f"`{plan.source.actor}`) is read by its actor; got a plan of actors "
                f"{list(plan.actors())}"
            )
        info = info_of_arrow(input_schema)
        steps = plan.steps
        engine = "in-memory"
        convert: tuple[str, ...] = ()
        if isinstance(plan.source, ParquetScan):
            # The streaming engine pipelines decoding with the steps; a scan alone reads as
            # Polars reads by default.
            engine = "streaming" if steps else "auto"
            path = plan.source.paths[0]
            try:
                query = _scan_query(plan.source, ScanTask(path, (), 0, 0), files)
                schema = query.collect_schema()
            except (pl.exceptions.ComputeError, OSError, pa.ArrowException) as exc:
                raise _read_error(path, exc) from exc
        else:
            convert = tuple(steps[0].types) if steps and isinstance(steps[0], Cast) else ()
            empty = self.to_polars(self.empty(info.arrow), convert=convert)
            query = empty.lazy()
            schema = empty.schema
        certain = True
        kernel: CpuAggregationKernel | None = None
        aggregated: pa.Schema | None = None
        for step in steps:
            check_step(step, schema.names())
            if isinstance(step, PartialAggregate):
                aggregated = self.from_polars(pl.DataFrame(schema=schema)).schema
                kernel = self._partial_kernel(step, aggregated, schema.names())
                engine = "streaming"
            query = _lower(step, query, PlanParams(), kernel)
            try:
                schema = query.collect_schema()
            except pl.exceptions.PolarsError as exc:
                raise _named(exc, step) from exc
            certain = certain and not calls_python(step)
        optimizations = pl.QueryOptFlags.none() if len(steps) <= 1 else pl.QueryOptFlags()
        if plan.source is not None or kernel is not None:
            optimizations = pl.QueryOptFlags()  # pushdown into the reader
        output: pa.Schema | None = None
        if certain and all(_sure(dtype) for dtype in schema.dtypes()):
            try:  # what the engine makes of no rows must be what was resolved
                made = query.collect(engine=engine, optimizations=optimizations)  # type: ignore[call-overload]
            except Exception:  # a step that cannot run on no rows: learn from the data
                made = None
            if made is not None and made.schema == schema:
                output = info_of_frame(made).arrow
        return CpuCompiledPlan(
            plan=plan,
            input_schema=info.arrow,
            output_schema=output,
            certain=output is not None,
            convert=convert,
            optimizations=optimizations,
            engine=engine,
            kernel=kernel,
            aggregate_input_schema=aggregated,
        )

    def _partial_kernel(
        self, step: PartialAggregate, arrow: pa.Schema, names: list[str]
    ) -> CpuAggregationKernel:
        """The kernel whose partial expressions lower ``step``, for an input of ``arrow``."""
        missing = [c for c in ORDER if c not in names] if step.ordered else []
        if missing:
            raise ColumnNotFoundError(
                f"{step_label(step)}: ordered aggregations need the stream-order columns "
                f"{list(ORDER)} (a Stamp step before the PartialAggregate); columns are "
                f"{names}"
            )
        kernel = self.aggregation(
            step.keys, step.aggs, arrow, ordered=step.ordered, actor=step.actor
        )
        if not isinstance(kernel, CpuAggregationKernel) or not kernel.decomposable:
            raise ValueError(
                f"{step_label(step)}: a PartialAggregate step needs aggregations whose partials "
                f"are smaller than the rows; got {[agg.how for agg in step.aggs]}"
            )
        return kernel

    def run(
        self, compiled: CompiledPlan, chunk: TableChunk, *, params: PlanParams = NO_PARAMS
    ) -> TableChunk:
        if not isinstance(compiled, CpuCompiledPlan):
            raise TypeError(
                f"run: expected a plan the `{self.name}` backend compiled, "
                f"got {type(compiled).__name__}"
            )
        if compiled.plan.source is not None:
            raise TypeError(
                f"run: the plan reads its chunks from its source (of actor "
                f"`{compiled.plan.source.actor}`): run it with `scan`"
            )
        chunk = self._own(chunk, "run")
        schema = chunk.schema
        if schema is not compiled.input_schema and not schema.equals(
            compiled.input_schema, check_metadata=False
        ):
            raise SchemaError(
                f"run: the chunk does not have the schema the plan was compiled for, "
                f"{describe_schema(compiled.input_schema)}; got {describe_schema(schema)}"
            )
        frame = chunk.to_polars(convert=compiled.convert)
        steps = compiled.plan.steps
        query = frame.lazy()
        kernel = compiled.kernel
        grouping = kernel is not None and kernel.grouping  # read once: the partials it makes
        for step in steps:
            query = _lower(step, query, params, kernel, grouping)
        try:
            out = query.collect(engine=compiled.engine, optimizations=compiled.optimizations)  # type: ignore[call-overload]
        except Exception as exc:
            failing = (
                steps[0]
                if len(steps) == 1
                else _failing_step(steps, frame, params, compiled.kernel)
            )
            if failing is not None:
                exc.add_note(f"in the {type(failing).__name__} step of {step_label(failing)}")
            raise
        if kernel is not None:
            kernel.learn(frame.height, out.height)
        made = self.from_polars(out, schema=compiled.output_schema)
        return kernel.distinct(made) if kernel is not None and grouping else made

    def scan(
        self, compiled: CompiledPlan, task: ScanTask, *, params: PlanParams = NO_PARAMS
    ) -> TableChunk:
        if not isinstance(compiled, CpuCompiledPlan):
            raise TypeError(
                f"scan: expected a plan the `{self.name}` backend compiled, "
                f"got {type(compiled).__name__}"
            )
        source = compiled.plan.source
        if not isinstance(source, ParquetScan):
            raise TypeError(
                f"scan: expected a plan with a ParquetScan source, got a plan of actors "
                f"{list(compiled.plan.actors())} with source {type(source).__name__}"
            )
        with ExitStack() as files:
            return self._scan(compiled, source, task, params, files)

    def _scan(
        self, compiled: CpuCompiledPlan, source: ParquetScan, task: ScanTask, params: PlanParams,
        files: ExitStack,
    ) -> TableChunk:  # fmt: skip
        steps = compiled.plan.steps
        try:
            query = _scan_query(source, task, files)
        except (OSError, pa.ArrowException) as exc:
            raise _read_error(task.path, exc) from exc
        kernel = compiled.kernel
        grouping = kernel is not None and kernel.grouping  # read once: the partials it makes
        for step in steps:
            query = _lower(step, query, params, kernel, grouping)
        try:
            out = query.collect(engine=compiled.engine, optimizations=compiled.optimizations)  # type: ignore[call-overload]
        except Exception as exc:
            # The error path only: read alone, to tell a file that cannot be read from the
            # scan's predicate or a step that fails, and which step.
            if not steps and source.predicate is None:
                if isinstance(exc, pl.exceptions.ComputeError | OSError | pa.ArrowException):
                    raise _read_error(task.path, exc) from exc
                raise
            bare = dataclasses.replace(source, columns=None, predicate=None)
            try:
                frame = _scan_query(bare, task, files).collect()
            except (pl.exceptions.ComputeError, OSError, pa.ArrowException) as read_exc:
                raise _read_error(task.path, read_exc) from read_exc
            if source.predicate is not None:
                try:
                    frame = frame.filter(source.predicate)
                except Exception as predicate_exc:  # the file reads: its predicate fails
                    predicate_exc.add_note(
                        f"in the predicate the scan of actor `{source.actor}` applies: "
                        f"{source.predicate}"
                    )
                    raise predicate_exc from None
            if source.columns is not None:
                frame = frame.select(source.columns)
            failing = _failing_step(steps, frame, params, compiled.kernel)
            if failing is not None:
                exc.add_note(f"in the {type(failing).__name__} step of {step_label(failing)}")
            raise
        if kernel is not None:  # the rows read: those the steps before let through, at most
            kernel.learn(task.rows, out.height)
        made = self.from_polars(out, schema=compiled.output_schema)
        return kernel.distinct(made) if kernel is not None and grouping else made


def _failing_step(
    steps: tuple[Step, ...],
    frame: pl.DataFrame,
    params: PlanParams,
    kernel: CpuAggregationKernel | None = None,
) -> Step | None:
    """The first of ``steps`` that fails on ``frame`` when run one at a time (None if none does)."""
    for step in steps:
        try:
            frame = _lower(step, frame.lazy(), params, kernel).collect(
                engine="in-memory", optimizations=pl.QueryOptFlags.none()
            )
        except Exception:
            return step
    return None
