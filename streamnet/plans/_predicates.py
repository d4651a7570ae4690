"""Predicates that may move: the parts of a filter that a Network can also apply upstream.

A ``filter``'s predicate is split into its conjuncts (``a & b`` is ``a`` and
``b``); each is a `Predicate` when applying it earlier, to rows that may never
reach the filter, can only drop rows the filter would drop and cannot fail
where the filter would not have run: it must be row-wise (``_row_wise.py``),
read at least one column, name its columns (no ``pl.all()``, selector or
pattern), and use only operations that cannot raise on a value (comparisons,
arithmetic, ``is_in``/``is_between`` on literals, null and NaN tests, non-strict
casts, and an allowlist of ``str`` and ``dt`` functions with literal arguments).
Anything else stays where the user wrote it (`immovable` says why).

The filter keeps applying its predicate: moving one only saves work. What a plan
step lets through (`step_passes`) follows from its expressions, as column
pruning's needs do (``_columns.py``): a predicate passes a step that does not
redefine its columns, renamed back through a ``rename`` or a ``select`` that
renames a column.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from streamnet.plans._plan import Cast, Filter, Rename, Select, Step, WithColumns
from streamnet.plans._row_wise import not_row_wise

__all__ = ["KeySet", "Predicate", "conjuncts", "immovable", "key_filter", "step_passes"]


class KeySet:
    """The values of a join's key column on the side it reads whole, known once it has:
    a row of the other side whose key is not among them finds no match.

    The join publishes them (`publish`), or None when it will not tell them (too many,
    keys of a type whose equality a set does not share, a side it did not read whole);
    the sources the other side's key filter reaches wait for them (`wait`).
    """

    def __init__(
        self, actor: str, side: str, column: str, probe_rows: int | None = None
    ) -> None:
        self.actor = actor
        """The join's name."""
        self.side = side
        """The input it reads whole (``"left"`` or ``"right"``)."""
        self.column = column
        """The key column of that input."""
        self.probe_rows = probe_rows
        """About how many rows the sources of the other input give (None: not known), for
        the join to weigh whether filtering them by its keys pays."""
        self._values: pl.Series | None = None
        self._published = asyncio.Event()
        self._table: tuple[int, pl.Series] | None = None  # the values' `_dense_table`...
        self._table_made = False  # ...once made

    def publish(self, values: pl.Series | None) -> None:
        """Make the values known (None: no filter); the first call counts."""
        if not self._published.is_set():
            self._values = values
            self._published.set()

    @property
    def published(self) -> bool:
        """Whether `publish` was called."""
        return self._published.is_set()

    @property
    def count(self) -> int | None:
        """How many keys were published (None: none yet, or no filter)."""
        return None if self._values is None else self._values.len()

    async def wait(self) -> pl.Series | None:
        """The values, once published (None: no filter)."""
        await self._published.wait()
        return self._values

    async def filter_of(self, expr: pl.Expr, *, lookup: bool = True) -> pl.Expr | None:
        """`key_filter` of ``expr`` by the values, once published (None: no filter). The
        lookup table of dense keys is made once, however many sources the set reaches;
        without ``lookup``, up to `SCAN_HASHED_KEYS` keys are hashed (`key_filter`)."""
        values = await self.wait()
        if values is None:
            return None
        if not _looked_up(values, lookup):
            return _key_filter(expr, values, None)
        if not self._table_made:
            self._table, self._table_made = _dense_table(values), True
        return _key_filter(expr, values, self._table)

    async def range_of(self, expr: pl.Expr) -> pl.Expr | None:
        """Whether ``expr`` lies between the lowest and highest of integer values, once
        published (None: not integers, or no filter): a test by which row groups'
        statistics can be skipped where the filter hashes its keys."""
        values = await self.wait()
        span = _span(values) if values is not None else None
        return None if span is None else expr.is_between(*span)

    def __repr__(self) -> str:
        return f"KeySet({self.actor} {self.side} `{self.column}`)"


