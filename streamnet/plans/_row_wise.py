"""Row-wise expressions: the only ones a plan may evaluate one chunk at a time.

A plan's steps (the ``filter``, ``select`` and ``with_columns`` actors', the
exact filter of ``read_parquet``) run a Polars expression on each chunk separately. That gives
what Polars gives on the whole table only when the expression is *row-wise*:
each output row depends on the same input row alone (scalar literals
broadcast). ``pl.col("x") > pl.col("x").mean()``, ``cum_sum()``, ``shift()``,
``rank()``, ``over(...)``, ``pl.len()``, ``head()``... would restart at every
chunk and silently give another answer, so they are refused when the node is
made, with an :class:`~streamnet.ExpressionError`.

The check walks the expression's tree as Polars serializes it (the same on
Polars 1.44 and 2.x): column references, scalar literals, operators, casts,
``when/then/otherwise`` and an allowlist of element-wise functions pass (the
``str``, ``dt``, ``list``, ``arr``, ``struct``, ``bin`` and ``cat``
namespaces, but for the few of their functions that read other rows);
aggregations, windows, sorts, slices and anything the check does not know are
refused. So are a function that infers from the values it sees
(``str.to_date()`` without a format, ``ambiguous="infer"``) and a set of values
given as an expression (``x.is_in(pl.col("y"))``, which reads all of ``y``). A
Python function passes when Polars knows it works row by row
(``map_elements``, ``map_batches(..., is_elementwise=True)``); Polars serializes
it with ``cloudpickle``, a dependency of streamnet. (Polars 2's
``Expr.meta.is_row_separable`` is no help: it calls ``x > x.mean()``
row-separable, needs the schema for many expressions, and Polars 1.44 does not
have it.)
"""

from __future__ import annotations

import io
import json
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from streamnet._errors import ExpressionError

__all__ = ["calls_python_function", "check_row_wise", "not_row_wise"]

_ADVICE = (
    "actors like this one evaluate expressions one chunk at a time, so only row-wise "
    "expressions give what Polars gives on the whole table: use `groupby_agg` (and `join` "
    "its result back) for an aggregate over the whole stream, a collective (`sort`, "
    "`distinct`, ...) for work across rows, or `map_chunks` where a result per chunk is "
    "what you want"
)

# Nodes that read the current row's value of a column (or of a struct field, or of a
# list element inside `list.eval`).
_COLUMNS = frozenset(
    {"Column", "Columns", "Selector", "Nth", "Wildcard", "DtypeColumn", "IndexColumn", "Field"}
)
_ELEMENT = "Element"
_UNKNOWN = "is not known to work row by row"

# Why a node that is never row-wise is refused; completes "`<part>` ...".
_REFUSED_NODES: Mapping[str, str] = {
    "Agg": "aggregates over rows",
    "Over": "is a window over rows (`over`)",
    "Window": "is a window over rows (`over`)",
    "Rolling": "is a rolling window over rows",
    "Len": "counts rows",
    "Slice": "takes a slice of the rows",
    "Sort": "sorts rows",
    "SortBy": "sorts rows",
    "Gather": "takes rows by position",
    "Filter": "filters rows",
    "Explode": "changes the number of rows",
    "AnonymousAgg": "aggregates over rows",
}

# Functions that compute each row from that row alone. A name maps to None
# when all its variants are row-wise, or to the set of variants that are.
_ROW_WISE_FUNCTIONS: Mapping[str, frozenset[str] | None] = {
    "Abs": None,
    "Negate": None,
    "Sign": None,
    "Exp": None,
    "Log": None,
    "Log1p": None,
    "Pow": None,
    "Trigonometry": None,
    "Round": None,
    "RoundSF": None,
    "Floor": None,
    "Ceil": None,
    "Truncate": None,
    "Erf": None,
    "Erfc": None,
    "Rechunk": None,
    "Clip": None,
    "FillNull": None,
    "Coalesce": None,
    "Replace": None,
    "ReplaceStrict": None,
    "Hash": None,
    "Reinterpret": None,
    "ToPhysical": None,
    "SetSortedFlag": None,
    "Cut": None,
    "MaxHorizontal": None,
    "MinHorizontal": None,
    "SumHorizontal": None,
    "MeanHorizontal": None,
    "RepeatBy": None,
    "AsStruct": None,
    "Business": None,
    "Boolean": frozenset(
        {
            "IsNull",
            "IsNotNull",
            "IsNan",
            "IsNotNan",
            "IsFinite",
            "IsInfinite",
            "IsBetween",
            "IsClose",
            "IsIn",
            "Not",
            "AnyHorizontal",
            "AllHorizontal",
        }
    ),
    "Bitwise": frozenset(
        {"CountOnes", "CountZeros", "LeadingOnes", "LeadingZeros", "TrailingOnes", "TrailingZeros"}
    ),
}

