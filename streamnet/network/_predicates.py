"""Predicate pushdown: the row predicates each channel's consumers apply anyway, found on
the network's description.

Pure functions over descriptions of the nodes (`PredicateNode`), like column
pruning (``_columns.py``), in two passes over the graph (acyclic once the
declared feedback channels are cut, which carry nothing of either):

- `column_names`, downstream: per channel, its columns by name when they are known
  before anything runs. A source says them (``read_parquet`` from the file's
  footer, ``from_polars`` from its frame), and each node gives its outputs' from
  its inputs' (``define_actor(emits=...)``, or its plan step); an actor of unknown
  code gives unknown columns.
- `pushed_predicates`, upstream: per channel, the `Predicate` s that every
  consumer applies anyway, so that a row failing one may be dropped before it is
  sent. A ``filter`` adds its own (its movable conjuncts); each node says which of
  those applied to its outputs may also apply to its inputs
  (``define_actor(predicates=...)``, or its plan step); an actor of unknown code
  lets none through. A channel gets what all its consumers apply (a fan-out, the
  predicates common to its branches and the disjunction of the others, see
  `Predicate.either`); a channel nobody consumes, or a feedback channel, none.

The second pass is the greatest fixpoint of those rules, reached in one sweep
from the sinks up. A source that applies predicates (``define_actor(pushdown=True)``:
``read_parquet``) then applies those of its output too (`push`). A third pass,
downstream, finds the predicates that hold on every row of each channel
(`held_predicates`): a filter leaves out the conjuncts its input holds already, and
the sources they come from commit to apply them (`elide_filters`); every other
filter stays where it is, so moving a predicate only ever saves work.

Key filters (`key_filters`) add predicates known only when the network runs: a
join (``define_actor(matches=...)``) one input of which is cut down by a filter
reads it whole first and publishes its keys (`KeySet`); the other input gets the
predicate "key among them", which moves upstream as any other, and the sources
it reaches wait for the keys. Reading that input first must not stall the
network: nothing upstream of it may send anywhere else. So a source never waits
for keys that depend on its own rows, even through a disjunction of key filters
at a fan-out: a source upstream of that input sends nowhere else, so none of its
rows reaches the join's other input. An input a key filter
cuts down may give its own keys in turn (a few rounds). On several ranks the
join gathers the keys of every rank's share, or publishes none (``actors.join``
does so for its right input only). A join further down on a key whose every value
is among such a key set's (the rows it gives carry them) cuts its other input by
the same keys, without reading anything whole (`inherited_key_filters`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

import polars as pl

from channels import Channel
from streamnet._actor import ActorNode
from streamnet.plans._columns import Columns
from streamnet.plans._predicates import KeySet, Predicate

__all__ = [
    "PredicateNode",
    "column_names",
    "elide_filters",
    "held_predicates",
    "push",
    "pushed_predicates",
]

Predicates = frozenset[Predicate]


@dataclass(frozen=True, slots=True)
class PredicateNode:
    """What predicate pushdown needs to know of one node."""

    name: str
    inputs: tuple[Hashable, ...]
    outputs: tuple[Hashable, ...]
    columns: Callable[[Mapping[Hashable, Columns]], Columns]
    """Given the columns of each input (None: not known), those of its outputs."""
    passes: Callable[[Predicates, Mapping[Hashable, Columns]], Mapping[Hashable, Predicates]]
    """Given the predicates applied anyway to its outputs and its inputs' columns, those
    that may also be applied to each input."""


def _ordered(
    nodes: Sequence[PredicateNode], feedback: Sequence[Hashable], *, upstream: bool
) -> list[PredicateNode]:
    """``nodes`` so that every node comes after the nodes it waits for: its producers
    (downstream order), or its consumers (``upstream``); feedback channels are cut. Nodes
    left in a cycle (there is none in a validated network) come last."""
    loops = set(feedback)
    waits: dict[int, set[int]] = {}
    by_channel: dict[Hashable, list[int]] = {}
    for i, node in enumerate(nodes):
        for channel in node.inputs if upstream else node.outputs:
            by_channel.setdefault(channel, []).append(i)
    for i, node in enumerate(nodes):
        channels = node.outputs if upstream else node.inputs
        waits[i] = {j for c in channels if c not in loops for j in by_channel.get(c, ()) if j != i}
    # in waves: each wave the nodes waiting for none left, in their given order
    waited_by: dict[int, list[int]] = {i: [] for i in waits}
    for i, waited in waits.items():
        for j in waited:
            waited_by[j].append(i)
    left = {i: len(waited) for i, waited in waits.items()}
    order: list[int] = []
    ready = [i for i in range(len(nodes)) if not left[i]]
    while ready:
        order.extend(ready)
        freed: set[int] = set()
        for j in ready:
            for i in waited_by[j]:
                left[i] -= 1
                if not left[i]:
                    freed.add(i)
        ready = sorted(freed)
    if len(order) < len(nodes):  # a cycle
        placed = set(order)
        order.extend(i for i in range(len(nodes)) if i not in placed)
    return [nodes[i] for i in order]


def column_names(
    nodes: Sequence[PredicateNode], feedback: Sequence[Hashable] = ()
) -> dict[Hashable, Columns]:
    """Per channel, its columns when known before anything runs (None: not known).

    A channel of several producers has their columns when they agree; a feedback
    channel's are not known.

    Examples
    --------
    >>> same = lambda columns: next(iter(columns.values()))
    >>> names = column_names([
    ...     PredicateNode("scan", (), ("a",), lambda columns: frozenset({"x"}), None),
    ...     PredicateNode("sort", ("a",), ("b",), same, None),
    ... ])
    >>> sorted(names["b"])
    ['x']
    """
    loops = set(feedback)
    names: dict[Hashable, Columns] = {}
    seen: set[Hashable] = set()
    for node in _ordered(nodes, feedback, upstream=False):
        given = node.columns({c: None if c in loops else names.get(c) for c in node.inputs})
        for channel in node.outputs:
            names[channel] = given if channel not in seen or names[channel] == given else None
            seen.add(channel)
    for node in nodes:
        for channel in node.inputs:
            names.setdefault(channel, None)
    return names


def pushed_predicates(
    nodes: Sequence[PredicateNode],
    feedback: Sequence[Hashable] = (),
    *,
    names: Mapping[Hashable, Columns] | None = None,
) -> dict[Hashable, Predicates]:
    """Per channel, the predicates its consumers apply anyway (empty when none).
    ``names``: the channels' columns (`column_names`), when the caller has them.

    Examples
    --------
    >>> import polars as pl
    >>> p = Predicate(pl.col("x") > 1, origin="filter")
    >>> unknown = lambda columns: None
    >>> pushed = pushed_predicates([
    ...     PredicateNode("scan", (), ("a",), unknown, lambda wanted, columns: {}),
    ...     PredicateNode("sort", ("a",), ("b",), unknown, lambda wanted, columns: {"a": wanted}),
    ...     PredicateNode("filter", ("b",), ("c",), unknown, lambda wanted, columns: {"b": wanted | {p}}),
    ...     PredicateNode("sink", ("c",), (), unknown, lambda wanted, columns: {"c": frozenset()}),
    ... ])
    >>> pushed["a"] == {p}
    True
    """
    if names is None:
        names = column_names(nodes, feedback)
    loops = set(feedback)
    consumers: dict[Hashable, int] = {}
    for node in nodes:
        for channel in node.inputs:
            consumers[channel] = consumers.get(channel, 0) + 1
    applied: dict[Hashable, Predicates] = {}
    heard: dict[Hashable, int] = {}
    for node in _ordered(nodes, feedback, upstream=True):
        outputs = [applied.get(c, frozenset()) for c in node.outputs]
        wanted: Predicates = functools.reduce(_either, outputs) if outputs else frozenset()
        passed = node.passes(wanted, {c: names.get(c) for c in node.inputs})
        for channel in node.inputs:
            got = frozenset() if channel in loops else frozenset(passed.get(channel, ()))
            applied[channel] = got if channel not in heard else _either(applied[channel], got)
            heard[channel] = heard.get(channel, 0) + 1
    # a channel some consumer of which did not answer (left in a cycle) gets nothing
    channels = {c: None for node in nodes for c in (*node.inputs, *node.outputs)}
    return {
        c: applied[c] if c in applied and heard.get(c) == consumers.get(c) else frozenset()
        for c in channels
    }


def _either(one: Predicates, other: Predicates) -> Predicates:
    """What a row passing all of ``one`` or all of ``other`` passes: the predicates
    common to both, and the disjunction of the rest of each (`Predicate.either`).

    Of a channel some consumers of which apply ``one`` and the others ``other``, or of
    a node some outputs of which get ``one`` and the others ``other``, only rows that
    fail this are never used."""
    common = one & other
    either = Predicate.either([one - common, other - common])
    return common if either is None else common | {either}


def describe(
    node: ActorNode, extra: Mapping[Channel[Any], Predicates] | None = None
) -> PredicateNode:
    """The node as predicate pushdown sees it (``extra``: key filters it applies to inputs)."""

    def columns(inputs: Mapping[Hashable, Columns]) -> Columns:
        return node.output_columns(inputs)  # type: ignore[arg-type]

    def passes(
        wanted: Predicates, inputs: Mapping[Hashable, Columns]
    ) -> Mapping[Hashable, Predicates]:
        passed = node.passed_predicates(wanted, inputs)  # type: ignore[arg-type]
        for channel, more in (extra or {}).items():
            passed[channel] = passed.get(channel, frozenset()) | more
        return passed  # type: ignore[return-value]

    return PredicateNode(node.name, node.inputs, node.outputs, columns, passes)


# ------------------------------------------------------------------ key filters
KEY_FILTER_ROUNDS = 4
"""How many times the joins are looked at again for inputs that key filters cut down."""
KEY_FILTER_MIN_ROWS = 1 << 20
"""A key filter is made only for an input whose sources give at least this many rows (or
an unknown number): its sources wait for the other input to be read whole, which costs a
small input more time than reading it all (TPC-H Q2 at SF 1 waited on four scans in a
row for tables of 25 to 800,000 rows)."""

def _ancestors(
    channel: Channel[Any], producers: Mapping[Channel[Any], list[ActorNode]]
) -> list[ActorNode]:
    """The nodes upstream of ``channel``, each once."""
    found: dict[int, ActorNode] = {}
    todo = [channel]
    while todo:
        for node in producers.get(todo.pop(), ()):
            if id(node) not in found:
                found[id(node)] = node
                todo.extend(node.inputs)
    return list(found.values())


def _cut_down(upstream: Sequence[ActorNode], applied: Mapping[Hashable, Predicates]) -> bool:
    """Whether a filter acts upstream: a filter actor or a source's own ``filters=`` there,
    or predicates pushed to a source."""
    for node in upstream:
        if node.filters_rows():
            return True
        if node.definition.pushdown and any(applied.get(c) for c in node.outputs):
            return True
    return False


def _closed(
    upstream: Sequence[ActorNode],
    channel: Channel[Any],
    consumers: Mapping[Channel[Any], list[ActorNode]],
    loops: set[Channel[Any]],
) -> bool:
    """Whether ``upstream`` (the nodes upstream of ``channel``) sends nowhere but into
    itself and ``channel``, which one node consumes: then it ends without anything else
    moving, and that node can read ``channel`` whole before its other inputs."""
    inside = {id(node) for node in upstream}
    for node in upstream:
        for out in node.outputs:
            if out in loops:
                return False
            if out is not channel and not all(id(c) in inside for c in consumers.get(out, ())):
                return False
    return len(consumers.get(channel, ())) == 1


def _estimate(upstream: Sequence[ActorNode]) -> float:
    """About how many rows come out of ``upstream``: its largest source's (unknown: inf)."""
    rows = [node.estimated_rows() for node in upstream if not node.inputs]
    known = [r for r in rows if r is not None]
    return float("inf") if not known or len(known) < len(rows) else float(max(known))


