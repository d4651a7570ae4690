"""Polars' expression IR, read back into Polars expressions.

Polars hands its optimised plan over through a `NodeTraverser` (``lf._ldf.visit()``,
the interface cudf-polars reads): ``view_expression(n)`` gives one node of an
expression (a column, a literal, an operator, a function with its options...),
``get_dtype(n)`` its type. `ExprReader` rebuilds a `pl.Expr` from such a node, so
that the plan steps of the actor library (which run Polars expressions per chunk)
evaluate exactly what Polars would. It knows the nodes and functions a query of
scans, filters, projections, joins and aggregations uses; any other raises
`Unsupported`, naming the node and Polars' IR version, and the translator leaves
that part of the plan to Polars itself.

`ExprReader.aggregated` reads an expression over aggregates (a ``group_by().agg``
item, a ``select`` of sums): every aggregation becomes a column of a group-by's
result (an `Agg` computed from partials), its input a column of a projection
before it, and what is computed from the aggregates an expression after it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from streamnet import Agg

__all__ = ["AggregateParts", "ExprReader", "Unsupported"]


class Unsupported(NotImplementedError):
    """A node of Polars' plan the translator cannot turn into actors (the message says which)."""


def kind(obj: object) -> str:
    """The name of an IR node's class (``"Column"``, ``"BinaryExpr"``, ``"Join"``...)."""
    return type(obj).__name__


def variant(name: object) -> str:
    """The variant of a Polars IR enum (``Operator.Eq`` -> ``"Eq"``); a string stays itself."""
    return name if isinstance(name, str) else str(name).rsplit(".", 1)[-1]


_OPERATORS: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "Eq": operator.eq,
    "NotEq": operator.ne,
    "Lt": operator.lt,
    "LtEq": operator.le,
    "Gt": operator.gt,
    "GtEq": operator.ge,
    "Plus": operator.add,
    "Minus": operator.sub,
    "Multiply": operator.mul,
    "TrueDivide": operator.truediv,
    "FloorDivide": operator.floordiv,
    "Modulus": operator.mod,
    "And": operator.and_,
    "Or": operator.or_,
    "Xor": operator.xor,
    "LogicalAnd": operator.and_,
    "LogicalOr": operator.or_,
    "EqValidity": pl.Expr.eq_missing,
    "NotEqValidity": pl.Expr.ne_missing,
}

# Aggregations a group-by computes from partials (`groupby_agg`), by Polars' IR name.
_DECOMPOSABLE = frozenset({"sum", "min", "max", "mean", "count", "n_unique", "first", "last", "std", "var"})
# Those that need a numeric input (a Date has no partial mean in the actor library).
_NUMERIC_ONLY = frozenset({"sum", "mean", "std", "var"})
# Those whose input may be a filtered column (`x.filter(c).sum()`): the rows filtered out
# become nulls, which these skip.
_SKIP_NULLS = frozenset({"sum", "min", "max", "mean", "count"})

_TEMPORAL = {
    "Year": "year", "Month": "month", "Day": "day", "Quarter": "quarter", "WeekDay": "weekday",
    "Hour": "hour", "Minute": "minute", "Second": "second", "Millisecond": "millisecond",
    "Microsecond": "microsecond", "Nanosecond": "nanosecond", "OrdinalDay": "ordinal_day",
    "Week": "week", "IsoYear": "iso_year", "Date": "date", "Time": "time",
    "IsLeapYear": "is_leap_year", "MonthStart": "month_start", "MonthEnd": "month_end",
    "Century": "century", "Millennium": "millennium",
}  # fmt: skip
_STRING_UNARY = {
    "LenChars": "len_chars", "LenBytes": "len_bytes", "Lowercase": "to_lowercase",
    "Uppercase": "to_uppercase", "Reverse": "reverse",
}  # fmt: skip
_UNARY: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "negate": operator.neg, "abs": pl.Expr.abs, "sqrt": pl.Expr.sqrt, "floor": pl.Expr.floor,
    "ceil": pl.Expr.ceil, "exp": pl.Expr.exp, "sign": pl.Expr.sign,
}  # fmt: skip
_BOOLEAN_UNARY = {
    "IsNull": pl.Expr.is_null, "IsNotNull": pl.Expr.is_not_null, "Not": pl.Expr.not_,
    "IsNan": pl.Expr.is_nan, "IsNotNan": pl.Expr.is_not_nan, "IsFinite": pl.Expr.is_finite,
    "IsInfinite": pl.Expr.is_infinite,
}  # fmt: skip


