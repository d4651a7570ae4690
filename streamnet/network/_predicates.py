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
  predicates common to its branches); a channel nobody consumes, or a feedback
  channel, none.

The second pass is the greatest fixpoint of those rules, reached in one sweep
from the sinks up. A source that applies predicates (``define_actor(pushdown=True)``:
``read_parquet``) then applies those of its output too (`push`); the filters stay
where they are, so moving a predicate only ever saves work.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channels import Channel
from streamnet._actor import ActorNode
from streamnet.plans._columns import Columns
from streamnet.plans._predicates import Predicate

__all__ = ["PredicateNode", "column_names", "push", "pushed_predicates"]

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
    order: list[int] = []
    done: set[int] = set()
    while len(done) < len(nodes):
        ready = [i for i in range(len(nodes)) if i not in done and waits[i] <= done]
        if not ready:
            order.extend(i for i in range(len(nodes)) if i not in done)
            break
        order.extend(ready)
        done.update(ready)
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
    nodes: Sequence[PredicateNode], feedback: Sequence[Hashable] = ()
) -> dict[Hashable, Predicates]:
    """Per channel, the predicates its consumers apply anyway (empty when none).

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
        wanted: Predicates = frozenset.intersection(*outputs) if outputs else frozenset()
        passed = node.passes(wanted, {c: names.get(c) for c in node.inputs})
        for channel in node.inputs:
            got = frozenset() if channel in loops else frozenset(passed.get(channel, ()))
            applied[channel] = got if channel not in heard else applied[channel] & got
            heard[channel] = heard.get(channel, 0) + 1
    # a channel some consumer of which did not answer (left in a cycle) gets nothing
    channels = {c: None for node in nodes for c in (*node.inputs, *node.outputs)}
    return {
        c: applied[c] if c in applied and heard.get(c) == consumers.get(c) else frozenset()
        for c in channels
    }


def describe(node: ActorNode) -> PredicateNode:
    """The node as predicate pushdown sees it."""

    def columns(inputs: Mapping[Hashable, Columns]) -> Columns:
        return node.output_columns(inputs)  # type: ignore[arg-type]

    def passes(
        wanted: Predicates, inputs: Mapping[Hashable, Columns]
    ) -> Mapping[Hashable, Predicates]:
        return node.passed_predicates(wanted, inputs)  # type: ignore[arg-type, return-value]

    return PredicateNode(node.name, node.inputs, node.outputs, columns, passes)


def push(
    nodes: Sequence[ActorNode], feedback: Sequence[Channel[Any]] = ()
) -> dict[str, Predicates]:
    """Give each source among ``nodes`` that applies predicates those its consumers apply
    anyway (`ActorNode.push`); per such source that got some, those predicates."""
    applied = pushed_predicates([describe(node) for node in nodes], feedback)
    pushed: dict[str, Predicates] = {}
    for node in nodes:
        if node.definition.pushdown and node.outputs:
            sets = [applied.get(channel, frozenset()) for channel in node.outputs]
            predicates = frozenset.intersection(*sets)
            node.push(predicates)
            if predicates:
                pushed[node.name] = predicates
    return pushed
