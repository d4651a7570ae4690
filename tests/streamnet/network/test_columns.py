"""Column demands over a network's description: unions at fan-outs, wholes at sinks and loops."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from streamnet.network._columns import ColumnNode, column_demands
from streamnet.plans._columns import Columns


def _needs(*inputs: str, reads: set[str] | None = None, passes: bool = True) -> object:
    def needs(wanted: Columns) -> Mapping[Hashable, Columns]:
        if reads is None and not passes:
            return dict.fromkeys(inputs)
        base: Columns = wanted if passes else frozenset()
        got = None if base is None else base | frozenset(reads or ())
        return dict.fromkeys(inputs, got)

    return needs


def test_a_fan_out_needs_what_any_branch_needs() -> None:
    nodes = [
        ColumnNode("scan", (), ("a",), _needs()),  # type: ignore[arg-type]
        ColumnNode("fanout", ("a",), ("b", "c"), _needs("a")),  # type: ignore[arg-type]
        ColumnNode("left", ("b",), ("d",), _needs("b", reads={"x"}, passes=False)),  # type: ignore[arg-type]
        ColumnNode("right", ("c",), ("e",), _needs("c", reads={"y", "z"}, passes=False)),  # type: ignore[arg-type]
        ColumnNode("sink1", ("d",), (), _needs("d", passes=False)),  # type: ignore[arg-type]
        ColumnNode("sink2", ("e",), (), _needs("e", passes=False)),  # type: ignore[arg-type]
    ]
    demands = column_demands(nodes)
    assert demands["a"] == frozenset({"x", "y", "z"})
    assert demands["b"] == frozenset({"x"}) and demands["c"] == frozenset({"y", "z"})
    assert demands["d"] is None  # a sink of unknown code wants every column


def test_a_loop_and_an_unconsumed_channel_are_wanted_whole() -> None:
    nodes = [
        ColumnNode("scan", (), ("a",), _needs()),  # type: ignore[arg-type]
        ColumnNode("step", ("a", "loop"), ("loop", "out"), _needs("a", "loop")),  # type: ignore[arg-type]
    ]
    demands = column_demands(nodes, feedback=["loop"])
    assert demands["loop"] is None and demands["out"] is None and demands["a"] is None


def test_demands_grow_through_a_chain_of_passing_nodes() -> None:
    nodes = [ColumnNode("scan", (), ("c0",), _needs())]  # type: ignore[arg-type]
    for i in range(5):
        nodes.append(ColumnNode(f"n{i}", (f"c{i}",), (f"c{i + 1}",), _needs(f"c{i}", reads={f"r{i}"})))  # type: ignore[arg-type]
    nodes.append(ColumnNode("select", ("c5",), ("out",), _needs("c5", reads={"k"}, passes=False)))  # type: ignore[arg-type]
    nodes.append(ColumnNode("sink", ("out",), (), _needs("out", passes=False)))  # type: ignore[arg-type]
    assert column_demands(nodes)["c0"] == frozenset({"k", "r0", "r1", "r2", "r3", "r4"})