@dataclass
class AggregateParts:
    """An aggregation split in three: the projection before it, the aggregations of a
    group-by (`Agg`), and the expressions after it that read the aggregates."""

    inputs: dict[str, pl.Expr] = field(default_factory=dict)
    """Columns the projection computes, by name (``__sn_in0``...)."""
    aggs: list[Agg] = field(default_factory=list)
    """What the group-by computes, named ``__sn_agg0``..."""
    finals: dict[str, pl.Expr] = field(default_factory=dict)
    """Each output, computed from the aggregates, by its name."""
    rows: bool = False
    """Whether the expressions after the group-by also read the rows' columns (aggregates of
    the whole input beside each row: ``x > x.mean()``), rather than the aggregates alone."""

    def input_column(self, expr: pl.Expr) -> str:
        """The projection's column that holds ``expr`` (added unless one already does)."""
        shown = str(expr)
        for name, known in self.inputs.items():
            if str(known) == shown:
                return name
        name = f"__sn_in{len(self.inputs)}"
        self.inputs[name] = expr
        return name

    def aggregate(self, column: str | None, how: str) -> pl.Expr:
        """The column of the group-by's result that holds ``how`` of ``column``."""
        for agg in self.aggs:
            if agg.column == column and agg.how == how:
                return pl.col(agg.output)
        name = f"__sn_agg{len(self.aggs)}"
        self.aggs.append(Agg(column, how, name))  # type: ignore[arg-type]
        return pl.col(name)


