"""The ranks of a run agree before it starts: on their collectives and on their backends."""

from __future__ import annotations

import asyncio

import polars as pl
import pytest

from streamnet import (
    Channel,
    Context,
    Message,
    Network,
    NetworkMismatchError,
    TableChunk,
    define_actor,
    run_ranks_async,
)


@define_actor
async def source(ctx: Context, ch_out: Channel[TableChunk], started: list[int]) -> None:
    started.append(ctx.rank)
    await ch_out.send(ctx, Message(0, TableChunk.from_polars(pl.DataFrame({"k": [ctx.rank]}))))
    await ch_out.drain(ctx)


@define_actor
async def sink(ctx: Context, ch_in: Channel[TableChunk]) -> None:
    while await ch_in.recv(ctx) is not None:
        pass


@pytest.mark.timeout(60)
async def test_ranks_whose_backends_differ_fail_naming_each_fingerprint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Polars' hash differs between versions: such ranks would split keys between partitions."""
    mine = f"cpu polars={pl.__version__}"
    # The other of the two versions the project runs on (the compat run is under 1.44.2).
    other = "cpu polars=2.1.0" if pl.__version__ == "1.44.2" else "cpu polars=1.44.2"
    started: list[int] = []

    async def job(ctx: Context) -> None:
        assert ctx.backend.fingerprint() == mine
        if ctx.rank == 1:  # this rank's Polars is another version
            monkeypatch.setattr(ctx.backend, "fingerprint", lambda: other)
        ch = ctx.create_channel()
        await Network(ctx, [source(ctx, ch, started), sink(ctx, ch)]).run_async()

    with pytest.raises(NetworkMismatchError, match="the ranks run different backends") as info:
        await asyncio.wait_for(run_ranks_async(2, job), 30)
    assert f"rank 0: {mine}" in str(info.value)
    assert f"rank 1: {other}" in str(info.value)
    assert started == []  # the check comes before any actor starts


@pytest.mark.timeout(60)
async def test_ranks_of_one_backend_fingerprint_run() -> None:
    started: list[int] = []

    async def job(ctx: Context) -> int:
        ch = ctx.create_channel()
        await Network(ctx, [source(ctx, ch, started), sink(ctx, ch)]).run_async()
        return ctx.rank

    assert await asyncio.wait_for(run_ranks_async(2, job), 30) == [0, 1]
    assert sorted(started) == [0, 1]


@pytest.mark.parametrize("before", [False, True])
async def test_a_rank_whose_job_returned_fails_a_peer_that_waits_for_it(before: bool) -> None:
    """Rank 1 returns (its job is done) while rank 0 runs a network with a collective: rank 0
    fails naming rank 1, where it waited forever. With ``before``, both first ran one such
    network together, whose messages all arrived: only the second one fails."""
    import actors

    frame = pl.DataFrame({"k": [1, 2, 3], "v": [1, 2, 3]})

    async def shuffled(ctx: Context) -> int:
        a, b = ctx.create_channel(), ctx.create_channel()
        out = actors.collect(ctx, b, into="polars")
        await Network(ctx, [actors.from_polars(ctx, a, frame), actors.shuffle(ctx, a, b, ["k"]), out]).run_async()
        return int(out.result().height)

    done: list[int] = []

    async def job(ctx: Context) -> str:
        if before:
            done.append(await shuffled(ctx))
        if ctx.rank == 1:
            return "nothing more to do"
        await shuffled(ctx)
        return "ok"

    with pytest.raises(NetworkMismatchError, match=r"from rank 1, whose job already ended") as info:
        await asyncio.wait_for(run_ranks_async(2, job), 30)
    assert any("on rank 0 of 2" in note for note in info.value.__notes__)
    assert sum(done) == (2 * frame.height if before else 0)  # each row reached one rank
