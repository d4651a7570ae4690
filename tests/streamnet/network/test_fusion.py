"""Fusion's chains, found on descriptions of networks."""

from __future__ import annotations

import pytest

from streamnet.network._fusion import Chain, NodeDescription, find_chains

d = NodeDescription


# ----------------------------------------------------------------- on descriptions
def test_a_run_of_steps_between_barriers_is_one_chain() -> None:
    chains = find_chains(
        [
            d("src", (), ("a",), False),
            d("f", ("a",), ("b",), True),
            d("w", ("b",), ("c",), True),
            d("s", ("c",), ("e",), True),
            d("sink", ("e",), (), False),
        ]
    )
    assert chains == [Chain("f", ("w", "s"), ("b", "c"), "e")]


def test_a_fan_out_ends_a_chain() -> None:
    chains = find_chains(
        [
            d("f", ("a",), ("b",), True),
            d("w1", ("b",), ("c",), True),
            d("w2", ("b",), ("e",), True),
        ]
    )
    assert chains == []


def test_a_barrier_in_the_middle_makes_two_chains() -> None:
    chains = find_chains(
        [
            d("f", ("a",), ("b",), True),
            d("w", ("b",), ("c",), True),
            d("user", ("c",), ("e",), False),
            d("s", ("e",), ("g",), True),
            d("r", ("g",), ("h",), True),
        ]
    )
    assert [c.nodes for c in chains] == [("f", "w"), ("s", "r")]


@pytest.mark.parametrize(
    "second",
    [
        d("w", ("b",), ("c",), True, restarts=True),
        d("w", ("b",), ("c",), True, context="other"),
        d("w", ("b", "x"), ("c",), True),
    ],
    ids=["restart policy", "other context", "two inputs"],
)
def test_edges_that_do_not_fuse(second: NodeDescription) -> None:
    assert find_chains([d("f", ("a",), ("b",), True), second]) == []


def test_a_feedback_channel_does_not_fuse() -> None:
    nodes = [d("f", ("a",), ("b",), True), d("w", ("b",), ("c",), True)]
    assert find_chains(nodes, feedback=["b"]) == []
    assert len(find_chains(nodes)) == 1


def test_a_producer_with_two_outputs_does_not_fuse() -> None:
    assert find_chains([d("f", ("a",), ("b", "x"), True), d("w", ("b",), ("c",), True)]) == []