# Namespaces whose functions work on each row's own value, but for these exceptions.
_ROW_WISE_NAMESPACES: Mapping[str, frozenset[str]] = {
    "StringExpr": frozenset({"ConcatVertical"}),  # `str.join` joins the rows into one
    "TemporalExpr": frozenset(),
    "ListExpr": frozenset(),
    "ArrayExpr": frozenset({"Explode"}),  # `arr.explode` makes rows of the elements
    "StructExpr": frozenset(),
    "BinaryExpr": frozenset(),
    "Categorical": frozenset({"GetCategories"}),
}

# Inputs (by position) that are a set of values rather than a value per row: `is_in`'s
# values, `replace`'s old and new values, the patterns of `str.contains_any` and its
# kin, business-day holidays. A literal there (a Series too) is fine; an expression
# would be read as a whole column, so as each chunk's values here.
_VALUE_INPUTS: Mapping[str, tuple[int, ...]] = {
    "Boolean.IsIn": (1,),
    "Replace": (1, 2),
    "ReplaceStrict": (1, 2),
    "StringExpr.ContainsAny": (1,),
    "StringExpr.ReplaceMany": (1, 2),
    "StringExpr.ExtractMany": (1,),
    "StringExpr.FindMany": (1,),
    "Business": (-1,),
}

# Functions whose second input `ambiguous="infer"` resolves a time from its neighbours.
_AMBIGUOUS = frozenset({"TemporalExpr.ReplaceTimeZone", "StringExpr.Strptime"})


def not_row_wise(expr: pl.Expr) -> tuple[str, str] | None:
    """The first part of ``expr`` that is not row-wise and why, or None when it is row-wise.

    The part is shown as Polars prints it; the reason completes a sentence that
    starts with it (``"aggregates over rows"``).
    """
    return _inspected(expr).refused


def calls_python_function(expr: pl.Expr) -> bool:
    """Whether ``expr`` calls a Python function (whose result types Polars learns only
    from the data), or cannot be inspected."""
    return _inspected(expr).calls_python


@dataclass(frozen=True, slots=True)
class _Inspection:
    """What the check learnt of one expression from its serialized tree."""

    refused: tuple[str, str] | None
    """The first part that is not row-wise and why (`not_row_wise`)."""
    reads_rows: bool
    """Whether it reads a column, rather than being made of literals only."""
    calls_python: bool


_inspections: dict[int, tuple[weakref.ref[pl.Expr], _Inspection]] = {}
"""Each expression's inspection while it lives, by its id: an actor's expressions are
checked when it is made and again when a plan of its steps is compiled, and serializing
an expression costs about as much as the rest of the check."""


def _inspected(expr: pl.Expr) -> _Inspection:
    """The inspection of ``expr``, made once while it lives (`_inspections`)."""
    key = id(expr)
    kept = _inspections.get(key)
    if kept is not None and kept[0]() is expr:
        return kept[1]
    try:
        text = expr.meta.serialize(format="json")
        tree = _tree(text)
    except Exception as exc:  # a Python function Polars cannot pickle, an unknown node
        made = _Inspection((str(expr), (
            f"cannot be inspected (Polars cannot serialize it: {type(exc).__name__}: {exc})"
        )), reads_rows=False, calls_python=True)  # fmt: skip
    else:
        found = _refusal(tree)
        made = _Inspection(
            None if found is None else (_show(found[0]), found[1]),
            reads_rows=_reads_rows(tree),
            calls_python='"AnonymousFunction"' in text or '"PythonUdf"' in text,
        )

    def forget(_: weakref.ref[pl.Expr]) -> None:
        _inspections.pop(key, None)

    try:
        ref = weakref.ref(expr, forget)
    except TypeError:  # an expression that cannot be referred to weakly: not kept
        return made
    _inspections[key] = (ref, made)
    return made


_SERIES = '"Series":['
LONG_SERIES = 4096
"""Bytes of a serialized Series literal beyond which the check leaves out its data: a
key filter's ``is_in`` of a million keys serializes to megabytes of JSON numbers, which
took longer to parse than the plan's every chunk took to run. The check never looks into
a literal's data (a literal that is refused is shown by its node name instead)."""