class ExprReader:
    """Rebuilds Polars expressions from the expression nodes of a `NodeTraverser`.

    The traverser must stand on the plan node whose input the expressions read
    (their types are looked up there).
    """

    def __init__(self, visitor: Any, version: tuple[int, int]) -> None:
        self.visitor = visitor
        self.version = version
        self.substitutes: dict[str, int] = {}
        """Columns read as the expression (node) that makes them: the common
        subexpressions of a node's input that Polars computes once (`_Reader.node`)."""

    def unsupported(self, what: str) -> Unsupported:
        return Unsupported(f"{what} (Polars {pl.__version__}, plan version {self.version})")

    def _view(self, n: int) -> Any:
        """Expression node ``n``; one Polars shows no other engine (``sort_by(...).first()``
        as a ``min_by``, say) is one the translator cannot read."""
        try:
            return self.visitor.view_expression(n)
        except NotImplementedError as exc:
            raise self.unsupported(f"an expression Polars shows other engines not: {exc}") from None

    # ------------------------------------------------------------------ plain expressions
    def expr(self, n: int) -> pl.Expr:
        """The expression of node ``n``."""
        return self._read(n, None)

    def named(self, e: Any) -> pl.Expr:
        """A named expression of the plan (``PyExprIR``), aliased to its output name."""
        return self.expr(e.node).alias(e.output_name)

    def is_column(self, e: Any) -> str | None:
        """The column a named expression reads as it is, or None if it computes something."""
        node = self._view(e.node)
        if kind(node) != "Column" or node.name in self.substitutes:
            return None
        return str(node.name)

    def without_hints(self, n: int) -> pl.Expr | None:
        """A predicate without Polars' ``dynamic_pred`` hints (filters a top-k adds to prune
        its input as it learns its k-th value; they keep every row the result needs), or None
        if nothing else is left."""
        node = self._view(n)
        if kind(node) == "Function" and variant(node.function_data[0]) == "dynamic_pred":
            return None
        if kind(node) == "BinaryExpr" and variant(node.op) in ("And", "LogicalAnd"):
            left, right = self.without_hints(node.left), self.without_hints(node.right)
            if left is None or right is None:
                return right if left is None else left
            return left & right
        return self.expr(n)

    # ------------------------------------------------------------------ aggregations
    def aggregated(self, e: Any, parts: AggregateParts) -> None:
        """Split a named expression over aggregates into ``parts`` (see `AggregateParts`)."""
        parts.finals[e.output_name] = self._read(e.node, parts).alias(e.output_name)

    def beside_rows(self, n: int, parts: AggregateParts) -> pl.Expr:
        """Expression ``n`` over the rows and aggregates of the whole input (``x > x.mean()``),
        its aggregates split into ``parts`` (made with ``rows=True``)."""
        return self._read(n, parts)

    def _aggregation(self, node: Any, parts: AggregateParts) -> pl.Expr:
        how = node.name
        args = node.arguments if isinstance(node.arguments, list) else [node.arguments]
        if how not in _DECOMPOSABLE or len(args) != 1:
            raise self.unsupported(f"aggregation `{how}` (not computed from partials)")
        (arg,) = args
        if how in ("std", "var") and node.options != 1:
            raise self.unsupported(f"aggregation `{how}` with ddof={node.options}")
        every_row = how == "count" and node.options is True  # count(include_nulls=True): len
        inner = self._view(arg)
        if kind(inner) == "Filter":
            if every_row:  # the rows the filter keeps, nulls or not
                value: pl.Expr = pl.when(self.expr(inner.by)).then(pl.lit(1, pl.UInt8))
                return parts.aggregate(parts.input_column(value), "count")
            if how not in _SKIP_NULLS:
                raise self.unsupported(f"aggregation `{how}` of a filtered column")
            value = pl.when(self.expr(inner.by)).then(self.expr(inner.input))
            dtype = self.visitor.get_dtype(inner.input)
        else:
            value = self.expr(arg)  # read even for a len: it must keep every row
            dtype = self.visitor.get_dtype(arg)
            if every_row:
                return parts.aggregate(None, "len")
        if how in _NUMERIC_ONLY and not (dtype.is_numeric() or dtype == pl.Boolean):
            raise self.unsupported(f"aggregation `{how}` of a {dtype} column")
        if dtype in (pl.Int128, pl.UInt128):  # as Polars widens a sum of counts (a `len`
            # pushed into a concat's inputs): its input would be a column Arrow cannot hold
            raise self.unsupported(f"aggregation `{how}` of a {dtype} column")
        return parts.aggregate(parts.input_column(value), how)

    # ------------------------------------------------------------------ the walk
    def _read(self, n: int, parts: AggregateParts | None) -> pl.Expr:
        node = self._view(n)
        k = kind(node)
        sub: Callable[[int], pl.Expr] = lambda i: self._read(i, parts)  # noqa: E731
        if k == "Column":
            if node.name in self.substitutes:
                return self._read(self.substitutes[node.name], parts)
            if parts is not None and not parts.rows:
                raise self.unsupported(f"column `{node.name}` outside an aggregation")
            return pl.col(node.name)
        if k == "Literal":
            return self._literal(node, n)
        if k == "Len":
            return pl.len() if parts is None else parts.aggregate(None, "len")
        if k == "Agg":
            if parts is not None:
                return self._aggregation(node, parts)
            return self._plain_aggregation(node)
        if k == "BinaryExpr":
            op = _OPERATORS.get(variant(node.op))
            if op is None:
                raise self.unsupported(f"operator `{variant(node.op)}`")
            return op(sub(node.left), sub(node.right))
        if k == "Cast":
            inner = sub(node.expr)
            if node.options == 2:
                return inner.cast(node.dtype, wrap_numerical=True)
            return inner.cast(node.dtype, strict=node.options == 0)
        if k == "Ternary":
            return pl.when(sub(node.predicate)).then(sub(node.truthy)).otherwise(sub(node.falsy))
        if k == "Function":
            return self._function(node, n, sub)
        if k == "Filter" and parts is None:
            return sub(node.input).filter(sub(node.by))
        raise self.unsupported(f"expression node `{k}`")

    def _literal(self, node: Any, n: int) -> pl.Expr:
        value = node.value
        dtype = self.visitor.get_dtype(n)
        if kind(value) == "PySeries":
            series = pl.Series._from_pyseries(value)  # noqa: SLF001 (a Series literal)
            if isinstance(dtype, pl.List) and not isinstance(series.dtype, pl.List):
                series = series.implode()  # one list value, as Polars' plan holds it
            return pl.lit(series)
        if isinstance(value, list):
            # One list value (``is_in``'s collection): a Series of its elements imploded,
            # not the elements as a column, which `is_in` reads ambiguously.
            return pl.lit(pl.Series(value, dtype=dtype.inner).implode())
        if value is None or dtype == pl.Null:
            return pl.lit(None, dtype=dtype)
        return pl.lit(value, dtype=dtype)

    def _plain_aggregation(self, node: Any) -> pl.Expr:
        how = node.name
        args = node.arguments if isinstance(node.arguments, list) else [node.arguments]
        if len(args) != 1:
            raise self.unsupported(f"aggregation `{how}` of {len(args)} inputs")
        inner = self.expr(args[0])
        if how in ("std", "var"):
            return getattr(inner, how)(ddof=node.options)  # type: ignore[no-any-return]
        if how == "count" and node.options is True:
            return inner.len()
        if how in ("sum", "min", "max", "mean", "median", "count", "n_unique", "first", "last"):
            return getattr(inner, how)()  # type: ignore[no-any-return]
        raise self.unsupported(f"aggregation `{how}`")

    def _raw_literal(self, n: int) -> Any:
        node = self._view(n)
        if kind(node) != "Literal":
            raise self.unsupported(f"a `{kind(node)}` where a literal value is expected")
        return node.value

    def _function(self, node: Any, n: int, sub: Callable[[int], pl.Expr]) -> pl.Expr:
        name, *options = node.function_data
        ins = list(node.input)
        family = type(name).__name__ if not isinstance(name, str) else "str"
        what = variant(name)
        first = sub(ins[0]) if ins else None
        rest = ins[1:]
        if family == "BooleanFunction":
            if what in _BOOLEAN_UNARY and first is not None:
                return _BOOLEAN_UNARY[what](first)
            if what == "IsIn" and first is not None:
                values = self._view(rest[0])
                if kind(values) != "Literal":
                    raise self.unsupported("`is_in` of an expression")
                nulls_equal = bool(options[0]) if options else False
                return first.is_in(self._literal(values, rest[0]), nulls_equal=nulls_equal)
            if what == "IsBetween" and first is not None:
                return first.is_between(sub(rest[0]), sub(rest[1]), closed=options[0])
            if what in ("AllHorizontal", "AnyHorizontal"):
                exprs = [sub(i) for i in ins]
                return pl.all_horizontal(exprs) if what == "AllHorizontal" else pl.any_horizontal(exprs)
        elif family == "ListFunction" and what == "Concat":
            return pl.concat_list([sub(i) for i in ins])
        elif family == "StringFunction" and first is not None:
            return self._string(what, options, first, rest, sub, n)
        elif family == "TemporalFunction" and first is not None:
            if what in _TEMPORAL:
                return getattr(first.dt, _TEMPORAL[what])()  # type: ignore[no-any-return]
            if what == "ToString":
                return first.dt.to_string(options[0])
            if what == "Truncate":
                return first.dt.truncate(self._raw_literal(rest[0]))
            if what == "OffsetBy":
                return first.dt.offset_by(sub(rest[0]))
        elif family == "str":
            if what in _UNARY and first is not None:
                return _UNARY[what](first)
            if what == "round" and first is not None:
                return first.round(options[0], mode=options[1]) if len(options) > 1 else first.round(options[0])
            if what == "pow" and first is not None:
                return first.pow(sub(rest[0]))
            if what == "log" and first is not None:
                return first.log(self._raw_literal(rest[0]))
            if what == "clip" and first is not None:
                has_min, has_max = options
                bounds = iter(rest)
                low = sub(next(bounds)) if has_min else None
                high = sub(next(bounds)) if has_max else None
                return first.clip(low, high)
            if what == "fill_null" and first is not None:
                return first.fill_null(sub(rest[0]))
            if what == "coalesce":
                return pl.coalesce([sub(i) for i in ins])
            if what == "fused" and len(ins) == 3:
                a, b, c = (sub(i) for i in ins)
                flavor = options[0]
                if flavor == "fma":
                    return a * b + c
                if flavor == "fms":
                    return a * b - c
                if flavor == "fsm":
                    return a - b * c
            if what in ("sum_horizontal", "max_horizontal", "min_horizontal", "mean_horizontal"):
                exprs = [sub(i) for i in ins]
                if what == "sum_horizontal":
                    return pl.sum_horizontal(exprs, ignore_nulls=bool(options[0]) if options else True)
                if what == "mean_horizontal":
                    return pl.mean_horizontal(exprs, ignore_nulls=bool(options[0]) if options else True)
                return getattr(pl, what)(exprs)  # type: ignore[no-any-return]
            if what == "replace" and first is not None:
                return first.replace(sub(rest[0]).explode(), sub(rest[1]).explode())
        raise self.unsupported(f"function `{family}.{what}`")

    def _string(
        self, what: str, options: list[Any], first: pl.Expr, rest: list[int],
        sub: Callable[[int], pl.Expr], n: int,
    ) -> pl.Expr:  # fmt: skip
        if what in _STRING_UNARY:
            return getattr(first.str, _STRING_UNARY[what])()  # type: ignore[no-any-return]
        if what == "StartsWith":
            return first.str.starts_with(sub(rest[0]))
        if what == "EndsWith":
            return first.str.ends_with(sub(rest[0]))
        if what == "Contains":
            literal, strict = options
            return first.str.contains(sub(rest[0]), literal=literal, strict=strict)
        if what == "Slice":
            return first.str.slice(sub(rest[0]), sub(rest[1]))
        if what in ("Head", "Tail"):
            return getattr(first.str, what.lower())(sub(rest[0]))  # type: ignore[no-any-return]
        if what == "ZFill":
            return first.str.zfill(sub(rest[0]))
        if what in ("StripChars", "StripCharsStart", "StripCharsEnd"):
            method = {"StripChars": "strip_chars", "StripCharsStart": "strip_chars_start",
                      "StripCharsEnd": "strip_chars_end"}[what]  # fmt: skip
            return getattr(first.str, method)(sub(rest[0]))  # type: ignore[no-any-return]
        if what == "Replace":
            count, literal = options
            return first.str.replace(sub(rest[0]), sub(rest[1]), literal=literal, n=count)
        if what == "ConcatHorizontal":
            separator, ignore_nulls = options
            return pl.concat_str([first, *(sub(i) for i in rest)], separator=separator,
                                 ignore_nulls=ignore_nulls)  # fmt: skip
        if what == "Strptime":
            fmt, strict, exact, cache = options
            dtype = self.visitor.get_dtype(n)
            return first.str.strptime(
                dtype, fmt, strict=strict, exact=exact, cache=cache,
                ambiguous=sub(rest[0]) if rest else "raise",
            )  # fmt: skip
        raise self.unsupported(f"function `StringFunction.{what}`")
