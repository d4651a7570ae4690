"""Predicate pushdown over a network's description: what every consumer applies moves up;
fan-outs keep what their branches share; sinks, loops and unknown actors stop it."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import polars as pl

from streamnet import Predicate
from streamnet.network._predicates import PredicateNode, column_names, pushed_predicates
from streamnet.plans._columns import Columns

P = Predicate(pl.col("x") > 1, origin="f1")
Q = Predicate(pl.col("y") < 2, origin="f2")
NONE: frozenset[Predicate] = frozenset()


def _same(columns: Mapping[Hashable, Columns]) -> Columns:
    known = set(columns.values())
    return known.pop() if len(known) == 1 else None


def _node(name: str, inputs: tuple[str, ...], outputs: tuple[str, ...], *, adds: frozenset[Predicate] = NONE,
          passes: bool = True, emits: Columns = None) -> PredicateNode:  # fmt: skip
    def passed(
        wanted: frozenset[Predicate], columns: Mapping[Hashable, Columns]
    ) -> Mapping[Hashable, frozenset[Predicate]]:
        return dict.fromkeys(inputs, (wanted if passes else NONE) | adds)

    def given(columns: Mapping[Hashable, Columns]) -> Columns:
        return emits if emits is not None else _same(columns) if passes else None

    return PredicateNode(name, inputs, outputs, given, passed)


def test_a_predicate_moves_up_a_chain_of_nodes_that_let_it_through() -> None:
    nodes = [
        _node("scan", (), ("a",), emits=frozenset({"x", "y"})),
        _node("sort", ("a",), ("b",)),
        _node("filter1", ("b",), ("c",), adds=frozenset({P})),
        _node("shuffle", ("c",), ("d",)),
        _node("filter2", ("d",), ("e",), adds=frozenset({Q})),
        _node("sink", ("e",), (), passes=False),
    ]
    pushed = pushed_predicates(nodes)
    assert pushed["a"] == {P, Q} and pushed["c"] == {Q} and pushed["e"] == NONE
    assert column_names(nodes)["e"] == frozenset({"x", "y"})


def test_an_unknown_node_stops_what_comes_from_below_it() -> None:
    nodes = [
        _node("scan", (), ("a",)),
        _node("user", ("a",), ("b",), passes=False),
        _node("filter", ("b",), ("c",), adds=frozenset({P})),
        _node("sink", ("c",), (), passes=False),
    ]
    pushed = pushed_predicates(nodes)
    assert pushed["a"] == NONE and pushed["b"] == {P}
    assert column_names(nodes)["c"] is None


def test_a_fan_out_moves_only_what_every_branch_applies() -> None:
    nodes = [
        _node("scan", (), ("a",)),
        _node("fanout", ("a",), ("b", "c")),
        _node("left", ("b",), ("d",), adds=frozenset({P, Q})),
        _node("right", ("c",), ("e",), adds=frozenset({P})),
        _node("sink1", ("d",), (), passes=False),
        _node("sink2", ("e",), (), passes=False),
    ]
    assert pushed_predicates(nodes)["a"] == {P}


def test_a_channel_shared_by_consumers_moves_what_they_all_apply() -> None:
    nodes = [
        _node("scan", (), ("a",)),
        _node("filter1", ("a",), ("b",), adds=frozenset({P, Q})),
        _node("filter2", ("a",), ("b",), adds=frozenset({Q})),
        _node("sink", ("b",), (), passes=False),
    ]
    assert pushed_predicates(nodes)["a"] == {Q}


def test_a_feedback_channel_and_one_nobody_consumes_carry_nothing() -> None:
    nodes = [
        _node("scan", (), ("a",)),
        _node("step", ("a", "loop"), ("loop", "out"), adds=frozenset({P})),
        _node("filter", ("out",), ("end",), adds=frozenset({Q})),
    ]
    pushed = pushed_predicates(nodes, feedback=["loop"])
    assert pushed["loop"] == NONE and pushed["end"] == NONE
    assert pushed["out"] == {Q}
    assert pushed["a"] == {P}  # its own; what `out` carries it would have to meet on `loop` too
    assert column_names(nodes, feedback=["loop"])["loop"] is None