def _tree(text: str) -> Any:
    """An expression's tree from Polars' JSON serialization ``text``, long Series
    literals' data left out (`LONG_SERIES`)."""
    parts, position = [], 0
    while (start := text.find(_SERIES, position)) != -1:
        data = start + len(_SERIES)
        end = text.find("]", data)  # the data is a flat list of byte values
        if end == -1:
            break
        parts.append(text[position:data] if text.count(",", data, end) >= LONG_SERIES else text[position:end])
        position = end
    parts.append(text[position:])
    return json.loads("".join(parts))


def _refusal(node: Any) -> tuple[Any, str] | None:
    """The first node of a serialized expression that is not row-wise, and why."""
    if isinstance(node, str):
        if node in _COLUMNS or node == _ELEMENT:
            return None
        return node, _REFUSED_NODES.get(node, _UNKNOWN)
    if not isinstance(node, dict) or len(node) != 1:
        return node, _UNKNOWN
    ((kind, body),) = node.items()
    if kind in _COLUMNS:
        return None
    if kind == "Literal":
        if isinstance(body, dict) and set(body) <= {"Dyn", "Scalar"}:
            return None
        return node, "is a Series literal, whose rows do not line up with the stream's"
    if kind == "Gather" and _is_lookup(body):
        return _refusal(body["idx"])
    if kind in _REFUSED_NODES:
        return node, _REFUSED_NODES[kind]
    if kind == "Function":
        return _function_refusal(node, body)
    if kind == "AnonymousFunction":
        flags = str(body.get("options", {}).get("flags", ""))
        if "ROW_SEPARABLE" in flags and "LENGTH_PRESERVING" in flags:
            return _first(body["input"])
        return node, (
            "calls a Python function on whole columns (use `map_elements`, or "
            "`map_batches(..., is_elementwise=True)` if it works row by row)"
        )
    if kind == "Eval":  # the evaluation runs within each row's list or array
        variant = body.get("variant")
        name = next(iter(variant)) if isinstance(variant, dict) else variant
        if name in ("List", "Array", "ListAgg", "ArrayAgg"):
            return _refusal(body["expr"])
        return node, "evaluates over the rows before each row"
    return _first(_children(kind, body), node)


def _children(kind: str, body: Any) -> list[Any] | None:
    """The sub-expressions of a node that passes when they all do; None for an unknown node."""
    if kind in ("Alias", "Exclude"):  # [expression, name or names]
        return [body[0]]
    if kind == "KeepName":
        return [body]
    if kind in ("RenameAlias", "Cast"):
        return [body["expr"]]
    if kind == "BinaryExpr":
        return [body["left"], body["right"]]
    if kind == "Ternary":
        return [body["predicate"], body["truthy"], body["falsy"]]
    if kind == "StructEval":  # `struct.with_fields`: evaluated on each row's fields
        return [body["expr"], *body["evaluation"]]
    return None


def _first(children: Iterable[Any] | None, node: Any = None) -> tuple[Any, str] | None:
    if children is None:
        return node, _UNKNOWN
    for child in children:
        found = _refusal(child)
        if found is not None:
            return found
    return None


def _function_refusal(node: Any, body: Any) -> tuple[Any, str] | None:
    function = body.get("function")
    if isinstance(function, str):
        name, options = function, None
    elif isinstance(function, dict) and len(function) == 1:
        ((name, options),) = function.items()
    else:
        return node, _UNKNOWN
    variant = options if isinstance(options, str) else None
    if isinstance(options, dict) and len(options) == 1:
        variant = next(iter(options))
    qualified = f"{name}.{variant}" if variant else name
    if name in _ROW_WISE_NAMESPACES:
        row_wise = variant is not None and variant not in _ROW_WISE_NAMESPACES[name]
    elif name in _ROW_WISE_FUNCTIONS:
        allowed = _ROW_WISE_FUNCTIONS[name]
        row_wise = allowed is None or variant in allowed
    else:
        row_wise = False
    if not row_wise:
        return node, "is not among the functions known to work row by row"
    inputs = list(body.get("input", []))
    if qualified == "StringExpr.Strptime" and _infers_format(options):
        return node, "infers its format from the values it sees (pass `format=`)"
    if qualified in _AMBIGUOUS and len(inputs) > 1 and _is_string(inputs[1], "infer"):
        return node, "infers ambiguous times from neighbouring rows (`ambiguous='infer'`)"
    values = _VALUE_INPUTS.get(qualified, _VALUE_INPUTS.get(name, ()))
    positions = {p % len(inputs) for p in values if -len(inputs) <= p < len(inputs)}
    if any(not _is_literal(inputs[p]) for p in positions):
        return node, (
            "takes its set of values from an expression, which Polars reads as a whole "
            "column (pass the values as a list)"
        )
    return _first(child for p, child in enumerate(inputs) if p not in positions)


