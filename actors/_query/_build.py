"""A read plan (`PlanNode`), built into library actors wired by channels.

Each node of the plan becomes the actors that compute it on every rank, its
output a stream whose chunks, over all ranks, are the node's rows (in Polars'
order where the node has one: rank, then sequence number): scans become
``read_parquet`` (projection and predicate pushed down), ``read_csv`` and
``read_ndjson`` (the types Polars gives the columns, then a filter), the channel
of a `scan_channel` (its chunks checked, then the projection and predicate), or
in-memory sources that split the rows between ranks; filters, projections and
``with_columns`` plan steps, which the Network fuses; group-bys a projection,
``groupby_agg`` and the expressions over its aggregates; joins ``join`` (which
broadcasts or shuffles from the sizes it sees; on several ranks an inner join is
built on the side guessed smaller, `RowEstimates`); sorts ``sort`` or ``top_k``;
``unique`` ``distinct``; concatenations ``concat``; a cached subplan is built
once and fanned out, but for a large scan whose consumers meet again at a join,
which is read again for each (`_met_at_a_join`).

What does not distribute runs on rank 0 through Polars (`on_rank_zero`): a slice
of the whole stream, a stable sort, a row index; and when a node cannot be run as
actors at all (an expression or node the translator does not know), the whole
query above it, with the subplans below it that do distribute run as actors and
gathered. Each such choice is logged with its reason and listed in
`QueryNetwork.fallbacks`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from actors._concat import concat
from actors._csv import read_csv
from actors._distinct import distinct
from actors._flow import fanout
from actors._groupby import groupby_agg
from actors._join import join
from actors._memory import from_polars
from actors._ndjson import read_ndjson
from actors._parquet import read_parquet
from actors._query._channel_scan import ChannelSource, check_stream_schema
from actors._query._plan import ROWS, PlanNode, joined_names, matching_nodes, read_traverser
from actors._query._rank_zero import keep_rank_zero, on_rank_zero
from actors._query._sizes import RowEstimates
from actors._sort import sort, top_k
from actors._transform import filter, map_chunks, select, with_columns
from streamnet import ActorNode, Agg, Channel, Context, TableChunk

__all__ = ["QueryNetwork", "build"]

logger = logging.getLogger("streamnet.query")

Stream = Channel[TableChunk]


@dataclass(frozen=True)
class QueryNetwork:
    """The actors a Polars query became (iterate it, or ``[*query, sink]``, to put them in a
    `Network`) and why any part of it runs on rank 0 through Polars."""

    actors: tuple[ActorNode, ...]
    fallbacks: tuple[str, ...] = field(default=())
    """One line per part that runs on rank 0 through Polars, naming the node and the reason."""

    def __iter__(self) -> Iterator[ActorNode]:
        return iter(self.actors)

    def __len__(self) -> int:
        return len(self.actors)


def build(ctx: Context, root: PlanNode, lazy_frame: pl.LazyFrame, ch_out: Stream) -> QueryNetwork:
    """The actors that compute ``root`` (the plan of ``lazy_frame``) into ``ch_out``."""
    builder = _Builder(ctx, lazy_frame, met_at_join=_met_at_a_join(root))
    out = builder.node(root) if root.distributable else builder.polars_above(root)
    builder.add(_forward(ctx, out, ch_out, root))
    builder.finish()
    return QueryNetwork(tuple(builder.actors), tuple(builder.fallbacks))


def _forward(ctx: Context, ch_in: Stream, ch_out: Stream, root: PlanNode) -> ActorNode:
    """The last step into the caller's channel: a projection onto the root's columns."""
    return select(ctx, ch_in, ch_out, *[pl.col(name) for name in root.names])


def _share(rows: int, rank: int, nranks: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of a table of ``rows`` rows that ``rank`` of ``nranks`` takes."""
    return rows * rank // nranks, rows * (rank + 1) // nranks