def key_filters(
    nodes: Sequence[ActorNode],
    applied: Mapping[Hashable, Predicates],
    feedback: Sequence[Channel[Any]] = (),
    *,
    skip: Collection[ActorNode] = (),
) -> dict[ActorNode, dict[Channel[Any], Predicates]]:
    """For each node that drops the rows of an input whose keys another input lacks (a
    join, ``define_actor(matches=...)``), the key filters of that input: when the other
    input is cut down by a filter (``applied``: the predicates of the first pass) and can
    be read whole first, since nothing upstream of it sends elsewhere. Of two such inputs,
    the one whose sources give fewer rows gives its keys. The node publishes each filter's
    `KeySet` (`ActorNode.key_sets`). Nodes in ``skip`` (which have theirs) are left out.
    """
    producers: dict[Channel[Any], list[ActorNode]] = {}
    consumers: dict[Channel[Any], list[ActorNode]] = {}
    for node in nodes:
        for channel in node.outputs:
            producers.setdefault(channel, []).append(node)
        for channel in node.inputs:
            consumers.setdefault(channel, []).append(node)
    loops = set(feedback)
    found: dict[ActorNode, dict[Channel[Any], Predicates]] = {}
    for node in nodes:
        if node in skip:
            continue
        by_parameter = {e.parameter: e.channel for e in node.endpoints if e.role == "input"}
        best: tuple[float, int, str, tuple[str, ...], str, tuple[str, ...], float] | None = None
        for order, (build, build_keys, probe, probe_keys) in enumerate(node.key_matches()):
            built = by_parameter.get(build)
            if built is None or probe not in by_parameter or built in loops:
                continue
            upstream = _ancestors(built, producers)
            if not _cut_down(upstream, applied) or not _closed(upstream, built, consumers, loops):
                continue
            probe_rows = _estimate(_ancestors(by_parameter[probe], producers))
            if probe_rows < KEY_FILTER_MIN_ROWS:
                continue  # the other input is small: reading it whole is quicker than waiting
            candidate = (_estimate(upstream), order, build, build_keys, probe, probe_keys, probe_rows)
            best = candidate if best is None or candidate[:2] < best[:2] else best
        if best is None:
            continue
        _, _, build, build_keys, probe, probe_keys, probe_rows = best
        rows = None if probe_rows == float("inf") else int(probe_rows)
        key_sets = [KeySet(node.name, build, key, rows) for key in build_keys]
        node.publish_keys_from(build, key_sets)
        found[node] = {
            by_parameter[probe]: frozenset(
                Predicate(pl.col(key), origin=node.name, keys=key_set)
                for key, key_set in zip(probe_keys, key_sets, strict=True)
            )
        }
    return found


