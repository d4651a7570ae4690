"""Collective: an operation's own tags, with arguments in the order of a Communicator's."""

from __future__ import annotations

import pyarrow as pa
import pytest

from streamnet import Collective, Context, Network, NetworkMismatchError, define_actor, run_ranks


@define_actor(collective=True)
async def ring(ctx: Context) -> tuple[int, int, list[int], pa.Schema | None]:
    coll = Collective(ctx)
    right, left = (coll.rank + 1) % coll.nranks, (coll.rank - 1) % coll.nranks
    await coll.send(right, "ring", coll.rank * 10)  # send(dest, tag, payload)
    await coll.send(right, ("two", "parts"), coll.rank)
    one = await coll.recv(left, "ring")
    two = await coll.recv(left, ("two", "parts"))
    everyone = await coll.allgather("all", coll.rank)  # allgather(tag, value)
    schema = pa.schema([("x", pa.int64())]) if coll.rank == 0 else None
    agreed = await coll.agree_schema("input", schema)
    return one, two, everyone, agreed


async def _ring_job(ctx: Context) -> tuple[int, int, list[int], pa.Schema | None]:
    node = ring(ctx)
    await Network(ctx, actors=[node]).run_async()
    return node.result()


@pytest.mark.timeout(60)
def test_collective_arguments_follow_the_communicator_order() -> None:
    results = run_ranks(3, _ring_job)
    schema = pa.schema([("x", pa.int64())])
    assert results == [
        (20, 2, [0, 1, 2], schema),
        (0, 0, [0, 1, 2], schema),
        (10, 1, [0, 1, 2], schema),
    ]


@define_actor(collective=True)
async def tags(ctx: Context) -> tuple[tuple[object, ...], tuple[object, ...]]:
    coll = Collective(ctx)
    return coll.tag("a"), coll.tag("a", 1)


async def _tags_job(ctx: Context) -> tuple[tuple[object, ...], tuple[object, ...]]:
    node = tags(ctx)
    await Network(ctx, actors=[node]).run_async()
    return node.result()


@pytest.mark.timeout(60)
def test_a_tuple_tag_gives_its_parts_after_the_operation_id() -> None:
    [(one, two)] = run_ranks(1, _tags_job)
    assert one == (0, "a")
    assert two == (0, "a", 1)


@define_actor(collective=True)
async def old_order(ctx: Context) -> None:
    await Collective(ctx).send(0, pa.table({"x": [1]}), "data")  # payload, then tag: the old order


@pytest.mark.timeout(60)
def test_an_unhashable_tag_names_the_actor_and_the_order() -> None:
    async def job(ctx: Context) -> None:
        await Network(ctx, actors=[old_order(ctx)]).run_async()

    with pytest.raises(TypeError, match=r"actor `old_order#0`: a collective's tag must be hashable, got Table; the order is send\(dest, tag, payload\)"):
        run_ranks(1, job)


@define_actor(collective=True)
async def uneven(ctx: Context) -> list[int]:
    """Gathers "sizes" first on every rank but the last, which skips that step."""
    coll = Collective(ctx)
    if coll.rank != coll.nranks - 1:
        await coll.allgather("sizes", coll.rank)
    return await coll.allgather("schema", coll.rank)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("nranks", [2, 3])
def test_ranks_that_take_different_collective_steps_fail_naming_both(nranks: int) -> None:
    """Ranks of a collective actor whose allgathers differ (a step taken on some ranks only)
    would each wait for a message of its own tag forever; they fail at once instead."""

    async def job(ctx: Context) -> None:
        await Network(ctx, actors=[uneven(ctx)]).run_async()

    last = nranks - 1
    with pytest.raises(NetworkMismatchError, match=r"actor `uneven#0`: rank \d gathered '(sizes|schema)' where rank \d gathered '(sizes|schema)'; every rank of a collective actor must take the same collective steps in the same order") as caught:
        run_ranks(nranks, job)
    message = str(caught.value)
    assert "'sizes'" in message and "'schema'" in message and f"rank {last}" in message


@define_actor(collective=True)
async def returns_early(ctx: Context, rank: int, steps: int) -> list[list[int]]:
    """Gathers ``steps`` rounds on every rank but ``rank``, which returns after the first."""
    coll = Collective(ctx)
    got = [await coll.allgather("first", coll.rank)]
    if coll.rank == rank % coll.nranks:
        return got
    for i in range(steps):
        got.append(await coll.allgather(("more", i), coll.rank))
    return got


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("nranks", "rank"), [(2, 0), (2, 1), (3, 1), (3, 2)])
def test_a_rank_whose_collective_returns_early_fails_its_peers_instead_of_hanging(
    nranks: int, rank: int
) -> None:
    """A collective actor that returns on one rank while its peers take another step left
    them waiting forever: the actor's end is a step too, so every rank fails at once."""

    async def job(ctx: Context) -> None:
        await Network(ctx, actors=[returns_early(ctx, rank, 2)]).run_async()

    with pytest.raises(NetworkMismatchError) as caught:
        run_ranks(nranks, job)
    message = str(caught.value)
    assert "actor `returns_early#0`" in message
    # each rank names the step the other took, or its own return
    assert "('more', 0)" in message and "actor had returned" in message


@pytest.mark.timeout(60)
def test_ranks_whose_collectives_return_together_end_well() -> None:
    async def job(ctx: Context) -> list[list[int]]:
        node = returns_early(ctx, rank=-1, steps=0)  # every rank returns after one step
        await Network(ctx, actors=[node]).run_async()
        return node.result()

    assert run_ranks(3, job) == [[[0, 1, 2]]] * 3


@define_actor(collective=True)
async def in_step(ctx: Context) -> list[list[int]]:
    coll = Collective(ctx)
    return [await coll.allgather(("round", i), coll.rank * i) for i in range(3)]


@pytest.mark.timeout(60)
def test_allgathers_in_the_same_order_on_every_rank_each_get_their_own_values() -> None:
    async def job(ctx: Context) -> list[list[int]]:
        node = in_step(ctx)
        await Network(ctx, actors=[node]).run_async()
        return node.result()

    assert run_ranks(3, job) == [[[0, 0, 0], [0, 1, 2], [0, 2, 4]]] * 3
