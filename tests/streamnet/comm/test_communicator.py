from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from waiting import until

from streamnet import (
    Communicator,
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
    world = InProcessWorld(2)
    a, b = world.communicators()
    waiting = asyncio.create_task(b.recv(0, "t"))
    await until(lambda: world.waiting() == 1)
    assert not waiting.done()
    await a.send(1, "t", 42)
    assert await asyncio.wait_for(waiting, 1) == 42


async def test_abort_wakes_pending_receives_on_every_rank() -> None:
    world = InProcessWorld(3)
    c0, c1, c2 = world.communicators()
    pending = [asyncio.create_task(c.recv(0, "t")) for c in (c1, c2)]
    await until(lambda: world.waiting() == 2)
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

    async def rank(comm: Communicator) -> list[Any]:
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


# --------------------------------------------------------------------- watching for failures
async def test_watchers_hear_of_a_peers_abort_once_and_not_of_their_own() -> None:
    world = InProcessWorld(3)
    c0, c1, c2 = world.communicators()
    heard: dict[int, list[RemoteRankError]] = {0: [], 1: [], 2: []}
    told = asyncio.Event()

    def watcher(rank: int) -> Callable[[RemoteRankError], None]:
        def hear(error: RemoteRankError) -> None:
            heard[rank].append(error)
            if rank == 2:
                told.set()

        return hear

    stops = [c.watch(watcher(c.rank)) for c in (c0, c1, c2)]
    stops[0]()  # rank 0 stopped watching: it is told nothing
    c1.abort(ValueError("disk full"))
    c2.abort(KeyError("later"))  # a second failure changes nothing
    await asyncio.wait_for(told.wait(), 5)
    # A watcher added now is told after whatever the aborts scheduled (a loop runs its
    # callbacks in order): once it is, any telling of rank 0 or 1 would have happened.
    last = asyncio.get_running_loop().create_future()
    c0.watch(last.set_result)
    await asyncio.wait_for(last, 5)
    assert heard[0] == [] and heard[1] == []
    (error,) = heard[2]
    assert (error.rank, str(error)) == (1, "rank 1 failed: ValueError: disk full")
    assert isinstance(error.__cause__, ValueError)
    assert str(c0.failure) == "rank 1 failed: ValueError: disk full"


async def test_a_watcher_is_told_of_a_failure_known_before_it_watched() -> None:
    world = InProcessWorld(2)
    c0, c1 = world.communicators()
    assert c0.failure is None
    c1.abort(ValueError("gone"))
    heard = asyncio.get_running_loop().create_future()
    c0.watch(heard.set_result)
    error = await asyncio.wait_for(heard, 5)
    assert error.rank == 1


def test_a_watcher_is_told_on_its_own_event_loop_from_another_thread() -> None:
    """A network run on a helper thread's loop hears of a failure recorded elsewhere."""
    world = InProcessWorld(2)
    c0, c1 = world.communicators()
    watching = threading.Event()
    outcome: dict[str, object] = {}

    async def watch() -> None:
        heard: asyncio.Future[RemoteRankError] = asyncio.get_running_loop().create_future()

        def hear(error: RemoteRankError) -> None:
            outcome["thread"] = threading.get_ident()
            heard.set_result(error)

        c0.watch(hear)
        watching.set()
        outcome["error"] = await asyncio.wait_for(heard, 5)

    thread = threading.Thread(target=lambda: asyncio.run(watch()))
    thread.start()
    assert watching.wait(5)
    c1.abort(ValueError("elsewhere"))  # no event loop runs here
    thread.join(10)
    assert outcome["thread"] == thread.ident
    assert str(outcome["error"]) == "rank 1 failed: ValueError: elsewhere"


async def test_a_single_rank_has_nothing_to_watch() -> None:
    comm = SingleCommunicator()
    stop = comm.watch(lambda error: pytest.fail("a single rank has no peers"))
    comm.abort(ValueError("x"))
    stop()
    assert comm.failure is None