INHERITED_KEY_FILTER_MIN_ROWS = 1 << 18
"""An inherited key filter (`inherited_key_filters`) is made only for an input whose
sources give at least this many rows (or an unknown number). Its sources wait only for
keys that a join publishes anyway, so it pays for smaller inputs than a key filter of
its own does (`KEY_FILTER_MIN_ROWS`): TPC-H Q9 at SF 1 joins ``partsupp`` (800,000
rows) with lineitems of green parts only, and the part keys cut it to 43,000."""


def inherited_key_filters(
    nodes: Sequence[ActorNode],
    found: Mapping[ActorNode, Mapping[Channel[Any], Predicates]],
    applied: Mapping[Hashable, Predicates],
    feedback: Sequence[Channel[Any]] = (),
    *,
    names: Mapping[Hashable, Columns] | None = None,
) -> dict[ActorNode, dict[Channel[Any], Predicates]]:
    """Key filters that a join passes on without reading anything whole: where every row
    of one of its inputs has a key among the keys another join publishes (a `KeySet` of
    ``found``), the rows of its other input whose key is not among them find no match.

    A join's input that it reads whole holds the key sets it publishes of it. The rows a
    join (``define_actor(matches=...)``) keeps of its other input had a match there, so
    hold them too on the matching keys. A node's output holds a key set on a column
    when the node would move that predicate only to inputs that hold it (as
    `held_predicates` finds for filters). A join one input of which holds a key set on a
    key gives the other input that key filter, where that input's sources give enough
    rows (`INHERITED_KEY_FILTER_MIN_ROWS`) and none of them is among the sources the keys
    wait for: those upstream of the input they are read from, and those the key sets
    their sources wait for (``applied``: the predicates found so far) wait for in turn.
    Otherwise they would wait for their own rows.
    """
    loops = set(feedback)
    descriptions = [describe(node, found.get(node)) for node in nodes]
    by_description = {id(d): node for d, node in zip(descriptions, nodes, strict=True)}
    if names is None:
        names = column_names(descriptions, feedback)
    producers: dict[Channel[Any], list[ActorNode]] = {}
    for node in nodes:
        for channel in node.outputs:
            producers.setdefault(channel, []).append(node)
    seeds: dict[Channel[Any], set[Predicate]] = {}
    read_from: dict[int, Channel[Any]] = {}  # per key set (by id), the input it is read from
    for node in nodes:
        by_parameter = {e.parameter: e.channel for e in node.endpoints if e.role == "input"}
        for parameter, key_sets in node.key_sets.items():
            read = by_parameter.get(parameter)
            if read is None or read in loops:
                continue
            for key_set in key_sets:
                seeds.setdefault(read, set()).add(
                    Predicate(pl.col(key_set.column), origin=node.name, keys=key_set)
                )
                read_from[id(key_set)] = read
    if not seeds:
        return {}
    waits = {
        id(node): {k for c in node.outputs for p in applied.get(c, ()) for k in p.key_sets}
        for node in nodes
        if not node.inputs
    }
    held: dict[Channel[Any], Predicates] = {}
    inherited: dict[ActorNode, dict[Channel[Any], Predicates]] = {}
    for description in _ordered(descriptions, feedback, upstream=False):
        node = by_description[id(description)]
        holds: dict[Channel[Any], set[Predicate]] = {
            c: set() if c in loops else {*held.get(c, ()), *seeds.get(c, ())}
            for c in node.inputs
        }
        own = {c: frozenset(p) for c, p in holds.items()}  # before what matches add
        by_parameter = {e.parameter: e.channel for e in node.endpoints if e.role == "input"}
        matches = node.key_matches()
        for build, build_keys, probe, probe_keys in matches:
            built, probed = by_parameter.get(build), by_parameter.get(probe)
            if built is None or probed is None or built in loops or probed in loops:
                continue
            for predicate in list(holds[built]):
                (column,) = predicate.columns
                if column in build_keys:
                    at = probe_keys[build_keys.index(column)]
                    holds[probed].add(predicate.renamed({column: at}))
        for build, build_keys, probe, probe_keys in matches:
            source, target = by_parameter.get(build), by_parameter.get(probe)
            if source is None or target is None or source in loops or target in loops:
                continue
            for predicate in held.get(source, frozenset()) | seeds.get(source, set()):
                (column,) = predicate.columns
                keys = predicate.keys
                if column not in build_keys or keys is None or read_from[id(keys)] is source:
                    continue  # the node's own key filter, if any, is found already
                moved = Predicate(
                    pl.col(probe_keys[build_keys.index(column)]), origin=node.name, keys=keys
                )
                if moved in found.get(node, {}).get(target, ()) or moved in own[target]:
                    continue
                ancestors = _ancestors(target, producers)
                upstream = [n for n in ancestors if not n.inputs]
                needed = _sources_awaited(keys, read_from, producers, waits)
                if any(id(n) in needed for n in upstream) or (
                    _estimate(ancestors) < INHERITED_KEY_FILTER_MIN_ROWS
                ):
                    continue
                for waiting in upstream:  # they wait for these keys now
                    waits.setdefault(id(waiting), set()).add(keys)
                mine = inherited.setdefault(node, {})
                mine[target] = mine.get(target, frozenset()) | {moved}
        columns: dict[Hashable, Columns] = {c: names.get(c) for c in node.inputs}
        candidates = {p for c in node.inputs for p in holds[c]}
        always = description.passes(frozenset(), columns)  # a filter's own, say
        out: set[Predicate] = set()
        for channel in node.outputs:
            known = names.get(channel)
            for predicate in candidates:
                if known is None or not predicate.columns <= known or predicate in out:
                    continue
                if _passed_on(description, predicate, columns, always, holds):
                    out.add(predicate)
        for channel in node.outputs:
            if channel not in loops:
                mine_out = frozenset(p for p in out if p.columns <= (names.get(channel) or set()))
                held[channel] = mine_out if channel not in held else held[channel] & mine_out
    return inherited