@dataclass(frozen=True, slots=True, eq=False)
class Predicate:
    """A row predicate that may be applied earlier than where it was written.

    Compares and hashes by its expression's structure; ``origin`` names the actor
    whose filter states it (for `Network.explain`). A *key filter* (``keys`` given)
    is known only when the network runs: its expression is the column, whose value
    must be among the ``keys`` a join publishes (see `KeySet`). A *disjunction*
    (``branches`` given, made by `either`) keeps a row that passes every predicate
    of one of its branches: what the consumers of a fan-out apply between them.

    Examples
    --------
    >>> p = Predicate(pl.col("x_right") > 1, origin="filter#0")
    >>> sorted(p.columns)
    ['x_right']
    >>> p.renamed({"x_right": "x"}).expr.meta.root_names()
    ['x']
    >>> p == Predicate(pl.col("x_right") > 1)
    True
    """

    expr: pl.Expr
    """The boolean expression (a key filter's: its column; a disjunction's: the ``|`` of
    its branches' ``&``, a key filter among them standing as its column)."""
    origin: str = field(default="")
    keys: KeySet | None = None
    branches: frozenset[frozenset[Predicate]] = frozenset()
    """A disjunction's alternatives, each the predicates a row must all pass (empty for
    any other predicate)."""

    @classmethod
    def either(cls, branches: Iterable[frozenset[Predicate]]) -> Predicate | None:
        """The disjunction of ``branches`` (each the predicates a row must all pass),
        a branch that is one disjunction itself taking its place by its branches; None
        when a branch is empty (every row passes it) or there would be more than
        `MAX_BRANCHES` of them.

        Examples
        --------
        >>> a, b = Predicate(pl.col("x") > 1), Predicate(pl.col("y") < 0)
        >>> p = Predicate.either([frozenset({a}), frozenset({b})])
        >>> p.describe()
        'either [(col("x")) > (dyn int: 1)] or [(col("y")) < (dyn int: 0)]'
        >>> Predicate.either([frozenset({a}), frozenset()]) is None
        True
        """
        flat: set[frozenset[Predicate]] = set()
        for branch in branches:
            if not branch:
                return None
            (only,) = branch if len(branch) == 1 else (None,)
            flat.update(only.branches if only is not None and only.branches else (branch,))
        flat = {b for b in flat if not any(other < b for other in flat)}  # a or (a and b): a
        if len(flat) > MAX_BRANCHES:
            return None
        if len(flat) == 1:
            (branch,) = flat
            if len(branch) == 1:
                return next(iter(branch))
        ordered = sorted(flat, key=_branch_key)
        expr = pl.any_horizontal(
            pl.all_horizontal([p.expr for p in sorted(b, key=Predicate.describe)]) for b in ordered
        )
        origins = sorted({o for b in flat for p in b for o in p.origin.split(", ") if o})
        return cls(expr, ", ".join(origins), branches=frozenset(flat))

    @property
    def columns(self) -> frozenset[str]:
        """The columns it reads."""
        if self.branches:
            return frozenset().union(*(p.columns for b in self.branches for p in b))
        return frozenset(self.expr.meta.root_names())

    @property
    def key_sets(self) -> frozenset[KeySet]:
        """The key sets whose publication it waits for (its own, or its branches')."""
        own = frozenset({self.keys}) if self.keys is not None else frozenset()
        return own.union(*(p.key_sets for b in self.branches for p in b))

    def renamed(self, mapping: Mapping[str, str]) -> Predicate:
        """The same predicate over columns renamed by ``mapping`` (old name to new name)."""
        if not any(old != new for old, new in mapping.items() if old in self.columns):
            return self
        if self.branches:
            renamed = Predicate.either(
                frozenset(p.renamed(mapping) for p in b) for b in self.branches
            )
            assert renamed is not None  # as many branches as before, none empty
            return renamed
        tree = _rename(_tree(self.expr), mapping)
        return Predicate(_expr(tree), self.origin, self.keys)

    async def resolved(self, *, lookup: bool = True) -> pl.Expr | None:
        """The expression to apply: a key filter's once its keys are published (None: no
        filter after all); a disjunction's once those of its branches are (None when a
        branch is left without a filter); any other's at once. ``lookup``: whether a key
        filter may look dense keys up in a table (`key_filter`)."""
        if self.branches:
            alternatives = []
            for branch in sorted(self.branches, key=_branch_key):
                parts = [
                    await p.resolved(lookup=lookup)
                    for p in sorted(branch, key=Predicate.describe)
                ]
                kept = [e for e in parts if e is not None]
                if not kept:
                    return None  # every row passes this branch
                alternatives.append(functools.reduce(operator.and_, kept))
            return functools.reduce(operator.or_, alternatives)
        if self.keys is None:
            return self.expr
        return await self.keys.filter_of(self.expr, lookup=lookup)

    def describe(self) -> str:
        """What it keeps, for `Network.explain`."""
        if self.branches:
            words = []
            for branch in sorted(self.branches, key=_branch_key):
                both = " and ".join(p.describe() for p in sorted(branch, key=Predicate.describe))
                words.append(both if len(branch) == 1 else f"({both})")
            return "either " + " or ".join(words)
        if self.keys is None:
            return str(self.expr)
        column = ", ".join(f"`{c}`" for c in sorted(self.columns))
        return (
            f"{column} among the `{self.keys.column}` keys `{self.keys.actor}` reads on its "
            f"{self.keys.side} input"
        )

    @classmethod
    def of(cls, expr: pl.Expr, *, origin: str = "") -> frozenset[Predicate]:
        """The conjuncts of a filter's predicate ``expr`` that may move (see `immovable`),
        stated by ``origin``.

        Examples
        --------
        >>> parts = Predicate.of((pl.col("a") > 1) & (pl.col("b").cast(pl.Int8) > 0))
        >>> [str(p.expr) for p in parts]
        ['[(col("a")) > (dyn int: 1)]']
        """
        return frozenset(cls(part, origin) for part in conjuncts(expr) if immovable(part) is None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Predicate):
            return NotImplemented
        if self.branches or other.branches:
            return self.branches == other.branches
        return self.keys is other.keys and bool(self.expr.meta == other.expr.meta)

    def __hash__(self) -> int:
        if self.branches:
            return hash(self.branches)
        return hash((self.expr.meta, id(self.keys)))

    def __repr__(self) -> str:
        return f"Predicate({self.expr}, origin={self.origin!r})"


