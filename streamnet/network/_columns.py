"""Column pruning: which columns each channel's consumers need, found on the network's description.

Pure functions over descriptions of the nodes (`ColumnNode`), like fusion. Each
node says, given the columns wanted of its outputs, which columns it needs of
each input (`ActorNode.needed_columns`): a plan step from its expressions, a
library collective from its declaration (``define_actor(columns=...)``), any
other actor every column. Starting from nothing, the demands grow until they
hold (the needs only grow with what is wanted), so a loop of channels settles
too. A source that prunes (``define_actor(prunes=True)``: ``read_parquet``)
then reads only the columns its output's consumers need.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channels import Channel
from streamnet._actor import ActorNode
from streamnet.plans._columns import Columns, union

__all__ = ["ColumnNode", "column_demands", "prune"]


@dataclass(frozen=True, slots=True)
class ColumnNode:
    """What column pruning needs to know of one node."""

    name: str
    inputs: tuple[Hashable, ...]
    outputs: tuple[Hashable, ...]
    needs: Callable[[Columns], Mapping[Hashable, Columns]]
    """Given the columns wanted of its outputs (None: every column), those it needs of
    each input."""


def column_demands(nodes: Sequence[ColumnNode], feedback: Sequence[Hashable] = ()) -> dict[Hashable, Columns]:
    """Per channel, the columns its consumers need (None: every column).

    A channel nobody consumes, or a feedback channel, is wanted whole.

    Examples
    --------
    >>> every = lambda wanted: {"b": None}
    >>> only_x = lambda wanted: {"a": frozenset({"x"})}
    >>> demands = column_demands([
    ...     ColumnNode("scan", (), ("a",), lambda wanted: {}),
    ...     ColumnNode("select_x", ("a",), ("b",), only_x),
    ...     ColumnNode("sink", ("b",), (), every),
    ... ])
    >>> sorted(demands["a"]), demands["b"]
    (['x'], None)
    """
    consumed = {channel for node in nodes for channel in node.inputs}
    loops = set(feedback)
    demand: dict[Hashable, Columns] = {}
    for node in nodes:
        for channel in (*node.inputs, *node.outputs):
            whole = channel in loops or channel not in consumed
            demand[channel] = None if whole else frozenset()
    for _ in range(len(nodes) + 2):
        changed = False
        for node in nodes:
            wanted = union(demand[channel] for channel in node.outputs) if node.outputs else None
            needs = node.needs(wanted)
            for channel in node.inputs:
                grown = union([demand[channel], needs.get(channel)])
                if grown != demand[channel]:
                    demand[channel] = grown
                    changed = True
        if not changed:
            return demand
    return dict.fromkeys(demand)  # did not settle (it always should): prune nothing


def describe(node: ActorNode) -> ColumnNode:
    """The node as column pruning sees it."""

    def needs(wanted: Columns) -> Mapping[Hashable, Columns]:
        return node.needed_columns(wanted)  # type: ignore[return-value]

    return ColumnNode(node.name, node.inputs, node.outputs, needs)


def prune(nodes: Sequence[ActorNode], feedback: Sequence[Channel[Any]] = ()) -> dict[str, Columns]:
    """Tell each pruning source among ``nodes`` the columns its consumers need
    (`ActorNode.prune_to`); per such source, those columns."""
    demands = column_demands([describe(node) for node in nodes], feedback)
    pruned: dict[str, Columns] = {}
    for node in nodes:
        if node.definition.prunes and node.outputs:
            wanted = union(demands[channel] for channel in node.outputs)
            node.prune_to(wanted)
            pruned[node.name] = wanted
    return pruned
