from __future__ import annotations

import asyncio

import pytest

from streamnet import (
    Context,
    InProcessWorld,
    RemoteRankError,
    SingleCommunicator,
    run_ranks,
)


async def test_in_process_messages_keep_their_order_per_tag() -> None:
    world = InProcessWorld(2)
    a, b = world.communicators()
    for i in range(5):
        await a.send(1, "x", i)
    await a.send(1, "y", "other")
    assert await b.recv(0, "y") == "other"
    assert [await b.recv(0, "x") for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_recv_waits_for_the_send() -> None:
    a, b = InProcessWorld(2).communicators()
    waiting = asyncio.create_task(b.recv(0, "t"))
    await asyncio.sleep(0)
    assert not waiting.done()
    await a.send(1, "t", 42)
    assert await asyncio.wait_for(waiting, 1) == 42


async def test_abort_wakes_pending_receives_on_every_rank() -> None:
    world = InProcessWorld(3)
    c0, c1, c2 = world.communicators()
    pending = [asyncio.create_task(c.recv(0, "t")) for c in (c1, c2)]
    await asyncio.sleep(0)
    c0.abort(ValueError("disk full"))
    for task in pending:
        with pytest.raises(RemoteRankError, match="rank 0 failed: ValueError: disk full") as info:
            await asyncio.wait_for(task, 1)
        assert info.value.rank == 0
        assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(RemoteRankError):
        await c1.send(2, "t", 1)
    assert world.failure is not None


async def test_allgather_and_barrier() -> None:
    world = InProcessWorld(3)

    async def rank(comm):
        await comm.barrier("b")
        return await comm.allgather("g", comm.rank * 2)

    results = await asyncio.gather(*(rank(c) for c in world.communicators()))
    assert results == [[0, 2, 4]] * 3


async def test_bad_peer_ranks_are_rejected() -> None:
    a, _ = InProcessWorld(2).communicators()
    with pytest.raises(ValueError, match="`dest` must be a rank in 0..1, got 2"):
        await a.send(2, "t", 1)
    with pytest.raises(ValueError, match="`source` must be a rank"):
        await a.recv(-1, "t")
    with pytest.raises(ValueError, match="nranks"):
        InProcessWorld(0)


async def test_single_communicator_talks_only_to_itself() -> None:
    comm = SingleCommunicator()
    assert (comm.rank, comm.nranks) == (0, 1)
    await comm.send(0, "t", "me")
    assert await comm.recv(0, "t") == "me"
    assert await comm.allgather("g", 5) == [5]
    with pytest.raises(RuntimeError, match="would hang"):
        await comm.recv(0, "t")
    with pytest.raises(ValueError, match=r"`dest` must be a rank in 0\.\.0"):
        await comm.send(1, "t", 0)


def test_context_exposes_rank_and_size() -> None:
    world = InProcessWorld(2)
    ctx = Context(communicator=world.communicator(1))
    assert (ctx.rank, ctx.nranks) == (1, 2)
    assert (Context().rank, Context().nranks) == (0, 1)
    with pytest.raises(TypeError, match="`communicator`"):
        Context(communicator="mpi")  # type: ignore[arg-type]


def test_run_ranks_returns_results_in_rank_order_and_raises_the_original() -> None:
    async def ok(ctx: Context) -> int:
        return ctx.rank

    assert run_ranks(4, ok) == [0, 1, 2, 3]

    async def failing(ctx: Context) -> None:
        if ctx.rank == 2:
            raise KeyError("missing")
        await ctx.communicator.recv(2, "never")

    with pytest.raises(KeyError) as info:
        run_ranks(3, failing)
    assert any("on rank 2 of 3" in n for n in info.value.__notes__)