class _Builder:
    def __init__(
        self, ctx: Context, lazy_frame: pl.LazyFrame, *, met_at_join: frozenset[Any] = frozenset()
    ) -> None:
        self.ctx = ctx
        self.lazy_frame = lazy_frame
        self.met_at_join = met_at_join  # the cached subplans whose consumers meet at a join
        self.actors: list[ActorNode] = []
        self.fallbacks: list[str] = []
        self.caches: dict[Any, tuple[Stream, list[Stream]]] = {}
        self.channel_scans: dict[int, tuple[ChannelSource, list[Stream]]] = {}
        self.rows = RowEstimates()

    # ------------------------------------------------------------------ plumbing
    def channel(self) -> Stream:
        return self.ctx.create_channel()

    def add(self, node: ActorNode) -> None:
        self.actors.append(node)

    def step(self, make: Callable[..., ActorNode], ch_in: Stream, *args: Any, **kwargs: Any) -> Stream:
        out = self.channel()
        self.add(make(self.ctx, ch_in, out, *args, **kwargs))
        return out

    def conform(self, ch: Stream, produced: list[str], node: PlanNode) -> Stream:
        """``ch`` (columns ``produced``) with exactly the node's columns, in its order; for a
        node of no columns, its rows as the one column `ROWS`."""
        if not node.names:
            if produced == [ROWS]:
                return ch
            ch = self.step(with_columns, ch, pl.lit(0, dtype=pl.UInt8).alias(ROWS))
            return self.step(select, ch, pl.col(ROWS))
        if produced == node.names:
            return ch
        return self.step(select, ch, *[pl.col(name) for name in node.names])

    def fallback(self, node: PlanNode, reason: str) -> None:
        line = f"{node.describe()} runs on rank 0 through Polars: {reason}"
        logger.info("from_polars_query: %s", line)
        self.fallbacks.append(line)

    def on_rank_zero(
        self,
        inputs: list[Stream],
        schemas: list[pl.Schema],
        fn: Callable[[list[pl.DataFrame]], pl.DataFrame],
        schema: pl.Schema,
        *,
        keep_rows: int | None = None,
    ) -> Stream:
        out = self.channel()
        self.add(on_rank_zero(self.ctx, inputs, out, fn, schemas, schema, keep_rows=keep_rows))
        return out

    def sliced(
        self, ch: Stream, node: PlanNode, zlice: tuple[int, int | None] | None,
        *, schema: pl.Schema | None = None,
    ) -> Stream:  # fmt: skip
        """``ch`` (the node's rows in order, of ``schema``: by default the node's) cut to
        the slice Polars pushed into the node."""
        if zlice is None:
            return ch
        offset, length = zlice
        keep = offset + length if offset >= 0 and length is not None else None
        self.fallback(node, f"the slice ({offset}, {length}) of the whole stream is taken there")
        schema = node.schema if schema is None else schema
        return self.on_rank_zero(
            [ch], [schema], lambda frames: frames[0].slice(offset, length), schema,
            keep_rows=keep,
        )  # fmt: skip

    def finish(self) -> None:
        """Fan every cached subplan out to its consumers; read each `scan_channel`'s channel
        once, its chunks checked, and fan it out to every scan of it."""
        for source, outputs in self.caches.values():
            self.add(fanout(self.ctx, source, outputs))
        for channel_source, outputs in self.channel_scans.values():
            checked = outputs[0] if len(outputs) == 1 else self.channel()
            self.add(check_stream_schema(self.ctx, channel_source.channel, checked, channel_source))
            if len(outputs) > 1:
                self.add(fanout(self.ctx, checked, outputs))

    # ------------------------------------------------------------------ Polars above
    def polars_above(self, root: PlanNode) -> Stream:
        """``root``'s stream where part of its plan cannot run as actors: Polars runs the
        plan on rank 0, its subplans that do distribute computed as actors and gathered."""
        cut: dict[int, PlanNode] = {}
        reasons: list[str] = []

        def visit(node: PlanNode) -> None:
            if node.unsupported is not None:
                reasons.append(node.unsupported)
            for child in node.inputs:
                if child.distributable:
                    cut.setdefault(child.id, child)
                else:
                    visit(child)

        visit(root)
        cuts = list(cut.values())
        streams = [self.node(node) for node in cuts]
        unique = list(dict.fromkeys(reasons))
        self.fallback(root, "the plan above the parts that distribute, since " + "; ".join(unique))
        lazy_frame = self.lazy_frame

        def run(frames: list[pl.DataFrame]) -> pl.DataFrame:
            return _collect_replacing(lazy_frame, root, cuts, frames)

        return self.on_rank_zero(streams, [node.schema for node in cuts], run, root.schema)

    # ------------------------------------------------------------------ nodes
    def node(self, node: PlanNode) -> Stream:
        method = getattr(self, f"_{node.op}")
        out: Stream = method(node)
        return out

    def _cache(self, node: PlanNode) -> Stream:
        key, shared = node.args["key"], node.inputs[0]
        if _rereadable(shared):
            rows = self.rows(shared)
            if rows >= REREAD_MIN_ROWS if key in self.met_at_join else rows < SMALL_REREAD_ROWS:
                return self.node(shared)  # read again (see `_met_at_a_join`, `SMALL_REREAD_ROWS`)
        if key not in self.caches:
            self.caches[key] = (self.node(shared), [])
        out = self.channel()
        self.caches[key][1].append(out)
        return self.conform(out, node.inputs[0].names, node)

    def _parquet(self, node: PlanNode) -> Stream:
        out = self.channel()
        columns = node.args["columns"]
        if columns is not None and not columns:  # only the rows count: the columns pruned later
            columns = None  # keep the narrowest the file has
        predicate, pre_slice = node.args["predicate"], node.args["pre_slice"]
        if predicate is not None and pre_slice is not None:
            return self._sliced_then_filtered(node, columns)
        self.add(read_parquet(self.ctx, out, node.args["paths"], columns=columns,
                              filters=predicate))  # fmt: skip
        produced = list(columns) if columns is not None else node.names
        return self.sliced(self.conform(out, produced, node), node, pre_slice)

    def _sliced_then_filtered(self, node: PlanNode, columns: list[str] | None) -> Stream:
        """A Parquet scan with both a slice and a predicate: Polars slices the files' rows,
        then filters them, so the scan reads the predicate's columns as well, the slice is
        taken, and a plan step after it filters."""
        predicate, pre_slice = node.args["predicate"], node.args["pre_slice"]
        file_schema = pl.read_parquet_schema(node.args["paths"][0])
        wanted = set(predicate.meta.root_names())
        read = list(columns) if columns is not None else list(file_schema)
        read += [name for name in file_schema if name in wanted and name not in read]
        out = self.channel()
        self.add(read_parquet(self.ctx, out, node.args["paths"], columns=read))
        schema = pl.Schema({name: file_schema[name] for name in read})
        out = self.sliced(out, node, pre_slice, schema=schema)
        return self.conform(self.step(filter, out, predicate), read, node)

    def _csv(self, node: PlanNode) -> Stream:
        a = node.args
        out = self.channel()
        self.add(read_csv(self.ctx, out, a["paths"], schema=a["schema"], delimiter=a["delimiter"],
                          has_header=a["has_header"], multiline=a["multiline"]))  # fmt: skip
        return self.scanned(out, list(a["schema"]), node)

    def _ndjson(self, node: PlanNode) -> Stream:
        out = self.channel()
        self.add(read_ndjson(self.ctx, out, node.args["paths"], schema=node.schema))
        return self.scanned(out, node.names, node)

    def _channel(self, node: PlanNode) -> Stream:
        source: ChannelSource = node.args["source"]
        out = self.channel()
        self.channel_scans.setdefault(id(source), (source, []))[1].append(out)
        return self.scanned(out, list(source.schema), node)

    def scanned(self, ch: Stream, produced: list[str], node: PlanNode) -> Stream:
        """A source's stream (columns ``produced``) as the scan gives it: its columns, the
        slice Polars pushed into it, then its predicate (for sources that take neither: a
        plan step after them filters each chunk)."""
        out = self.sliced(self.conform(ch, produced, node), node, node.args["pre_slice"])
        if node.args["predicate"] is not None:
            out = self.step(filter, out, node.args["predicate"])
        return out

    def _frame(self, node: PlanNode) -> Stream:
        frame: pl.DataFrame = node.args["frame"]
        start, stop = _share(frame.height, self.ctx.rank, self.ctx.nranks)
        out = self.channel()
        self.add(from_polars(self.ctx, out, frame.slice(start, stop - start)))
        if node.args["predicate"] is not None:
            out = self.step(filter, out, node.args["predicate"])
        return self.conform(out, frame.columns, node)

    def beside_scalars(self, node: PlanNode) -> Stream:
        """The node's input with its whole-input aggregates (``scalars``) as columns of every
        row: the input, fanned out to a group-by of one group, joined with its one row."""
        (child,) = node.inputs
        parts = node.args["scalars"]
        rows, into_aggregate = self.channel(), self.channel()
        self.add(fanout(self.ctx, self.node(child), [rows, into_aggregate]))
        inputs = [expr.alias(name) for name, expr in parts.inputs.items()]
        pre = self.step(select, into_aggregate, *inputs) if inputs else into_aggregate
        scalars = self.step(groupby_agg, pre, [], list(parts.aggs))
        constant = pl.lit(0, dtype=pl.UInt8).alias("__sn_cross")
        left = self.step(with_columns, rows, constant)
        right = self.step(with_columns, scalars, constant)
        out = self.channel()
        self.add(join(self.ctx, left, right, out, on="__sn_cross", how="inner", strategy="broadcast"))
        return out

    def _select(self, node: PlanNode) -> Stream:
        (child,) = node.inputs
        exprs = node.args["exprs"]
        if "scalars" in node.args:
            return self.step(select, self.beside_scalars(node), *exprs)
        if node.args.get("rank_zero"):
            self.fallback(node, "its expressions read more than one row")
            return self.on_rank_zero([self.node(child)], [child.schema],
                                     lambda f: f[0].select(exprs), node.schema)  # fmt: skip
        if not exprs:  # no column left, the rows still count
            return self.conform(self.node(child), [], node)
        return self.step(select, self.node(child), *exprs)

    def _with_columns(self, node: PlanNode) -> Stream:
        (child,) = node.inputs
        exprs = node.args["exprs"]
        if "scalars" in node.args:
            out = self.step(with_columns, self.beside_scalars(node), *exprs)
            return self.conform(out, [], node)
        if node.args.get("rank_zero"):
            self.fallback(node, "its expressions read more than one row")
            return self.on_rank_zero([self.node(child)], [child.schema],
                                     lambda f: f[0].with_columns(exprs), node.schema)  # fmt: skip
        out = self.step(with_columns, self.node(child), *exprs)
        return self.conform(out, node.names, node)

    def _filter(self, node: PlanNode) -> Stream:
        (child,) = node.inputs
        predicate = node.args["predicate"]
        if predicate is None:  # only hints for a top-k above
            return self.node(child)
        if "scalars" in node.args:
            out = self.step(filter, self.beside_scalars(node), predicate)
            return self.conform(out, [], node)
        if node.args.get("rank_zero"):
            self.fallback(node, "its predicate reads more than one row")
            return self.on_rank_zero([self.node(child)], [child.schema],
                                     lambda f: f[0].filter(predicate), node.schema)  # fmt: skip
        return self.step(filter, self.node(child), predicate)

    def _aggregate(self, node: PlanNode) -> Stream:
        (child,) = node.inputs
        keys: list[pl.Expr] = node.args["keys"]
        parts = node.args["parts"]
        key_names = [key.meta.output_name() for key in keys]
        inputs = [expr.alias(name) for name, expr in parts.inputs.items()]
        pre = self.step(select, self.node(child), *keys, *inputs) if inputs or keys else self.node(child)
        # Keys alone (Polars pruned aggregations nobody reads): the groups, counted aside.
        aggs = list(parts.aggs) or [Agg(None, "len", ROWS)]
        grouped = self.step(groupby_agg, pre, key_names, aggs)
        finals = [
            pl.col(name) if name in key_names else parts.finals[name].cast(dtype)
            for name, dtype in node.schema.items()
        ]
        out = self.step(select, grouped, *finals)
        return self.sliced(out, node, node.args["slice"])

    def _join(self, node: PlanNode) -> Stream:
        left, right = node.inputs
        args = node.args
        how = args["how"]
        lch, rch = self.node(left), self.node(right)
        comparisons = args["comparisons"]
        if how == "cross":  # a join on a constant; compared expressions as columns of each side
            constant = pl.lit(0, dtype=pl.UInt8).alias("__sn_cross")
            lefts = [e.alias(f"__sn_cmp{i}l") for i, (_, e, _) in enumerate(comparisons)]
            rights = [e.alias(f"__sn_cmp{i}r") for i, (_, _, e) in enumerate(comparisons)]
            lch = self.step(with_columns, lch, constant, *lefts)
            rch = self.step(with_columns, rch, constant, *rights)
            out = self.channel()
            self.add(join(self.ctx, lch, rch, out, on="__sn_cross", how="inner", suffix=args["suffix"]))
            produced = args["produced"]
        elif self.builds_on_left(node):
            out = self.channel()
            self.add(join(self.ctx, rch, lch, out, left_on=args["right_on"], right_on=args["left_on"],
                          how="inner", suffix=args["suffix"]))  # fmt: skip
            renamed = [(r, n) for n, r in zip(args["left_on"], args["right_on"], strict=True) if n != r]
            if renamed:
                out = self.step(with_columns, out, *[pl.col(r).alias(n) for r, n in renamed])
            produced = [*_swapped_names(node), *(n for _, n in renamed)]
        else:
            out = self.channel()
            self.add(join(self.ctx, lch, rch, out, left_on=args["left_on"], right_on=args["right_on"],
                          how=how, suffix=args["suffix"]))  # fmt: skip
            produced = args["produced"]
        if args["predicate"] is not None:
            out = self.step(filter, out, args["predicate"])
        for i, (op, _, _) in enumerate(comparisons):
            out = self.step(filter, out, _compare(op, pl.col(f"__sn_cmp{i}l"), pl.col(f"__sn_cmp{i}r")))
        out = self.conform(out, produced, node)
        return self.sliced(out, node, args["slice"])

    def builds_on_left(self, node: PlanNode) -> bool:
        """Whether an inner join is built with its sides swapped (the key columns then named
        as Polars names them): on several ranks, when its left input is guessed smaller.

        The join reads its right side first, and broadcasts it when it is small, else
        shuffles both sides; Polars' plan often puts the large table there (``lineitem``
        joined to the orders of some customers). On one rank nothing crosses ranks, and
        Polars' own join of the whole right side with batches of the left is faster than
        many joins of a small right side with batches of a large left one.
        """
        if node.args["how"] != "inner" or self.ctx.nranks == 1 or not _swappable(node):
            return False
        left, right = (self.rows(child) for child in node.inputs)
        if left >= right:
            return False
        logger.debug("from_polars_query: %s builds on its left input (about %d rows against %d)",
                     node.describe(), left, right)  # fmt: skip
        return True

    def _sort(self, node: PlanNode) -> Stream:
        (child,) = node.inputs
        args = node.args
        by: list[pl.Expr] = args["by"]
        descending, nulls_last, zlice = args["descending"], args["nulls_last"], args["slice"]
        ch = self.node(child)
        if args["stable"]:
            self.fallback(node, "a sort that keeps the order of ties (`maintain_order=True`)")

            def stable(frames: list[pl.DataFrame]) -> pl.DataFrame:
                out = frames[0].sort(by, descending=descending, nulls_last=nulls_last,
                                     maintain_order=True)  # fmt: skip
                return out if zlice is None else out.slice(*zlice)

            return self.on_rank_zero([ch], [child.schema], stable, node.schema)
        names = list(args["columns"])
        if not all(names):
            names = [f"__sn_by{i}" for i in range(len(by))]
            ch = self.step(with_columns, ch, *[e.alias(n) for e, n in zip(by, names, strict=True)])
        if zlice is not None and zlice[0] == 0 and zlice[1] is not None:
            ranked = self.step(top_k, ch, names, zlice[1], descending=descending, nulls_last=nulls_last)
            out = self.step(keep_rank_zero, ranked)
            return self.conform(out, [*child.names, *(n for n in names if n not in child.names)], node)
        out = self.step(sort, ch, names, descending=descending, nulls_last=nulls_last)
        out = self.conform(out, [*child.names, *(n for n in names if n not in child.names)], node)
        return self.sliced(out, node, zlice)

    def _slice(self, node: PlanNode) -> Stream:
        (child,) = node.inputs
        return self.sliced(self.node(child), node, node.args["slice"])

    def _distinct(self, node: PlanNode) -> Stream:
        (child,) = node.inputs
        args = node.args
        keep, subset = args["keep"], args["subset"]
        ch = self.node(child)
        if keep == "none" or args["maintain_order"]:
            why = "it keeps no duplicate at all" if keep == "none" else "it keeps the order of rows"
            self.fallback(node, f"a `unique` where {why}")
            zlice = args["slice"]

            def unique(frames: list[pl.DataFrame]) -> pl.DataFrame:
                out = frames[0].unique(subset=subset, keep=keep, maintain_order=args["maintain_order"])
                return out if zlice is None else out.slice(*zlice)

            return self.on_rank_zero([ch], [child.schema], unique, node.schema)
        out = self.step(distinct, ch, subset, keep=keep)
        return self.sliced(out, node, args["slice"])

    def _union(self, node: PlanNode) -> Stream:
        streams = [self.node(child) for child in node.inputs]
        if node.args["maintain_order"] and self.ctx.nranks > 1:
            self.fallback(node, "a concatenation that keeps the order of its inputs gathers them")
            streams = [
                self.on_rank_zero([ch], [child.schema], lambda f: f[0], child.schema)
                for ch, child in zip(streams, node.inputs, strict=True)
            ]
        out = self.channel()
        self.add(concat(self.ctx, streams, out))
        return self.sliced(out, node, node.args["slice"])

    def _explode(self, node: PlanNode) -> Stream:
        (child,) = node.inputs
        a = node.args

        def explode(df: pl.DataFrame) -> pl.DataFrame:
            return df.explode(a["columns"], empty_as_null=a["empty_as_null"], keep_nulls=a["keep_nulls"])

        return self.step(map_chunks, self.node(child), explode, kind="polars")

    def _unpivot(self, node: PlanNode) -> Stream:
        (child,) = node.inputs
        a = node.args

        def unpivot(df: pl.DataFrame) -> pl.DataFrame:
            return df.unpivot(on=a["on"], index=a["index"], variable_name=a["variable"],
                              value_name=a["value"])  # fmt: skip

        return self.step(map_chunks, self.node(child), unpivot, kind="polars")

    def _row_index(self, node: PlanNode) -> Stream:
        (child,) = node.inputs
        name, offset = node.args["name"], node.args["offset"]
        self.fallback(node, "a row index counts the rows of the whole stream")
        return self.on_rank_zero([self.node(child)], [child.schema],
                                 lambda f: f[0].with_row_index(name, offset), node.schema)  # fmt: skip

    def _hconcat(self, node: PlanNode) -> Stream:
        self.fallback(node, "a horizontal concatenation lines up the rows of whole inputs")
        return self.on_rank_zero([self.node(child) for child in node.inputs],
                                 [child.schema for child in node.inputs], _side_by_side,
                                 node.schema)  # fmt: skip