def _sources_awaited(
    keys: KeySet,
    read_from: Mapping[int, Channel[Any]],
    producers: Mapping[Channel[Any], list[ActorNode]],
    waits: Mapping[int, set[KeySet]],
) -> set[int]:
    """The sources (by id) whose rows ``keys`` wait for: those upstream of the input they
    are read from, and, in turn, those the key sets these sources wait for wait for."""
    found: set[int] = set()
    todo, seen = [keys], {id(keys)}
    while todo:
        read = read_from.get(id(todo.pop()))
        if read is None:
            continue
        for node in _ancestors(read, producers):
            if node.inputs or id(node) in found:
                continue
            found.add(id(node))
            for more in waits.get(id(node), ()):
                if id(more) not in seen:
                    seen.add(id(more))
                    todo.append(more)
    return found


def push(
    nodes: Sequence[ActorNode],
    feedback: Sequence[Channel[Any]] = (),
    *,
    keys: bool = True,
    elide: bool = True,
) -> dict[str, Predicates]:
    """Give each source among ``nodes`` that applies predicates those its consumers apply
    anyway (`ActorNode.push`); per such source that got some, those predicates. With
    ``keys``, joins give key filters too (`key_filters`), found on the predicates
    moved so far, and moved in turn: an input cut down by a key filter may give its
    own keys (a few rounds)."""
    described = [describe(node) for node in nodes]
    # the channels' columns, which no predicate changes: found once for every pass
    names = column_names(described, feedback)
    applied = pushed_predicates(described, feedback, names=names)
    extra: dict[ActorNode, dict[Channel[Any], Predicates]] = {}
    for _ in range(KEY_FILTER_ROUNDS if keys else 0):
        found = key_filters(nodes, applied, feedback, skip=extra)
        if not found:
            break
        extra.update(found)
        applied = pushed_predicates(
            [describe(node, extra.get(node)) for node in nodes], feedback, names=names
        )
    if keys and extra:
        for node, more in inherited_key_filters(
            nodes, extra, applied, feedback, names=names
        ).items():
            mine = extra.setdefault(node, {})
            for channel, predicates in more.items():
                mine[channel] = mine.get(channel, frozenset()) | predicates
        applied = pushed_predicates(
            [describe(node, extra.get(node)) for node in nodes], feedback, names=names
        )
    pushed: dict[str, Predicates] = {}
    for node in nodes:
        if node.definition.pushdown and node.outputs:
            sets = [applied.get(channel, frozenset()) for channel in node.outputs]
            predicates = functools.reduce(_either, sets)
            node.push(predicates)
            if predicates:
                pushed[node.name] = predicates
    if elide:
        elide_filters(nodes, applied, feedback, names=names)
    return pushed