MAX_BRANCHES = 8
"""The most alternatives a disjunction (`Predicate.either`) has; more, and none is made."""

SCAN_HASHED_KEYS = 1 << 18
"""A scan's key filter (``key_filter(lookup=False)``) hashes up to this many keys rather than
look them up in a table: more, and hashing them again for every task costs more than the
table (SF 1 ``lineitem``, a task per row group: 0.51 s of CPU hashed against 0.26 s looked
up for 730,000 keys, 0.32 s against 0.25 s for 400,000; 0.12 s against 0.22 s for
150,000)."""

DENSE_SPAN = 16
"""Integer keys spanning at most this many times their count (plus `SMALL_SPAN`) are looked up
in a table of their span (`key_filter`) rather than hashed."""
SMALL_SPAN = 1 << 16
MAX_SPAN = 1 << 26
"""The largest lookup table a key filter makes: one byte per value of the keys' span."""


def key_filter(expr: pl.Expr, values: pl.Series, *, lookup: bool = True) -> pl.Expr:
    """The rows whose ``expr`` is among ``values`` (no null is among them): ``is_in``, or,
    for integer keys dense enough, a lookup in a table of a byte per value of their span
    (without ``lookup``, only more than `SCAN_HASHED_KEYS` of them), tested against
    its range first: a conjunct of its own, which
    statistics can prune row groups by (Polars prunes by an ``is_in`` only where a row
    group holds one value; a scan asks for the range apart, `KeySet.range_of`).

    Polars hashes an ``is_in``'s values again for every chunk it filters: for the
    hundreds of thousands of keys a join publishes, that costs more than the table, made
    once (24 chunks of 250,000 rows filtered by 319,000 keys: 84 ms of CPU hashed, 49 ms
    looked up). Inside a Parquet scan it is the other way round up to a few hundred
    thousand keys, so a scan asks without ``lookup``: Polars' reader takes an ``is_in``
    faster than the table lookup (SF 1 ``lineitem``, six columns, few rows kept: 0.23 s
    against 0.35 s of CPU for 300,000 keys, 0.20 s against 0.27 s for 10,000).

    Examples
    --------
    >>> frame = pl.DataFrame({"k": [1, 5, 7, None, -3, 2**40]})
    >>> keys = pl.Series([7, 1, 2, 3])
    >>> frame.filter(key_filter(pl.col("k"), keys))["k"].to_list()
    [1, 7]
    """
    return _key_filter(expr, values, _dense_table(values) if _looked_up(values, lookup) else None)


