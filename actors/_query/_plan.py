"""Polars' optimised plan, read into a small tree of nodes the translator builds actors from.

`read_plan` walks the plan through Polars' `NodeTraverser` (``lf._ldf.visit()``: the
interface cudf-polars reads, the same in Polars 1.44 and 2.x up to the details
handled here) and returns a `PlanNode` per node of the plan: what it does, with its
expressions rebuilt as Polars expressions (`ExprReader`), its output schema and its
inputs. A node the translator cannot run as actors carries the reason in
``unsupported``; the translator then leaves it, and every node above it, to Polars.
"""

from __future__ import annotations

import csv
import json
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from actors._query._channel_scan import channel_source
from actors._query._exprs import AggregateParts, ExprReader, Unsupported, kind, variant
from streamnet import ExpressionError, check_row_wise

__all__ = ["PLAN_VERSIONS", "ROWS", "PlanNode", "joined_names", "read_plan", "row_carrier"]

PLAN_VERSIONS = (14, 15, 16)
"""Major versions of Polars' plan interface this reader knows: 14 (Polars 1.44), 16 (2.x)."""

ROWS = "__sn_rows"
"""The one column a stream has where Polars' plan keeps no column but the rows still count
(``select(pl.len())``, ``with_row_index().select("index")``, a cross join whose other side
gives the columns): a chunk of no columns has no rows, so the rows ride on this."""