def _swappable(node: PlanNode) -> bool:
    """Whether an inner join gives the same columns with its sides swapped: no column name
    is on both sides but a key joined to a key of its own name, no key repeats, and keys
    joined have one type."""
    left, right = node.inputs
    left_on, right_on = node.args["left_on"], node.args["right_on"]
    if len(set(left_on)) != len(left_on) or len(set(right_on)) != len(right_on):
        return False
    pairs = list(zip(left_on, right_on, strict=True))
    if any(left.schema[n] != right.schema[r] for n, r in pairs):
        return False
    if not set(left.names) & set(right.names) <= {n for n, r in pairs if n == r}:
        return False
    produced = {*_swapped_names(node), *left_on}
    return all(name in produced for name in node.names)


def _swapped_names(node: PlanNode) -> list[str]:
    """The columns of an inner join with its sides swapped."""
    left, right = node.inputs
    a = node.args
    return joined_names(right.schema, left.schema, a["right_on"], a["left_on"], "inner", a["suffix"])


def _side_by_side(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The frames' columns side by side, the shorter ones padded with nulls."""
    height = max(frame.height for frame in frames)
    padded = [f if f.height == height else pl.concat([f, f.clear(height - f.height)]) for f in frames]
    return pl.DataFrame([column for frame in padded for column in frame.get_columns()])


def _compare(op: str, left: pl.Expr, right: pl.Expr) -> pl.Expr:
    return {"Lt": left < right, "LtEq": left <= right, "Gt": left > right, "GtEq": left >= right}[op]


def _collect_replacing(
    lazy_frame: pl.LazyFrame, root: PlanNode, nodes: list[PlanNode], frames: list[pl.DataFrame]
) -> pl.DataFrame:
    """Polars' result of ``lazy_frame`` (whose plan is ``root``) with each of ``nodes``
    replaced by its frame.

    Polars optimises the query again for this, and may number the nodes of the same plan
    otherwise: each node is found in the new plan by its place (`matching_nodes`). Should
    the new plan differ in shape, Polars runs it as it is, reading every source itself.
    """
    if not nodes:
        return lazy_frame.collect()
    differs: list[bool] = []

    def replace(visitor: Any, *_: Any) -> None:
        before = visitor.get_node()
        ids = matching_nodes(root, read_traverser(visitor))
        if ids is None:
            differs.append(True)
            return
        for node, frame in zip(nodes, frames, strict=True):
            visitor.set_node(ids[node.id])
            visitor.set_udf(_frame_source(frame))
        visitor.set_node(before)

    result: pl.DataFrame = lazy_frame.collect(post_opt_callback=replace)  # type: ignore[call-overload]
    if differs:
        logger.warning(
            "from_polars_query: Polars planned the query differently on rank 0; it ran the "
            "whole query itself, reading every source again"
        )
    return result


def _frame_source(frame: pl.DataFrame) -> Callable[..., pl.DataFrame]:
    """A source for Polars' plan that gives ``frame`` (``set_udf``'s scan function)."""

    def source(with_columns: list[str] | None, predicate: Any, n_rows: int | None, *_: Any) -> pl.DataFrame:
        out = frame if with_columns is None else frame.select(with_columns)
        return out if n_rows is None else out.head(n_rows)

    return source


REREAD_MIN_ROWS = 1 << 20
"""A scan that Polars computes once for consumers that meet at a join is read again for
each when it gives about this many rows or more (`_met_at_a_join`); below, the rows that
wait cost less than a second read (TPC-H Q22's 375,000 customers at SF 10: 0.41 s
shared, 0.6 s read twice)."""
SMALL_REREAD_ROWS = 1 << 17
"""A scan that Polars computes once for consumers that do not meet again at a join is
read again for each when it gives fewer rows than this: reading it costs little, and
each consumer then has a source of its own, which a join's key filter needs of the
input it reads whole first (TPC-H Q7 joins each branch of a union with the suppliers
of one nation, whose keys then cut the `lineitem` scan the two branches share).
Consumers that meet at a join keep sharing such a scan (see `REREAD_MIN_ROWS`)."""
_REREAD_SOURCES = frozenset({"parquet", "csv", "ndjson"})
_ROW_WISE = frozenset({"select", "with_columns", "filter"})


def _rereadable(node: PlanNode) -> bool:
    """Whether a subplan is a file scan under row-wise steps only."""
    if node.op in _REREAD_SOURCES:
        return True
    return node.op in _ROW_WISE and len(node.inputs) == 1 and _rereadable(node.inputs[0])


def _met_at_a_join(root: PlanNode) -> frozenset[Any]:
    """The keys of the subplans Polars computes once (its caches) whose consumers meet
    again at a join: a scan among them is read again for each consumer (`_rereadable`,
    `REREAD_MIN_ROWS`).

    Shared through a fanout, such a scan's rows pile up on one side of the join while
    the other side is read first (TPC-H Q18: all of ``lineitem``, 1 GB at SF 10, waits
    for the group-by over it to end); read again, the waiting side's scan is cut by the
    join's key filter instead (Q18 at SF 10 went from 3.3 to 2.3 s, Q21 from 7.7 to
    3.5 s). Consumers that meet at a union (TPC-H Q7) go at one pace: they share."""
    below: dict[int, frozenset[Any]] = {}
    met: set[Any] = set()

    def caches(node: PlanNode) -> frozenset[Any]:
        if node.id not in below:
            under = [caches(child) for child in node.inputs]
            if node.op == "join" and len(under) == 2:
                met.update(under[0] & under[1])
            own = {node.args["key"]} if node.op == "cache" else set()
            below[node.id] = frozenset(own.union(*under))
        return below[node.id]

    caches(root)
    return frozenset(met)