def _looked_up(values: pl.Series, lookup: bool) -> bool:
    """Whether a key filter of ``values`` may take the lookup table (`key_filter`)."""
    return lookup or values.len() > SCAN_HASHED_KEYS


def _key_filter(expr: pl.Expr, values: pl.Series, dense: tuple[int, pl.Series] | None) -> pl.Expr:
    """`key_filter`, given the values' `_dense_table` (None: hashed)."""
    if dense is None:
        return expr.is_in(values.implode())
    low, table = dense
    high = low + table.len() - 1
    key = expr.cast(pl.Int64, strict=False)  # wider keys out of range become null: no match
    return key.is_between(low, high) & (pl.lit(table).gather(key.clip(low, high) - low) == 1)


def _span(values: pl.Series) -> tuple[int, int] | None:
    """The lowest and highest of integer ``values`` (None for others, or none at all)."""
    if not values.dtype.is_integer():
        return None
    low, high = values.min(), values.max()
    if not isinstance(low, int) or not isinstance(high, int):
        return None
    return low, high


def _dense_table(values: pl.Series) -> tuple[int, pl.Series] | None:
    """``(lowest value, a byte per value from it to the highest: 1 for a value among
    them)`` for integer ``values`` dense enough (`DENSE_SPAN`); None otherwise."""
    keys = values.drop_nulls()
    found = _span(keys)
    if found is None:
        return None
    low, high = found
    span = high - low + 1
    if low < -(2**62) or high >= 2**62 or span > min(MAX_SPAN, DENSE_SPAN * keys.len() + SMALL_SPAN):
        return None
    import numpy as np  # on first use: `import streamnet` loads no numpy (tests/test_imports.py)

    table = np.zeros(span, dtype=np.uint8)
    table[(keys.cast(pl.Int64) - low).to_numpy()] = 1
    return low, pl.Series("keys", table)


def _branch_key(branch: frozenset[Predicate]) -> list[str]:
    return sorted(p.describe() for p in branch)


_LOST_FLOAT = re.compile(r'"Float(?:32|64)?":null')
"""How Polars' JSON form writes a NaN or infinite float literal: as no value at all."""


def _tree(expr: pl.Expr) -> Any:
    """``expr`` as Polars' JSON form. Raises ValueError where that form cannot give the
    expression back (a NaN or infinite float literal): such an expression is kept whole,
    and does not move."""
    text = expr.meta.serialize(format="json")
    if _LOST_FLOAT.search(text):
        raise ValueError(f"`{expr}` holds a NaN or infinite float, which Polars' JSON form drops")
    return json.loads(text)


def _expr(tree: Any) -> pl.Expr:
    return pl.Expr.deserialize(io.StringIO(json.dumps(tree)), format="json")