def row_carrier(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame``'s rows as a frame of the one column `ROWS`."""
    return pl.DataFrame({ROWS: pl.zeros(frame.height, dtype=pl.UInt8, eager=True)})


_SCANS = {"parquet": "Parquet", "csv": "CSV", "ndjson": "NDJSON"}
"""Polars' scans the translator reads with library actors, by the name Polars gives them."""

# Polars' CSV options `read_csv` reads alike only at these values (parse options, then the
# scan's own): quotes and line ends are checked apart.
_CSV_DEFAULTS: dict[str, Any] = {
    "encoding": "Utf8", "null_values": None, "missing_is_null": True,
    "truncate_ragged_lines": False, "comment_prefix": None, "decimal_comma": False,
    "skip_rows": 0, "skip_lines": 0, "skip_rows_after_header": 0, "ignore_errors": False,
    "column_names_overwrite": None, "row_index": None, "fields_to_cast": [],
}  # fmt: skip

# The first bytes of the compressed files Polars reads as CSV (gzip, zlib, zstd).
_COMPRESSED = (b"\x1f\x8b", b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda", b"\x28\xb5\x2f\xfd")

_JOIN_HOWS = {"Inner": "inner", "Left": "left", "Right": "right", "Full": "full",
              "Semi": "semi", "Anti": "anti", "Cross": "cross"}  # fmt: skip


@dataclass(eq=False)
class PlanNode:
    """One node of the plan: ``op`` says what it does, ``args`` its arguments (per ``op``)."""

    id: int
    """The node's index in Polars' plan (the same in every reading of the same plan)."""
    op: str
    """``"parquet"``, ``"csv"``, ``"ndjson"``, ``"channel"``, ``"frame"``, ``"select"``, ``"with_columns"``, ``"filter"``,
    ``"aggregate"``, ``"join"``, ``"sort"``, ``"slice"``, ``"distinct"``, ``"union"``,
    ``"cache"``, ``"explode"``, ``"unpivot"``, ``"row_index"``, ``"hconcat"``, or the
    Polars name of a node that is not translated."""
    schema: pl.Schema
    inputs: list[PlanNode] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)
    unsupported: str | None = None
    """Why the translator cannot run this node as actors (None: it can)."""

    @property
    def names(self) -> list[str]:
        return list(self.schema.names())

    def walk(self) -> Iterator[PlanNode]:
        """This node and every node below it (a shared one once per path)."""
        yield self
        for child in self.inputs:
            yield from child.walk()

    @property
    def distributable(self) -> bool:
        """Whether this node and every node below it run as actors."""
        return all(node.unsupported is None for node in self.walk())

    def describe(self) -> str:
        return f"{self.op} (node {self.id})"


@contextmanager
def _at(visitor: Any, n: int) -> Iterator[None]:
    """Stand the traverser on node ``n`` for the block."""
    before = visitor.get_node()
    visitor.set_node(n)
    try:
        yield
    finally:
        visitor.set_node(before)


def read_plan(lazy_frame: pl.LazyFrame) -> tuple[PlanNode, Any]:
    """Let Polars optimise ``lazy_frame`` and read its plan; also returns the traverser.

    Raises
    ------
    NotImplementedError
        Polars' plan interface has a major version this reader does not know, naming it.
    """
    # Polars' plan interface for other engines (what cudf-polars reads), not public API.
    visitor = lazy_frame._ldf.visit()  # noqa: SLF001
    version = tuple(visitor.version())
    if version[0] not in PLAN_VERSIONS:
        raise NotImplementedError(
            f"from_polars_query: Polars {pl.__version__} describes its plans in version "
            f"{version}, which the translator does not know (it reads major versions "
            f"{list(PLAN_VERSIONS)}); got a plan of version {version}"
        )
    return read_traverser(visitor), visitor


def read_traverser(visitor: Any) -> PlanNode:
    """The plan of Polars' traverser ``visitor`` (`read_plan`'s, or the one Polars hands a
    ``post_opt_callback``), read from its current node down."""
    reader = _Reader(visitor, tuple(visitor.version()))
    return reader.node(visitor.get_node())


def matching_nodes(first: PlanNode, again: PlanNode) -> dict[int, int] | None:
    """Each node of the plan ``first`` mapped to the node of ``again`` (the same query
    optimised again) in its place, or None if the two plans differ in shape, in a node's
    kind or in its schema. Polars numbers the nodes of a plan by where they lie in its
    arena, which another optimisation of the same query may lay out otherwise."""
    ids: dict[int, int] = {}
    pending = [(first, again)]
    while pending:
        a, b = pending.pop()
        if a.op != b.op or a.schema != b.schema or len(a.inputs) != len(b.inputs):
            return None
        if ids.setdefault(a.id, b.id) != b.id:
            return None
        pending.extend(zip(a.inputs, b.inputs, strict=True))
    return ids


class _Reader:
    def __init__(self, visitor: Any, version: tuple[int, int]) -> None:
        self.visitor = visitor
        self.version = version
        self.exprs = ExprReader(visitor, version)
        self.seen: dict[int, PlanNode] = {}

    def node(self, n: int) -> PlanNode:
        if n in self.seen:  # a node reached twice (below a shared cache) is read once
            return self.seen[n]
        with _at(self.visitor, n):
            schema = pl.Schema(self.visitor.get_schema())
            inputs = list(self.visitor.get_inputs())
            try:
                ir = self.visitor.view_current_node()
            except NotImplementedError as exc:  # a node Polars shows no other engine
                ir, hidden = None, str(exc)
        op = "hidden" if ir is None else kind(ir)
        node = PlanNode(n, op, schema, [self.node(i) for i in inputs])
        if ir is None:
            node.unsupported = f"node {n}: Polars shows other engines no {hidden}"
            self.seen[n] = node
            return node
        reader = getattr(self, f"_{op}", None)
        shared = self._common_subexpressions(inputs)
        if shared:  # read through the input, which only computes them
            (node.inputs,) = [node.inputs[0].inputs]
            # a node that passes its input's columns through gives them no more
            node.schema = pl.Schema({k: v for k, v in schema.items() if k not in shared})
        try:
            if reader is None:
                raise self.exprs.unsupported(f"plan node `{op}`")
            self.exprs.substitutes = shared
            with _at(self.visitor, inputs[0] if inputs else n):
                reader(ir, node)
        except Unsupported as exc:
            node.unsupported = f"`{op}` (node {n}): {exc}"
        finally:
            self.exprs.substitutes = {}
        self.seen[n] = node
        return node

    def _common_subexpressions(self, inputs: list[int]) -> dict[str, int]:
        """The columns a node's one input adds only to share expressions the node reads
        more than once, each with the expression that makes it; none for another input.

        Polars' common-subexpression pass gives ``select(x.sum(), x.sum() / pl.len())``
        an input that adds ``x.sum()`` as a column without broadcasting it to the rows
        (``should_broadcast`` false): the select then gives one row, which a column beside
        every row would not. Its expressions are read in place of the columns instead."""
        if len(inputs) != 1:
            return {}
        with _at(self.visitor, inputs[0]):
            try:
                ir = self.visitor.view_current_node()
            except NotImplementedError:
                return {}
        if kind(ir) != "HStack" or getattr(ir, "should_broadcast", True):
            return {}
        return {e.output_name: e.node for e in ir.exprs}

    # ------------------------------------------------------------------ sources
    def _Scan(self, ir: Any, node: PlanNode) -> None:
        scan_type, *scan_options = ir.scan_type if isinstance(ir.scan_type, tuple) else (ir.scan_type,)
        options = ir.file_options
        if scan_type not in _SCANS:
            raise self.exprs.unsupported(f"a {scan_type} scan")
        what = _SCANS[scan_type]
        for name in ("row_index", "include_file_paths"):
            if getattr(options, name, None) is not None:
                raise self.exprs.unsupported(f"a {what} scan with `{name}`")
        if getattr(options, "deletion_files", None):
            raise self.exprs.unsupported(f"a {what} scan with deletion files")
        for name, default in _SCAN_POLICIES.items():  # how files unlike the first are read
            value = getattr(options, name, default)
            if value != default:
                raise self.exprs.unsupported(f"a {what} scan with `{name}` {value!r}")
        casts = getattr(options, "cast_columns_policy", None) or {}
        changed = sorted(k for k, v in casts.items() if v != _SCAN_CASTS.get(k, v))
        if changed:
            raise self.exprs.unsupported(f"a {what} scan that casts columns ({', '.join(changed)})")
        if ir.hive_parts is not None and not (isinstance(ir.hive_parts, list) and not ir.hive_parts):
            raise self.exprs.unsupported(f"a hive-partitioned {what} scan")
        paths = [p[len("file://"):] if p.startswith("file://") else p for p in ir.paths]
        if any("://" in p for p in paths):
            raise self.exprs.unsupported("a scan of remote files")
        with _at(self.visitor, node.id):
            predicate = None if ir.predicate is None else self.exprs.without_hints(ir.predicate.node)
        node.op = scan_type
        node.args = {
            "paths": paths,
            "columns": None if options.with_columns is None else list(options.with_columns),
            "predicate": predicate,
            "pre_slice": options.n_rows,
        }
        if scan_type == "csv":
            node.args.update(self._csv_options(json.loads(scan_options[0]), paths, node))
        elif scan_type == "ndjson":
            self._ndjson_options(json.loads(scan_options[0]))

    def _csv_options(self, options: dict[str, Any], paths: list[str], node: PlanNode) -> dict[str, Any]:
        """What `read_csv` needs to read the files as Polars does: the delimiter, the header,
        and the files' whole schema (Polars' types for the columns the scan gives, strings
        for the others; `read_csv` names every column of the file)."""
        parse = options.get("parse_options") or {}
        for name, default in _CSV_DEFAULTS.items():
            value = parse[name] if name in parse else options.get(name, default)
            if value != default:
                raise self.exprs.unsupported(f"a CSV scan with `{name}` other than {default!r}")
        if parse.get("quote_char") != ord('"') or parse.get("eol_char") != ord("\n"):
            raise self.exprs.unsupported("a CSV scan with a quote or end of line other than `\"` and `\\n`")
        if not paths:
            raise self.exprs.unsupported("a CSV scan of no files")
        delimiter = chr(parse["separator"])
        has_header = bool(options.get("has_header", True))
        try:
            names = _csv_names(paths[0], delimiter, has_header)
        except (OSError, UnicodeDecodeError, csv.Error, pl.exceptions.PolarsError) as exc:
            raise self.exprs.unsupported(f"a CSV file whose first line cannot be read ({exc})") from None
        if names is None:
            raise self.exprs.unsupported("a CSV file that is compressed, empty, or repeats a name")
        missing = [name for name in node.names if name not in names]
        if missing:
            raise self.exprs.unsupported(f"a CSV scan of columns {missing} that the file does not name")
        schema = {name: node.schema.get(name, pl.String()) for name in names}
        return {
            "delimiter": delimiter, "has_header": has_header, "schema": pl.Schema(schema),
            "multiline": any(map(_holds_a_quote, paths)),
        }  # fmt: skip

    def _ndjson_options(self, options: dict[str, Any]) -> None:
        if options.get("ignore_errors"):
            raise self.exprs.unsupported("an NDJSON scan with `ignore_errors=True`")

    def _PythonScan(self, ir: Any, node: PlanNode) -> None:
        scan_function, _, _, predicate, n_rows = ir.options[:5]
        source = channel_source(scan_function)
        if source is None:
            raise self.exprs.unsupported("a Python scan (an IO plugin) other than `scan_channel`'s")
        expr = None
        if predicate is not None:
            language, n = predicate
            if language != "polars":
                raise self.exprs.unsupported(f"a Python scan with a {language} predicate")
            with _at(self.visitor, node.id):
                expr = self.exprs.without_hints(n)
        node.op = "channel"
        node.args = {
            "source": source,
            "predicate": expr,
            "pre_slice": None if n_rows is None else (0, int(n_rows)),
        }

    def _DataFrameScan(self, ir: Any, node: PlanNode) -> None:
        frame = pl.DataFrame._from_pydf(ir.df)  # noqa: SLF001 (the plan holds Polars' own frame)
        if ir.projection is not None:
            frame = frame.select(ir.projection) if ir.projection else row_carrier(frame)
        predicate = None
        if ir.selection is not None:
            with _at(self.visitor, node.id):
                predicate = self.exprs.without_hints(ir.selection.node)
        node.op = "frame"
        node.args = {"frame": frame, "predicate": predicate}

    # ------------------------------------------------------------------ row-wise steps
    def _Select(self, ir: Any, node: PlanNode) -> None:
        exprs: list[pl.Expr] | None = None
        plain: Unsupported | None = None
        try:
            exprs = [self.exprs.named(e) for e in ir.expr]
        except Unsupported as exc:
            plain = exc
        if exprs is not None and _row_wise(exprs, select=True):
            node.op = "select"
            node.args = {"exprs": exprs}
            return
        try:  # a select of aggregates: one group of the whole input
            parts = AggregateParts()
            for e in ir.expr:
                self.exprs.aggregated(e, parts)
            if not parts.aggs:  # no aggregate after all (a Series literal): not one group
                raise self.exprs.unsupported("a select of neither rows nor aggregates")
        except Unsupported:
            if plain is not None:
                raise plain from None
            node.op = "select"
            node.args = {"exprs": exprs, **self._beside_rows(ir.expr)}
            return
        node.op = "aggregate"
        node.args = {"keys": [], "parts": parts, "slice": None}

    def _HStack(self, ir: Any, node: PlanNode) -> None:
        exprs = [self.exprs.named(e) for e in ir.exprs]
        node.op = "with_columns"
        node.args = {"exprs": exprs, **({} if _row_wise(exprs) else self._beside_rows(ir.exprs))}

    def _Filter(self, ir: Any, node: PlanNode) -> None:
        predicate = self.exprs.without_hints(ir.predicate.node)
        node.op = "filter"
        node.args = {"predicate": predicate}
        if predicate is not None and not _row_wise([predicate]):
            node.args.update(self._beside_rows([ir.predicate]))
            if "scalars" in node.args:
                (node.args["predicate"],) = node.args.pop("exprs")

    def _beside_rows(self, named: list[Any]) -> dict[str, Any]:
        """Expressions that read aggregates of the whole input beside each row: ``scalars``
        (the aggregates, one group of the whole input) and ``exprs`` over the rows and the
        aggregates' columns; or ``rank_zero`` when they read the rows otherwise."""
        parts = AggregateParts(rows=True)
        try:
            exprs = [self.exprs.beside_rows(e.node, parts).alias(e.output_name) for e in named]
        except Unsupported:
            return {"rank_zero": True}
        if not parts.aggs or not _row_wise(exprs):
            return {"rank_zero": True}
        return {"scalars": parts, "exprs": exprs}

    def _SimpleProjection(self, ir: Any, node: PlanNode) -> None:
        node.op = "select"
        node.args = {"exprs": [pl.col(name) for name in node.names]}

    # ------------------------------------------------------------------ collectives
    def _GroupBy(self, ir: Any, node: PlanNode) -> None:
        options = ir.options
        if options.dynamic is not None or options.rolling is not None:
            raise self.exprs.unsupported("a dynamic or rolling group-by")
        if ir.apply:
            raise self.exprs.unsupported("a group-by with a Python function")
        if ir.maintain_order:
            raise self.exprs.unsupported("a group-by that keeps the order of its groups")
        keys = [self.exprs.named(e) for e in ir.keys]
        parts = AggregateParts()
        for e in ir.aggs:
            self.exprs.aggregated(e, parts)
        node.op = "aggregate"
        node.args = {"keys": keys, "parts": parts, "slice": _slice_of(options.slice)}

    def _Join(self, ir: Any, node: PlanNode) -> None:
        how, nulls_equal, zlice, suffix, coalesce, *rest = ir.options
        maintain_order = rest[0] if rest else "none"
        left, right = node.inputs
        with _at(self.visitor, left.id):
            left_columns = [self.exprs.is_column(e) for e in ir.left_on]
            left_on = [self.exprs.expr(e.node) for e in ir.left_on]
        with _at(self.visitor, right.id):
            right_columns = [self.exprs.is_column(e) for e in ir.right_on]
            right_on = [self.exprs.expr(e.node) for e in ir.right_on]
        predicate = None
        comparisons: list[tuple[str, pl.Expr, pl.Expr]] = []
        if isinstance(how, tuple):
            if how[0] == "IEJoin":  # a cross join filtered by comparisons of both sides
                ops = [variant(op) for op in how[1:] if op is not None]
                comparisons = list(zip(ops, left_on, right_on, strict=False))
                how = "Cross"
            elif len(how) == 2 and how[1] == "fused_predicate" and getattr(ir, "predicate", None) is not None:
                how = how[0]
                with _at(self.visitor, node.id):
                    predicate = self.exprs.without_hints(ir.predicate.node)
            else:
                raise self.exprs.unsupported(f"a join of kind {how!r}")
        if how not in _JOIN_HOWS:
            raise self.exprs.unsupported(f"a join of kind {how!r}")
        if nulls_equal:
            raise self.exprs.unsupported("a join whose null keys match (`nulls_equal=True`)")
        if maintain_order not in ("none", None):
            raise self.exprs.unsupported(f"a join that keeps the order of rows ({maintain_order!r})")
        joined = _JOIN_HOWS[how]
        if joined in ("inner", "left", "right") and not coalesce:
            raise self.exprs.unsupported(f"a {joined} join that keeps both key columns (`coalesce=False`)")
        if joined == "full" and coalesce:
            raise self.exprs.unsupported("a full join that merges its key columns (`coalesce=True`)")
        if joined != "cross" and not (all(left_columns) and all(right_columns)):
            raise self.exprs.unsupported("a join on expressions (not columns)")
        extra = [f"__sn_cmp{i}" for i in range(len(comparisons))]
        extra_left: dict[str, pl.DataType] = {f"{n}l": pl.Null() for n in extra}
        extra_right: dict[str, pl.DataType] = {f"{n}r": pl.Null() for n in extra}
        produced = joined_names(
            pl.Schema({**left.schema, **extra_left}),
            pl.Schema({**right.schema, **extra_right}),
            left_columns, right_columns, joined, suffix,
        )  # fmt: skip
        missing = [name for name in node.names if name not in produced]
        if missing:
            raise self.exprs.unsupported(f"a join whose columns {missing} the actors would not make")
        node.op = "join"
        node.args = {
            "how": joined,
            "left_on": [] if joined == "cross" else left_columns,
            "right_on": [] if joined == "cross" else right_columns,
            "suffix": suffix,
            "predicate": predicate,
            "comparisons": comparisons,
            "produced": produced,
            "slice": _slice_of(zlice),
        }

    def _Sort(self, ir: Any, node: PlanNode) -> None:
        stable, nulls_last, descending = ir.sort_options
        by = [self.exprs.named(e) for e in ir.by_column]
        columns = [self.exprs.is_column(e) for e in ir.by_column]
        count = len(by)
        node.op = "sort"
        node.args = {
            "by": by,
            "columns": columns,
            "descending": _flags(descending, count),
            "nulls_last": _flags(nulls_last, count),
            "stable": bool(stable),
            "slice": _slice_of(ir.slice),
        }

    def _Slice(self, ir: Any, node: PlanNode) -> None:
        node.op = "slice"
        node.args = {"slice": (ir.offset, ir.len)}

    def _Distinct(self, ir: Any, node: PlanNode) -> None:
        keep, subset, maintain_order, zlice = ir.options
        node.op = "distinct"
        node.args = {
            "keep": keep,
            "subset": None if subset is None else list(subset),
            "maintain_order": bool(maintain_order),
            "slice": _slice_of(zlice),
        }

    def _Union(self, ir: Any, node: PlanNode) -> None:
        zlice = getattr(ir, "slice", None)
        node.op = "union"
        node.args = {"slice": _slice_of(zlice), "maintain_order": bool(getattr(ir, "maintain_order", True))}

    def _HConcat(self, ir: Any, node: PlanNode) -> None:
        node.op = "hconcat"

    def _Cache(self, ir: Any, node: PlanNode) -> None:
        node.op = "cache"
        node.args = {"key": ir.id_}

    def _MapFunction(self, ir: Any, node: PlanNode) -> None:
        name, *options = ir.function
        if name in ("rechunk",):
            node.op = "select"
            node.args = {"exprs": [pl.col(c) for c in node.names]}
        elif name == "explode":
            node.op = "explode"
            empty_as_null, keep_nulls = (bool(o) for o in options[1:3])
            node.args = {"columns": list(options[0]), "empty_as_null": empty_as_null, "keep_nulls": keep_nulls}
        elif name == "unpivot":
            index, on, variable, value = options[:4]
            node.op = "unpivot"
            node.args = {"index": list(index), "on": list(on), "variable": variable, "value": value}
        elif name == "row_index":
            node.op = "row_index"
            node.args = {"name": options[0], "offset": options[1]}
        else:
            raise self.exprs.unsupported(f"the map function `{name}`")


_SCAN_POLICIES = {
    "missing_columns_policy": "raise",
    "extra_columns_policy": "raise",
    "column_mapping": None,
    "default_values": None,
}
"""A scan's options for files whose columns differ from the first file's, as Polars gives
them by default; `read_parquet` reads files of the first one's columns only."""

_SCAN_CASTS = {
    "integer_upcast": False, "integer_to_float_cast": False, "float_upcast": False,
    "float_downcast": False, "datetime_nanoseconds_downcast": False,
    "datetime_microseconds_downcast": False, "datetime_milliseconds_upcast": False,
    "datetime_microseconds_upcast": False, "datetime_convert_timezone": False,
    "categorical_to_string": False, "missing_struct_fields": "raise",
    "extra_struct_fields": "raise",
}  # fmt: skip
"""The casts of a file's columns to the scan's types, as Polars gives them by default (none;
a column of nulls is read as the scan's type, which `read_parquet` does not meet)."""


def _csv_names(path: str, delimiter: str, has_header: bool) -> list[str] | None:
    """The column names Polars gives a CSV file (its header's, or its own for a file without
    one); None for a compressed or empty file, or a header Polars renames (a repeated name)."""
    with open(path, "rb") as file:
        start = file.read(4)
    if not start or start.startswith(_COMPRESSED):
        return None
    names = pl.scan_csv(path, separator=delimiter, has_header=has_header, infer_schema=False)
    polars_names = names.collect_schema().names()
    if has_header:
        with open(path, encoding="utf-8-sig", newline="") as text:
            header = next(csv.reader(text, delimiter=delimiter, quotechar='"'), None)
        if header != polars_names:
            return None
    return polars_names


def _holds_a_quote(path: str) -> bool:
    """Whether the file holds a ``"``: only a quoted value can hold a line break, which
    Polars reads and `read_csv` reads with ``multiline=True`` (each file then read whole,
    never cut into byte ranges). A search for one byte runs at memory speed."""
    with open(path, "rb") as file:
        try:
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return mapped.find(b'"') != -1
        except ValueError:  # an empty file maps to nothing
            return False


def _row_wise(exprs: list[pl.Expr], *, select: bool = False) -> bool:
    """Whether a plan step can evaluate ``exprs`` one chunk at a time."""
    try:
        check_row_wise(exprs, actor="from_polars_query", where="expressions", select=select)
    except ExpressionError:
        return False
    return True


def joined_names(
    left: pl.Schema, right: pl.Schema, left_on: list[Any], right_on: list[Any], how: str, suffix: str
) -> list[str]:
    """The columns of the library's join of frames of these schemas (Polars' own join,
    resolved without running it)."""
    lf, rf = pl.LazyFrame(schema=left), pl.LazyFrame(schema=right)
    if how == "cross":
        constant = pl.lit(0, dtype=pl.UInt8).alias("__sn_cross")
        lf, rf = lf.with_columns(constant), rf.with_columns(constant)
        joined = lf.join(rf, on="__sn_cross", how="inner", suffix=suffix)
    elif list(left_on) == list(right_on):
        joined = lf.join(rf, on=left_on, how=how, suffix=suffix)  # type: ignore[arg-type]
    else:
        joined = lf.join(rf, left_on=left_on, right_on=right_on, how=how, suffix=suffix)  # type: ignore[arg-type]
    return joined.collect_schema().names()


def _flags(value: Any, count: int) -> list[bool]:
    if isinstance(value, bool):
        return [value] * count
    flags = [bool(v) for v in value]
    return flags if len(flags) == count else (flags * count)[:count]


def _slice_of(zlice: Any) -> tuple[int, int | None] | None:
    """``(offset, length)`` of a slice Polars pushed into a node, or None."""
    if zlice is None:
        return None
    offset, length = zlice[0], zlice[1]
    return int(offset), None if length is None else int(length)
