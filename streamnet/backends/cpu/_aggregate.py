"""The CPU backend's aggregation kernel: `AggregationSteps` run by Polars on chunks.

The steps themselves (partial, merge and final expressions per ``how``) are in
``_aggregation_steps.py``; this module runs them on the frames of chunks, per
chunk, per group or per row, and checks the chunks it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import polars as pl
import pyarrow as pa

from streamnet._errors import ColumnNotFoundError, SchemaError
from streamnet._schema import describe_schema, schema_differences, unused_name
from streamnet._table_chunk import TableChunk
from streamnet.backends._aggregation import AggregationKernel
from streamnet.backends._base import Backend
from streamnet.backends.cpu._aggregation_steps import ORDER, SPAN, AggregationSteps
from streamnet.backends.cpu._table import cpu_table
from streamnet.plans._aggregation import Agg

__all__ = ["CpuAggregation", "CpuAggregationKernel"]


# ------------------------------------------------------------------ the kernel
_Frame = TypeVar("_Frame", pl.DataFrame, pl.LazyFrame)

_LEARN_ROWS = 10_000
"""A chunk of at least this many rows tells whether grouping chunks pays."""


_LAYOUTS_KEPT = 256
"""Layouts a backend keeps (each a few empty frames), forgotten all at once beyond."""


@dataclass(frozen=True, slots=True)
class _Layout:
    """What a kernel learns of its input schema before any chunk: the same for every
    kernel of the same keys, aggregations, input schema and order (`CpuAggregation`
    keeps them, since a fused partial step and its group-by each make a kernel)."""

    steps: AggregationSteps
    needed: list[str]
    inputs: list[str]
    decomposable: bool
    empty: pl.DataFrame
    output_types: pl.Schema
    output_schema: pa.Schema
    partial_types: pl.Schema
    no_partials: pl.DataFrame
    partial_schema: pa.Schema


class CpuAggregationKernel(AggregationKernel):
    """`AggregationSteps` run by Polars on the frames of chunks.

    Partials carry :data:`SPAN` origins (when an aggregation follows the order),
    so they merge again and again. A keyed kernel groups each chunk into
    partials until chunks prove to have about as many groups as rows; it then
    turns each row into a partial of its own, which costs no grouping.
    """

    def __init__(
        self,
        keys: Sequence[str],
        aggs: Sequence[Agg],
        input_schema: pa.Schema,
        *,
        ordered: bool,
        actor: str,
        backend: Backend,
        own: Callable[[object, str], TableChunk],
        layouts: dict[Hashable, _Layout] | None = None,
    ) -> None:
        self.keys = tuple([keys] if isinstance(keys, str) else keys)
        self.aggs = tuple(aggs)
        self.ordered = bool(ordered)
        self._where = f"actor `{actor}`" if actor else "aggregation"
        self._backend = backend
        self._own = own
        self._check_spec(input_schema)
        asked = (self.keys, self.aggs, input_schema, self.ordered)
        layout = None if layouts is None else layouts.get(asked)
        if layout is None:
            layout = self._layout(input_schema)
            if layouts is not None:
                if len(layouts) >= _LAYOUTS_KEPT:
                    layouts.clear()
                layouts[asked] = layout
        self._steps = layout.steps
        self._needed = layout.needed
        self._inputs = layout.inputs
        self.decomposable = layout.decomposable
        self._empty = layout.empty
        self._output_types = layout.output_types
        self.output_schema = layout.output_schema
        self._partial_types = layout.partial_types
        self._no_partials = layout.no_partials
        self.partial_schema = layout.partial_schema
        self._grouping = True  # turned off once chunks prove to have as many groups as rows

    def _layout(self, input_schema: pa.Schema) -> _Layout:
        """What the steps make of no rows of ``input_schema``: Polars runs each on an
        empty frame, which also refuses an aggregation the column's type does not take."""
        backend = self._backend
        empty = backend.to_polars(backend.empty(input_schema))
        steps = AggregationSteps(self.aggs, empty.schema)
        keys_ = list(self.keys)
        needed = (*keys_, *[c for c in steps.columns if c not in keys_])
        inputs = (*needed, *(ORDER if steps.ordered else ()))
        decomposable = not keys_ or steps.keyed
        empty = empty.select(needed)
        steps.check_types(empty, self._where)
        lazy = empty.lazy()
        wholes = lazy.group_by(keys_).agg(steps.wholes()) if keys_ else lazy.select(steps.wholes())
        whole = wholes.collect(engine="in-memory")
        rows = lazy.with_columns(pl.lit(0, pl.Int64).alias(c) for c in ORDER).select(inputs)
        if not decomposable:
            partials = rows
        elif keys_:
            partials = rows.group_by(keys_).agg(steps.partials(SPAN))
        else:
            partials = rows.select(steps.partials(SPAN)).head(0)
        no_partials = partials.head(0).collect(engine="in-memory")
        return _Layout(
            steps=steps,
            needed=list(needed),
            inputs=list(inputs),
            decomposable=decomposable,
            empty=empty,
            output_types=whole.schema,
            output_schema=backend.from_polars(whole).schema,
            partial_types=no_partials.schema,
            no_partials=no_partials,
            partial_schema=backend.from_polars(no_partials).schema,
        )

    def _check_spec(self, input_schema: pa.Schema) -> None:
        where = self._where
        if not isinstance(input_schema, pa.Schema):
            raise TypeError(
                f"{where}: the input schema must be a pyarrow.Schema, got {type(input_schema).__name__}"
            )
        if not self.aggs or not all(isinstance(agg, Agg) for agg in self.aggs):
            raise ValueError(f"{where}: give at least one Agg; got {list(self.aggs)}")
        names = [*self.keys, *[agg.output for agg in self.aggs]]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(
                f"{where}: output names {twice} repeat or are keys; name the aggregations with "
                f"Agg(name=...); keys are {list(self.keys)}"
            )
        read = [*self.keys, *[agg.column for agg in self.aggs if agg.column is not None]]
        missing = list(dict.fromkeys(c for c in read if c not in input_schema.names))
        if missing:
            listed = ", ".join(f"`{c}`" for c in missing)
            raise ColumnNotFoundError(
                f"{where}: column {listed} not found; columns are {input_schema.names}; "
                f"got keys {list(self.keys)}"
            )
        if not self.ordered and any(agg.follows_order for agg in self.aggs):
            hows = sorted({agg.how for agg in self.aggs if agg.follows_order})
            raise ValueError(
                f"{where}: aggregations {hows} follow the stream's order: give chunks with the "
                f"order columns {list(ORDER)} and ordered=True; got ordered=False"
            )

    @property
    def grouping(self) -> bool:
        """Whether keyed partials group their rows now (see `learn`): partials grouped
        hold each key once (`distinct`)."""
        return bool(self.keys) and self._grouping

    def partials_of(self, rows: pl.LazyFrame, *, grouping: bool | None = None) -> pl.LazyFrame:
        """``rows`` (of the input schema) turned into partials, lazily: the plan form of `partial`.

        What a `PartialAggregate` step appends to a plan's query; the frame it
        makes is of `partial_schema`. A frame without rows gives no partial rows.
        ``grouping``: whether keyed partials group their rows (`grouping` read once
        by the caller, which marks the partials `distinct` if so); by default, as
        the kernel has learnt.
        """
        steps, keys = self._steps, list(self.keys)
        if grouping is None:
            grouping = self._grouping
        if keys and not grouping:  # as many groups as rows (`learn`)
            return self._rows_as_partials(rows)
        if keys:
            return rows.group_by(keys).agg(steps.partials(SPAN))
        # One row of partials, only when there are rows: an empty chunk adds nothing.
        seen = unused_name("__rows", self._inputs)
        partials = rows.select(*steps.partials(SPAN), pl.len().alias(seen))
        return partials.filter(pl.col(seen) > 0).drop(seen)

    # ------------------------------------------------------------------ frames in and out
    def _rows(self, chunk: TableChunk, operation: str) -> pl.DataFrame:
        frame = self._own(chunk, operation).to_polars()
        missing = [c for c in self._inputs if c not in frame.columns]
        if missing:
            listed = ", ".join(f"`{c}`" for c in missing)
            raise ColumnNotFoundError(
                f"{self._where}: {operation}: column {listed} not found in the chunk; "
                f"columns are {frame.columns}"
            )
        # Only ``len`` and no keys reads no column: the frame keeps its height, not a selection of none.
        return frame.select(self._inputs) if self._inputs else frame

    def _partials(self, chunk: TableChunk, operation: str) -> pl.DataFrame:
        frame = self._own(chunk, operation).to_polars()
        if frame.schema != self._partial_types:
            raise SchemaError(
                f"{self._where}: {operation}: the chunk is not of the kernel's partial schema "
                f"{describe_schema(self.partial_schema)}: "
                f"{'; '.join(schema_differences(self.partial_schema, chunk.schema, of='partials'))}"
                f"; got {describe_schema(chunk.schema)}"
            )
        return frame

    # ------------------------------------------------------------------ the steps
    def partial(self, chunk: TableChunk) -> TableChunk:
        frame = self._rows(chunk, "partial")
        steps, keys = self._steps, list(self.keys)
        if not self.decomposable:
            out = frame
        elif frame.height == 0:
            out = self._no_partials
        elif not keys:
            out = frame.select(steps.partials(SPAN))
        elif self._grouping:
            query = frame.lazy().group_by(keys).agg(steps.partials(SPAN))
            out = query.collect(engine=_engine(frame.height))
            self.learn(frame.height, out.height)
            return self.distinct(self._backend.from_polars(out))
        else:
            out = self._rows_as_partials(frame)
        return self._backend.from_polars(out)

    def distinct(self, partials: TableChunk) -> TableChunk:
        """``partials``, marked as grouped by the kernel's keys: each key once, so that
        finishing them needs no grouping where no other partials share their keys
        (`finish_pieces`). Returns them."""
        cpu_table(partials, self._backend).distinct_by = self.keys
        return partials

    def _distinct(self, partials: TableChunk) -> bool:
        return bool(self.keys) and cpu_table(partials, self._backend).distinct_by == self.keys

    def _rows_as_partials(self, rows: _Frame) -> _Frame:
        """Each row its own partial (about as many keys as rows: `learn`), of the grouped
        types (a sum of Int8 values is an Int64 partial)."""
        partials = rows.select(*self.keys, *self._steps.rows(SPAN))
        return partials.cast(dict(self._partial_types))  # type: ignore[arg-type]

    def learn(self, rows: int, partials: int) -> None:
        """``rows`` gave ``partials`` partial rows (grouped, by `partial` or a plan's
        `partials_of`): where that is more than half of them, grouping does not shrink
        chunks (about as many keys as rows), and from now on partials are the rows as
        they are, which the merge groups once. A plan that reads 60M rows over 20M keys
        spent more time grouping them in its scan than the merge spent grouping them."""
        if self._grouping and rows >= _LEARN_ROWS and partials > rows // 2:
            self._grouping = False

    def merge(self, chunks: Sequence[TableChunk]) -> TableChunk:
        if not chunks:
            raise ValueError(f"{self._where}: merge: no partials to merge; got an empty sequence")
        frames = [self._partials(chunk, "merge") for chunk in chunks]
        whole = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
        if not self.decomposable:
            return self._backend.from_polars(whole)
        if whole.height == 0:  # a merged row of nothing would carry no origin
            return self._backend.from_polars(self._no_partials)
        merged = self._merged(whole.lazy()).collect(engine=_engine(whole.height))
        return self._backend.from_polars(merged.cast(dict(self._partial_types)))  # type: ignore[arg-type]

    def _merged(self, partials: pl.LazyFrame) -> pl.LazyFrame:
        steps, keys = self._steps, list(self.keys)
        partials = partials.with_columns(steps.windows(keys))
        if keys:
            return partials.group_by(keys).agg(steps.merges(SPAN))
        return partials.select(steps.merges(SPAN))

    def finish(self, partials: TableChunk) -> TableChunk:
        return self._backend.from_polars(self._finished(self._partials(partials, "finish")))

    def finish_pieces(self, pieces: Sequence[TableChunk]) -> TableChunk:
        if not pieces:
            raise ValueError(f"{self._where}: finish: no partials to finish; got an empty sequence")
        frames = [self._partials(piece, "finish") for piece in pieces]
        distinct = [self.decomposable and self._distinct(piece) for piece in pieces]
        full = [i for i, frame in enumerate(frames) if frame.height]
        if len(full) == 1 and distinct[full[0]]:  # one grouping's partials: each key once
            return self._backend.from_polars(self._finished_distinct(frames[full[0]]))
        apart = _clustered(frames, self.keys)
        if apart is None:
            whole = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
            return self._backend.from_polars(self._finished(whole))
        alone, shared = apart
        outs = [
            self._finished_distinct(frame) if distinct[i] else self._finished(frame)
            for i, frame in alone
        ]
        if shared.height:
            outs.append(self._finished(shared))
        return self._backend.from_polars(pl.concat(outs, how="vertical"))

    def _finished_distinct(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The result of partials that hold each key once (`distinct`): merging a group of
        one partial leaves it as it is, so the final step reads them as they are."""
        steps, keys = self._steps, list(self.keys)
        out = frame.select(*keys, *steps.finals())
        return out.cast(dict(self._output_types))  # type: ignore[arg-type]

    def _finished(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The result of the partials in ``frame`` (`finish`)."""
        if not self.decomposable:
            return self._aggregated(frame)
        steps, keys = self._steps, list(self.keys)
        if keys:
            query = self._merged(frame.lazy()).select(*keys, *steps.finals())
            out = query.collect(engine=_engine(frame.height))
        elif frame.height == 0:  # Polars' answer for an empty frame
            out = self._empty.select(steps.wholes())
        else:
            merged = frame if frame.height == 1 else self._merged(frame.lazy()).collect()
            out = merged.select(steps.finals())
        # Polars' own result types for the input schema, where merging partials gave
        # another width (a sum of counts...).
        return out.cast(dict(self._output_types))  # type: ignore[arg-type]

    def aggregate_rows(self, chunk: TableChunk) -> TableChunk:
        return self._backend.from_polars(self._aggregated(self._rows(chunk, "aggregate_rows")))

    def _aggregated(self, frame: pl.DataFrame) -> pl.DataFrame:
        steps, keys = self._steps, list(self.keys)
        if steps.ordered:
            frame = frame.sort(list(ORDER), maintain_order=True)
        if keys:
            query = frame.lazy().group_by(keys).agg(steps.wholes())
            out = query.collect(engine=_engine(frame.height))
        else:
            out = frame.select(steps.wholes())
        return out.cast(dict(self._output_types))  # type: ignore[arg-type]


CLUSTERED_SHARE = 0.25
"""`finish_pieces` finishes pieces apart when their ranges leave at least this share of
their rows to one piece alone (else the filtering would spare too little)."""


def _clustered(
    frames: Sequence[pl.DataFrame], keys: Sequence[str]
) -> tuple[list[tuple[int, pl.DataFrame]], pl.DataFrame] | None:
    """Pieces of partials split into the rows each holds alone (keys outside every other
    piece's range: per piece, its index in ``frames`` and those rows) and the rest, all
    together; None where that spares little (one piece, several keys, a key type other
    than an integer or temporal one, or ranges that overlap too much: see
    `CLUSTERED_SHARE`)."""
    indices = [i for i, frame in enumerate(frames) if frame.height]
    full = [frames[i] for i in indices]
    if len(full) < 2 or len(keys) != 1:
        return None
    key = keys[0]
    dtype = full[0].schema[key]
    if not (dtype.is_integer() or dtype.is_temporal()):
        return None
    column = pl.col(key).to_physical()  # integers: order and equality as the key's
    ranges: dict[int, tuple[int, int]] = {}  # the pieces with a key that is not null
    for i, frame in enumerate(full):
        low, high = frame.select(column.min().alias("low"), column.max().alias("high")).row(0)
        if low is not None:
            ranges[i] = (int(low), int(high))
    ranged = sorted(ranges, key=lambda i: ranges[i])
    # A key of piece i lies in no other piece's range when it is above the highest key
    # of the pieces before it (by lowest key) and below the lowest key of those after.
    above: dict[int, int | None] = {}
    below: dict[int, int | None] = {}
    highest: int | None = None
    for i in ranged:
        above[i] = highest
        highest = ranges[i][1] if highest is None else max(highest, ranges[i][1])
    lowest: int | None = None
    for i in reversed(ranged):
        below[i] = lowest
        lowest = ranges[i][0] if lowest is None else min(lowest, ranges[i][0])
    alone_rows = 0.0  # the rows likely alone, taking keys as spread evenly over a range
    for i in ranged:
        low, high = ranges[i]
        before, after = above[i], below[i]
        start = low if before is None else max(low, before + 1)
        stop = high if after is None else min(high, after - 1)
        if stop >= start:
            alone_rows += full[i].height * (stop - start + 1) / (high - low + 1)
    if alone_rows < CLUSTERED_SHARE * sum(frame.height for frame in full):
        return None
    alone: list[tuple[int, pl.DataFrame]] = []
    rest: list[pl.DataFrame] = []
    for i, frame in enumerate(full):
        if i not in ranges:  # null keys only: they group with the other pieces' nulls
            rest.append(frame)
            continue
        inside = column.is_not_null()
        if above[i] is not None:
            inside &= column > above[i]
        if below[i] is not None:
            inside &= column < below[i]
        mine = frame.filter(inside)
        if mine.height:
            alone.append((indices[i], mine))
        if mine.height < frame.height:
            rest.append(frame.filter(~inside))
    if not alone:
        return None
    shared = pl.concat(rest, how="vertical") if rest else full[0].clear()
    return alone, shared


class CpuAggregation(Backend):
    """Aggregation kernels run by Polars."""

    def aggregation(
        self,
        keys: Sequence[str],
        aggs: Sequence[Agg],
        input_schema: pa.Schema,
        *,
        ordered: bool,
        actor: str = "",
    ) -> AggregationKernel:
        layouts = self.__dict__.setdefault("_aggregation_layouts", {})
        return CpuAggregationKernel(
            keys, aggs, input_schema, ordered=ordered, actor=actor, backend=self, own=self._own,
            layouts=layouts,
        )  # fmt: skip


SMALL_GROUP_ROWS = 1 << 16
"""Group-bys of at most this many rows run on Polars' in-memory engine, whose start costs
less: 5,000 rows in 0.30 ms there against 0.58 ms on the streaming engine, 50,000 in
1.6 against 2.7 ms; from 200,000 rows the streaming engine is faster (2.6 against 4.6 ms)."""


def _engine(rows: int) -> Literal["in-memory", "streaming"]:
    """Polars' engine for a group-by of ``rows`` rows (`SMALL_GROUP_ROWS`)."""
    return "in-memory" if rows <= SMALL_GROUP_ROWS else "streaming"