def _rename(node: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Column"} and isinstance(node["Column"], str):
            return {"Column": mapping.get(node["Column"], node["Column"])}
        return {key: _rename(value, mapping) for key, value in node.items()}
    if isinstance(node, list):
        return [_rename(item, mapping) for item in node]
    return node


def conjuncts(expr: pl.Expr) -> list[pl.Expr]:
    """The parts of ``expr`` joined by ``&`` (``[expr]`` when it is not a conjunction).

    Examples
    --------
    >>> [str(e) for e in conjuncts((pl.col("a") > 1) & (pl.col("b") < 2) & pl.col("c"))]
    ['[(col("a")) > (dyn int: 1)]', '[(col("b")) < (dyn int: 2)]', 'col("c")']
    """
    try:
        tree = _tree(expr)
    except Exception:  # a Python function Polars cannot serialize: it stays whole
        return [expr]
    parts = _split(tree)
    return [expr] if len(parts) == 1 else [_expr(part) for part in parts]


def _split(node: Any) -> list[Any]:
    if isinstance(node, dict) and set(node) == {"Alias"}:  # a filter ignores the name
        return _split(node["Alias"][0])
    body = node.get("BinaryExpr") if isinstance(node, dict) and len(node) == 1 else None
    if isinstance(body, dict) and body.get("op") in ("And", "LogicalAnd"):
        return _split(body["left"]) + _split(body["right"])
    return [node]


# ------------------------------------------------------------------ what may move
_OPERATORS = frozenset(
    [
        "Eq",
        "EqValidity",
        "NotEq",
        "NotEqValidity",
        "Lt",
        "LtEq",
        "Gt",
        "GtEq",
        "And",
        "Or",
        "Xor",
        "LogicalAnd",
        "LogicalOr",
        "Plus",
        "Minus",
        "Multiply",
        "Divide",
        "TrueDivide",
        "FloorDivide",
        "Modulus",
    ]
)
"""Operators that give a value (or null) for every pair of values, never an error."""

_FUNCTIONS: Mapping[str, frozenset[str] | None] = {
    "Boolean": frozenset(
        [
            "IsNull",
            "IsNotNull",
            "IsNan",
            "IsNotNan",
            "IsFinite",
            "IsInfinite",
            "IsBetween",
            "IsIn",
            "Not",
            "AnyHorizontal",
            "AllHorizontal",
        ]
    ),
    **dict.fromkeys(
        [
            "Abs",
            "Negate",
            "Sign",
            "Round",
            "Floor",
            "Ceil",
            "FillNull",
            "Coalesce",
            "MaxHorizontal",
            "MinHorizontal",
        ]
    ),
    "StringExpr": frozenset(
        [
            "Contains",
            "StartsWith",
            "EndsWith",
            "LenBytes",
            "LenChars",
            "Lowercase",
            "Uppercase",
            "StripChars",
            "StripCharsStart",
            "StripCharsEnd",
            "StripPrefix",
            "StripSuffix",
            "Slice",
            "Head",
            "Tail",
            "ContainsAny",
            "Reverse",
        ]
    ),
    "TemporalExpr": frozenset(
        [
            "Year",
            "IsoYear",
            "Quarter",
            "Month",
            "Week",
            "WeekDay",
            "Day",
            "OrdinalDay",
            "Hour",
            "Minute",
            "Second",
            "Millisecond",
            "Microsecond",
            "Nanosecond",
            "Date",
            "IsLeapYear",
        ]
    ),
}
"""Functions that cannot fail on a value, by name, with the variants that qualify (None: all)."""

_LITERAL_ARGUMENTS = frozenset({"StringExpr"})
"""Namespaces whose functions take every input after the first as a literal here (a pattern
read from a column could fail on a row the filter never sees)."""


def immovable(expr: pl.Expr) -> str | None:
    """Why ``expr``, one conjunct of a filter, must stay where it is; None when it may move.

    Examples
    --------
    >>> immovable(pl.col("x") > 1) is None
    True
    >>> immovable(pl.col("s").cast(pl.Int64) > 1)
    'a strict cast may fail on rows the filter never sees'
    """
    found = not_row_wise(expr)
    if found is not None:
        return f"`{found[0]}` {found[1]}"
    try:
        tree = _tree(expr)
    except Exception as exc:
        return f"it cannot be inspected ({type(exc).__name__})"
    found_fallible = _fallible(tree)
    if found_fallible is None and not expr.meta.root_names():
        return "it reads no column"
    return found_fallible


def _fallible(node: Any) -> str | None:
    """Why a serialized row-wise expression may not move, or None."""
    if isinstance(node, str):
        return f"`{node}` does not name its columns"
    if not isinstance(node, dict) or len(node) != 1:
        return "it has a part this check does not know"
    ((kind, body),) = node.items()
    if kind == "Column":
        return None
    if kind == "Literal":
        return None  # a scalar: Series literals are not row-wise
    if kind == "Alias":
        return _fallible(body[0])
    if kind == "Cast":
        if body.get("options") == "Strict":
            return "a strict cast may fail on rows the filter never sees"
        return _fallible(body["expr"])
    if kind == "BinaryExpr":
        if body.get("op") not in _OPERATORS:
            return f"the operator `{body.get('op')}` is not known to be safe on every value"
        return _fallible(body["left"]) or _fallible(body["right"])
    if kind == "Ternary":
        return _fallible(body["predicate"]) or _fallible(body["truthy"]) or _fallible(body["falsy"])
    if kind == "Function":
        return _function_fallible(body)
    if kind in ("Selector", "Nth", "Columns", "DtypeColumn", "IndexColumn", "Wildcard"):
        return "it selects columns by pattern, type or position"
    return f"`{kind}` is not known to be safe on every value"


def _function_fallible(body: Any) -> str | None:
    function = body.get("function")
    if isinstance(function, str):
        name, variant = function, None
    elif isinstance(function, dict) and len(function) == 1:
        ((name, options),) = function.items()
        variant = options if isinstance(options, str) else None
        if isinstance(options, dict) and len(options) == 1:
            variant = next(iter(options))
    else:
        return "it calls a function this check does not know"
    allowed = _FUNCTIONS.get(name, frozenset())
    if allowed is not None and variant not in allowed:
        shown = f"{name}.{variant}" if variant else name
        return f"the function `{shown}` is not known to be safe on every value"
    inputs = list(body.get("input", []))
    if name in _LITERAL_ARGUMENTS and any(set(arg) != {"Literal"} for arg in inputs[1:]):
        return "a function argument read from a column may fail on rows the filter never sees"
    for arg in inputs:
        found = _fallible(arg)
        if found is not None:
            return found
    return None


# ------------------------------------------------------------------ through plan steps
def _plain_column(expr: pl.Expr) -> str | None:
    """The input column ``expr`` passes on unchanged (``pl.col("a")``, ``pl.col("a").alias("b")``).

    Examples
    --------
    >>> _plain_column(pl.col("a").alias("b")), _plain_column(pl.col("a") + 1)
    ('a', None)
    """
    try:
        inner = expr.meta.undo_aliases()  # Polars' own reading, not its JSON form: quicker
        return inner.meta.output_name() if inner.meta.is_column() else None
    except pl.exceptions.PolarsError:
        return None


def _outputs(exprs: Iterable[pl.Expr]) -> dict[str, pl.Expr] | None:
    named: dict[str, pl.Expr] = {}
    for expr in exprs:
        if expr.meta.has_multiple_outputs():
            return None
        try:
            named[expr.meta.output_name()] = expr
        except pl.exceptions.PolarsError:
            return None
    return named


def step_passes(step: Step, wanted: frozenset[Predicate]) -> frozenset[Predicate]:
    """The predicates that may be applied to ``step``'s input, given those applied to its
    output anyway (``wanted``): those of ``wanted`` whose columns the step does not
    redefine (renamed to the input's names), and a `Filter`'s own movable conjuncts.

    Examples
    --------
    >>> p = Predicate(pl.col("y") > 0)
    >>> step_passes(WithColumns((pl.col("x") * 2,)), frozenset({p})) == {p}
    True
    >>> step_passes(WithColumns((pl.col("y") * 2,)), frozenset({p}))
    frozenset()
    """
    if isinstance(step, Filter):
        return wanted | Predicate.of(step.predicate, origin=step.actor)
    if isinstance(step, WithColumns):
        named = _outputs(step.exprs)
        if named is None:
            return frozenset()
        return frozenset(p for p in wanted if not p.columns & named.keys())
    if isinstance(step, Select):
        named = _outputs(step.exprs)
        if named is None:
            return frozenset()
        sources = {name: _plain_column(expr) for name, expr in named.items()}
        passed = set()
        for p in wanted:
            found = {c: sources.get(c) for c in p.columns}
            renames = {c: source for c, source in found.items() if source is not None}
            if len(renames) == len(found):
                passed.add(p.renamed(renames))
        return frozenset(passed)
    if isinstance(step, Rename):
        back = {new: old for old, new in step.mapping.items()}
        gone = set(step.mapping) - set(back)
        return frozenset(
            p.renamed({c: back[c] for c in p.columns if c in back})
            for p in wanted
            if not p.columns & gone
        )
    if isinstance(step, Cast):
        return frozenset(p for p in wanted if not p.columns & set(step.types))
    return frozenset()  # a step this analysis does not know: nothing passes