def _infers_format(options: Any) -> bool:
    strptime = options.get("Strptime") if isinstance(options, dict) else None
    settings = [part for part in strptime or [] if isinstance(part, dict) and "format" in part]
    return not settings or settings[0].get("format") is None


def _is_lookup(body: Any) -> bool:
    """Whether a ``Gather`` looks each row's index up in a table given as a Series
    literal (``pl.lit(table).gather(index)``, as a key filter does): a value per row of
    its indices, those computed row-wise."""
    if not isinstance(body, dict) or body.get("returns_scalar"):
        return False
    values = body.get("expr")
    literal = values.get("Literal") if isinstance(values, dict) and len(values) == 1 else None
    return isinstance(literal, dict) and "Series" in literal


def _is_literal(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"Literal"}


def _is_string(node: Any, value: str) -> bool:
    if not _is_literal(node):
        return False
    scalar = node["Literal"].get("Scalar") if isinstance(node["Literal"], dict) else None
    return isinstance(scalar, dict) and scalar.get("String") == value


def _show(node: Any) -> str:
    """A serialized sub-expression as Polars prints it (its node name if that fails)."""
    if isinstance(node, dict) and "AnonymousFunction" in node:  # not unpickled to be shown
        inputs = node["AnonymousFunction"].get("input") or []
        return f"{_show(inputs[0])}.map_batches(...)" if inputs else "map_batches(...)"
    try:
        return str(pl.Expr.deserialize(io.StringIO(json.dumps(node)), format="json"))
    except Exception:  # shown by its kind instead
        return node if isinstance(node, str) else str(next(iter(node), "expression"))


def check_row_wise(
    exprs: Iterable[pl.Expr], *, actor: str, where: str, select: bool = False
) -> None:
    """Raise :class:`~streamnet.ExpressionError` unless every expression is row-wise.

    Parameters
    ----------
    actor
        The node's name, for the message.
    where
        What the expressions are (``"predicate"``, ``"`filters`"``).
    select
        The expressions are a ``select``: besides being row-wise, at least one must
        read a column, since literals alone make one row per chunk.
    """
    exprs = list(exprs)
    problems = []
    inspections = [_inspected(expr) for expr in exprs]
    for expr, inspection in zip(exprs, inspections, strict=True):
        if inspection.refused is not None:
            part, reason = inspection.refused
            within = f" (in `{expr}`)" if len(exprs) > 1 and part != str(expr) else ""
            problems.append(f"`{part}`{within} {reason}, so it is not row-wise")
    literals_only = (
        select and exprs and not problems and not any(i.reads_rows for i in inspections)
    )
    if not problems and not literals_only:
        return
    got = ", ".join(f"`{e}`" for e in exprs)  # only for a message: Polars' printing costs
    if len(problems) == 1:
        raise ExpressionError(f"actor `{actor}` {where}: {problems[0]}; {_ADVICE}; got {got}")
    if problems:
        listed = "".join(f"\n  - {problem}" for problem in problems)
        raise ExpressionError(f"actor `{actor}` {where}:{listed}\n{_ADVICE}; got {got}")
    if literals_only:
        raise ExpressionError(
            f"actor `{actor}` {where}: a select of literals only makes one row per chunk, "
            "where Polars makes one row; select a column too, or add the literals to every "
            f"row with `with_columns`; got {got}"
        )


def _reads_rows(node: Any) -> bool:
    """Whether a serialized expression reads a column, rather than being a literal."""
    if isinstance(node, list):
        return any(_reads_rows(item) for item in node)
    if not isinstance(node, dict):
        return bool(node == "Wildcard")
    if len(node) == 1:
        ((kind, body),) = node.items()
        if kind in _COLUMNS:
            return True
        if kind == "Literal":
            return False
        if kind == "Alias":
            return _reads_rows(body[:1])
    return any(_reads_rows(value) for value in node.values())