# ------------------------------------------------------------------ filters left out
def held_predicates(
    nodes: Sequence[ActorNode],
    applied: Mapping[Hashable, Predicates],
    feedback: Sequence[Channel[Any]] = (),
    *,
    names: Mapping[Hashable, Columns] | None = None,
) -> dict[Hashable, Predicates]:
    """Per channel, the predicates true on every row it carries, found downstream: those
    a source that applies predicates is pushed (``applied``: `pushed_predicates`), when
    their columns are among its own; those a filter states; and those a node passes
    on, when every predicate it would move to its inputs holds there.

    A node moves a predicate to an input only where the predicate's columns come from
    that input unchanged (renamed at most): its rows passing the moved predicate give
    only rows passing the predicate. Key filters and disjunctions are left out."""
    descriptions = [describe(node) for node in nodes]
    by_description = {id(d): node for d, node in zip(descriptions, nodes, strict=True)}
    if names is None:
        names = column_names(descriptions, feedback)
    loops = set(feedback)
    held: dict[Hashable, Predicates] = {}

    def plain(predicates: Predicates) -> Predicates:
        return frozenset(p for p in predicates if p.keys is None and not p.branches)

    for description in _ordered(descriptions, feedback, upstream=False):
        node = by_description[id(description)]
        out: Predicates = frozenset()
        if not node.inputs:
            if node.definition.pushdown and len(node.outputs) == 1:
                known = names.get(node.outputs[0])
                pushed = plain(applied.get(node.outputs[0], frozenset()))
                out = frozenset(p for p in pushed if known is not None and p.columns <= known)
        else:
            given = {
                c: frozenset() if c in loops else held.get(c, frozenset()) for c in node.inputs
            }
            columns: dict[Hashable, Columns] = {c: names.get(c) for c in node.inputs}
            always = description.passes(frozenset(), columns)  # a filter's own, say
            wanted = frozenset().union(*(plain(applied.get(c, frozenset())) for c in node.outputs))
            kept = set(_stated(node))
            kept.update(p for p in wanted if _passed_on(description, p, columns, always, given))
            out = frozenset(kept)
        for channel in node.outputs:
            if channel in loops:
                continue
            held[channel] = out if channel not in held else held[channel] & out
    return held


