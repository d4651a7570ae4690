"""What a join tells the network's optimiser, and the keys it publishes for key filters.

The declarations of `actors.join` (see `streamnet.define_actor`): which columns each
input must keep (column pruning), the columns it gives and where each comes from
(`JoinSpec.origins`), which predicates may move to which input, and which input's
keys may cut the other's rows (key filters). `JoinKeys` collects the keys of an input
as the join reads it and publishes them for the sources that wait for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from streamnet import Context, JoinSpec, TableChunk

if TYPE_CHECKING:
    from actors._typing import JoinHow
    from streamnet import KeySet, Predicate

__all__ = [
    "KEY_FILTER_LIMIT",
    "ROWS_PER_KEY",
    "JoinKeys",
    "Side",
    "join_emits",
    "join_matches",
    "join_needs",
    "join_predicates",
]


def join_needs(
    wanted: frozenset[str] | None,
    *,
    on: str | Sequence[str] | None,
    left_on: str | Sequence[str] | None,
    right_on: str | Sequence[str] | None,
    how: str,
    suffix: str,
    **_: object,
) -> dict[str, frozenset[str] | None]:
    """What each side must keep to give ``wanted``: the keys, and every wanted name, with a
    suffixed name's unsuffixed one on both sides (so that the same names still clash)."""

    def names(keys: str | Sequence[str] | None) -> list[str]:
        return [] if keys is None else [keys] if isinstance(keys, str) else list(keys)

    left_keys, right_keys = names(on) + names(left_on), names(on) + names(right_on)
    if wanted is None:
        return {"left_in": None, "right_in": None}
    unsuffixed = {n[: -len(suffix)] for n in wanted if suffix and n.endswith(suffix)}
    both = wanted | unsuffixed
    right = frozenset(right_keys) if how in ("semi", "anti") else both | frozenset(right_keys)
    return {"left_in": both | frozenset(left_keys), "right_in": right}


Side = Literal["left", "right"]


def _origins(
    columns: Mapping[str, frozenset[str] | None],
    *,
    on: str | Sequence[str] | None,
    left_on: str | Sequence[str] | None,
    right_on: str | Sequence[str] | None,
    how: JoinHow,
    suffix: str,
) -> dict[str, tuple[Side, str] | None] | None:
    """Per output column, the input column it comes from (`JoinSpec.origins`); None when
    an input's columns are not known (or the arguments are wrong: the actor says so)."""
    left, right = columns.get("left_in"), columns.get("right_in")
    if left is None or right is None:
        return None
    try:
        spec = JoinSpec.of(on, left_on=left_on, right_on=right_on, how=how, suffix=suffix)
    except (TypeError, ValueError):
        return None
    return spec.origins(sorted(left), sorted(right))


def join_emits(
    columns: Mapping[str, frozenset[str] | None], /, **arguments: Any
) -> frozenset[str] | None:
    origins = _origins(columns, **{k: arguments[k] for k in _SPEC})
    return None if origins is None else frozenset(origins)


_SPEC = ("on", "left_on", "right_on", "how", "suffix")
_KEPT: Mapping[str, tuple[Side, ...]] = {
    "inner": ("left", "right"), "left": ("left",), "semi": ("left",), "anti": ("left",),
    "right": ("right",),
}  # fmt: skip
"""The sides whose rows a join keeps as they are (joined or not, never null-filled)."""


_UNMATCHED_DROPPED: Mapping[str, tuple[Side, ...]] = {
    "inner": ("left", "right"), "left": ("right",), "right": ("left",), "semi": ("left", "right"),
    "anti": ("right",),
}  # fmt: skip
"""The sides whose rows without a match give no row: those a key filter may cut."""


def join_predicates(
    wanted: frozenset[Predicate], columns: Mapping[str, frozenset[str] | None], /, **arguments: Any
) -> dict[str, frozenset[Predicate]]:
    """A predicate over the columns of one side moves to that side's input, renamed to its
    names, when the join keeps that side's rows as they are: a row it drops there would
    have given only rows the predicate drops. Never to the side a join fills with nulls.

    A key filter (`KeySet`) over a key column moves to the other side's key too, where
    that side's rows without a match give nothing: a row whose key is not in the set
    matches only rows the filter drops."""
    origins = _origins(columns, **{k: arguments[k] for k in _SPEC})
    how = arguments["how"]
    kept = _KEPT.get(how, ())
    moved: dict[str, set[Predicate]] = {"left_in": set(), "right_in": set()}
    spec = _spec(arguments)
    if origins is None or spec is None:
        return {parameter: frozenset() for parameter in moved}
    for predicate in wanted:
        read = sorted(predicate.columns)
        found = [origins.get(column) for column in read]
        sides = {origin[0] for origin in found if origin is not None}
        if None in found or len(sides) != 1 or (side := sides.pop()) not in kept:
            continue
        names = {column: origin[1] for column, origin in zip(read, found, strict=True) if origin}
        moved[f"{side}_in"].add(predicate.renamed(names))
        if predicate.keys is not None and len(read) == 1:
            keys, other_keys = (
                (spec.left_on, spec.right_on) if side == "left" else (spec.right_on, spec.left_on)
            )
            other: Side = "right" if side == "left" else "left"
            if names[read[0]] in keys and other in _UNMATCHED_DROPPED.get(how, ()):
                at = other_keys[keys.index(names[read[0]])]
                moved[f"{other}_in"].add(predicate.renamed({read[0]: at}))
    return {parameter: frozenset(predicates) for parameter, predicates in moved.items()}


def _spec(arguments: Mapping[str, Any]) -> JoinSpec | None:
    try:
        return JoinSpec.of(
            arguments["on"], left_on=arguments["left_on"], right_on=arguments["right_on"],
            how=arguments["how"], suffix=arguments["suffix"],
        )  # fmt: skip
    except (TypeError, ValueError):
        return None


def join_matches(**arguments: Any) -> list[tuple[str, tuple[str, ...], str, tuple[str, ...]]]:
    """Which input's keys may cut the other's rows: the rows of a side whose unmatched rows
    give nothing, by the keys of the other (the right side's first: it is read first). On
    several ranks only the right side's keys are offered: the join gathers them from every
    rank when each has read its share whole, and reads the left side in the background."""
    spec = _spec(arguments)
    if spec is None:
        return []
    dropped = _UNMATCHED_DROPPED.get(spec.how, ())
    found = []
    if "left" in dropped:
        found.append(("right_in", spec.right_on, "left_in", spec.left_on))
    ctx = arguments.get("ctx")
    if "right" in dropped and (ctx is None or ctx.nranks == 1):  # several: see `join`
        found.append(("left_in", spec.left_on, "right_in", spec.right_on))
    return found


KEY_FILTER_LIMIT = 1 << 22
"""The most distinct keys a join publishes for the other side's sources to filter by."""
ROWS_PER_KEY = 8
"""A join publishes its keys only when the other side's sources give at least this many
rows per key (when their rows are known): each scan task tests its rows against a hash
set of the keys, built anew, and the sources wait for the keys. TPC-H Q9 at SF 10, whose
orders (15M rows) were filtered by 2.9M lineitem keys, ran in 5.9 s, and in 3.8 s
without that filter; Q3's lineitem (60M rows) filtered by 1.5M orders keys gains."""
SMALL_KEY_SET = 1 << 19
"""At most this many keys, a set is cheap to build for every scan task: it pays for
fewer rows per key (`ROWS_PER_SMALL_SET_KEY`). Q9 at SF 1, whose orders (1.5M rows)
are filtered by 300,000 keys, ran in 0.31 s with that filter and 0.36 s without."""
ROWS_PER_SMALL_SET_KEY = 2


class JoinKeys:
    """The keys of one input as the join reads it, published for the key sets a Network
    gave it once the input is read whole (`KeySet`)."""

    def __init__(self, ctx: Context, key_sets: Sequence[KeySet] | None) -> None:
        self.ctx = ctx
        self.key_sets = tuple(key_sets or ())
        self.columns = tuple(dict.fromkeys(k.column for k in self.key_sets))
        self.parts: list[TableChunk] = []

    async def add(self, chunk: TableChunk) -> None:
        """Keep the chunk's key columns (no copy)."""
        if self.key_sets and not any(k.published for k in self.key_sets):
            self.parts.append(
                await self.ctx.to_thread(self.ctx.backend.project, chunk, self.columns)
            )

    async def publish(self) -> None:
        """Publish each key set's distinct keys; none for a float key (a set's equality is
        not a join's for -0.0 and NaN), or where so many keys would not pay (`_pays`)."""
        for key_set, values in zip(self.key_sets, await self.values(), strict=True):
            if not key_set.published:
                key_set.publish(values)
        self.parts = []

    async def publish_gathered(self, everyone: Sequence[list[pl.Series | None] | None]) -> None:
        """Publish each key set's distinct keys over every rank's input, given what each
        rank's `values` were (None: that rank did not read its share whole). The ranks
        need not agree on the key sets a Network gave them (each estimates rows from its
        own share): where any rank gives none for a set, no filter is published."""
        for i, key_set in enumerate(self.key_sets):
            given = [v[i] for v in everyone if v is not None and len(v) == len(self.key_sets)]
            parts = [part for part in given if part is not None]
            union = None
            if len(parts) == len(everyone):
                try:
                    union = await self.ctx.to_thread(_union, parts)
                except pl.exceptions.PolarsError:  # the ranks' types differ: the join says so
                    union = None
            usable = union is not None and _pays(key_set, len(union))
            key_set.publish(union if usable else None)
        self.parts = []

    async def values(self) -> list[pl.Series | None]:
        """Each key set's distinct keys in the chunks added, or None where it gives none
        (see `publish`): what this rank gives `publish_gathered`."""
        found: list[pl.Series | None] = []
        for key_set in self.key_sets:
            values = None
            if not key_set.published:
                values = await self.ctx.to_thread(
                    self.ctx.backend.key_values, self.parts, key_set.column
                )
                if values.dtype.is_float() or not _pays(key_set, len(values)):
                    values = None
            found.append(values)
        return found

    def abandon(self) -> None:
        """Publish no filter for the key sets not published yet (their sources read all)."""
        for key_set in self.key_sets:
            key_set.publish(None)
        self.parts = []


def _union(parts: Sequence[pl.Series]) -> pl.Series:
    return pl.concat(parts).unique()


def _pays(key_set: KeySet, keys: int) -> bool:
    """Whether filtering the other side's sources by ``keys`` distinct keys is worth it."""
    if keys > KEY_FILTER_LIMIT:
        return False
    if key_set.probe_rows is None:
        return True
    per_key = ROWS_PER_SMALL_SET_KEY if keys <= SMALL_KEY_SET else ROWS_PER_KEY
    return keys * per_key <= key_set.probe_rows