def _passed_on(
    description: PredicateNode,
    predicate: Predicate,
    columns: Mapping[Hashable, Columns],
    always: Mapping[Hashable, Predicates],
    held: Mapping[Any, AbstractSet[Predicate]],
) -> bool:
    """Whether ``predicate`` holds on the outputs of the node ``description`` describes:
    the node would move it to an input, and every predicate it would move there, beyond
    those it moves anyway (``always``: a filter's own), ``held`` says holds on that input."""
    moved = description.passes(frozenset({predicate}), columns)
    needs = {
        c: frozenset(moved.get(c, ())) - frozenset(always.get(c, ())) for c in description.inputs
    }
    return any(needs.values()) and all(needs[c] <= held[c] for c in description.inputs)


def _stated(node: ActorNode) -> Predicates:
    """The movable conjuncts of the node's own filter step (none if it has none)."""
    from streamnet.plans import Filter  # plans import the runtime lazily

    def stated() -> Predicates:
        step = node.step()
        return (
            Predicate.of(step.predicate, origin=node.name)
            if isinstance(step, Filter)
            else frozenset()
        )

    return node.answer("stated", stated)


def elide_filters(
    nodes: Sequence[ActorNode],
    applied: Mapping[Hashable, Predicates],
    feedback: Sequence[Channel[Any]] = (),
    *,
    names: Mapping[Hashable, Columns] | None = None,
) -> dict[str, Predicates]:
    """Leave out of each filter the conjuncts that hold on its input already
    (`held_predicates`: a source upstream applies them), and have those sources commit
    to apply what they were pushed (`ActorNode.commit`): a filter left with nothing
    passes its chunks on, and the columns only it read are no longer read. Per filter
    that leaves some out, those."""
    held = held_predicates(nodes, applied, feedback, names=names)
    implied: dict[str, Predicates] = {}
    for node in nodes:
        if len(node.inputs) != 1 or node.definition.pushdown:
            continue
        found = frozenset(p for p in _stated(node) if p in held.get(node.inputs[0], frozenset()))
        if found:
            node.imply(found)
            implied[node.name] = found
    if implied:
        for node in nodes:
            if not node.inputs and node.definition.pushdown and len(node.outputs) == 1:
                node.commit(held.get(node.outputs[0], frozenset()))
    return implied
