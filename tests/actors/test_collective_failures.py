"""Failure paths of collectives: a failing rank, mismatched networks, memory bounds."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import polars as pl
import pytest
import ranks

import actors
from streamnet import (
    Context,
    InProcessCommunicator,
    InProcessWorld,
    Message,
    Network,
    NetworkMismatchError,
    RemoteRankError,
    TableChunk,
    define_actor,
)
from streamnet._in_process import guarded


@define_actor
async def chunks_then_fail(ctx, ch_out, fail_on_rank: int, after: int):
    for seq in range(1000):
        if ctx.rank == fail_on_rank and seq == after:
            raise ValueError(f"bad record on rank {ctx.rank}")
        frame = pl.DataFrame({"k": [seq % 5], "v": [seq]})
        await ch_out.send(ctx, Message(seq, TableChunk.from_polars(frame)))
        await asyncio.sleep(0)


def test_a_rank_raising_mid_shuffle_fails_every_rank_with_the_original_error() -> None:
    seen: dict[int, BaseException] = {}

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(), ctx.create_channel()
        try:
            await Network(
                ctx,
                [
                    chunks_then_fail(ctx, a, 1, 5),
                    actors.shuffle(ctx, a, b, "k"),
                    actors.collect(ctx, b),
                ],
            ).run_async()
        except BaseException as exc:
            seen[ctx.rank] = exc
            raise

    nranks = ranks.size(3)
    with pytest.raises(ValueError, match="bad record on rank 1") as info:
        ranks.run(nranks, job, within=10)
    assert any(f"on rank 1 of {nranks}" in note for note in info.value.__notes__)
    assert set(seen) == ranks.here(nranks)
    for rank in ranks.here(nranks) - {1}:
        assert isinstance(seen[rank], RemoteRankError)
        assert seen[rank].rank == 1
        assert "rank 1 failed: ValueError: bad record on rank 1" in str(seen[rank])


def test_a_rank_failing_on_its_first_chunk_is_reported_once_without_stray_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Logged once where it failed, once as RemoteRankError elsewhere; no task left unretrieved."""
    caplog.set_level(logging.ERROR)

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(), ctx.create_channel()
        await Network(
            ctx,
            [
                chunks_then_fail(ctx, a, 1, 0),
                actors.shuffle(ctx, a, b, "k"),
                actors.collect(ctx, b),
            ],
        ).run_async()

    nranks = ranks.size(3)
    with pytest.raises(ValueError, match="bad record on rank 1"):
        ranks.run(nranks, job, within=30)
    logged = [r.getMessage() for r in caplog.records if r.name == "streamnet"]
    for record in caplog.records:  # they hold the failures, and through their tracebacks the tasks
        record.msg, record.args, record.exc_info = record.getMessage(), (), None
    caplog.clear()
    gc.collect()  # an abandoned task reports an unretrieved exception when it is collected
    stray = [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
    assert stray == []
    for rank in ranks.here(nranks):
        mine = [message for message in logged if f"on rank {rank}:" in message]
        assert len(mine) == 1, mine
        expected = "ValueError: bad record" if rank == 1 else "RemoteRankError: rank 1 failed"
        assert expected in mine[0]


def test_a_rank_failing_before_its_network_starts_does_not_hang_the_others() -> None:
    async def job(ctx: Context) -> None:
        if ctx.rank == 0:
            raise RuntimeError("could not open input")
        a, b = ctx.create_channel(), ctx.create_channel()
        await Network(
            ctx,
            [
                actors.from_polars(ctx, a, pl.DataFrame({"k": [1]})),
                actors.shuffle(ctx, a, b, "k"),
                actors.collect(ctx, b),
            ],
        ).run_async()

    with pytest.raises(RuntimeError, match="could not open input"):
        ranks.run(ranks.size(2), job)


def test_mismatched_networks_are_detected_on_every_rank() -> None:
    seen: dict[int, BaseException] = {}

    async def job(ctx: Context) -> None:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        df = pl.DataFrame({"k": [1, 2], "v": [3, 4]})
        if ctx.rank == 0:
            nodes = [
                actors.from_polars(ctx, a, df),
                actors.shuffle(ctx, a, b, "k"),
                actors.groupby_agg(ctx, b, c, "k", {"v": "sum"}),
                actors.collect(ctx, c),
            ]
        else:
            nodes = [
                actors.from_polars(ctx, a, df),
                actors.groupby_agg(ctx, a, c, "k", {"v": "sum"}),
                actors.collect(ctx, c),
            ]
        try:
            await Network(ctx, nodes).run_async()
        except NetworkMismatchError as exc:
            seen[ctx.rank] = exc
            raise

    nranks = ranks.size(2)
    with pytest.raises(NetworkMismatchError, match="the ranks built different networks") as info:
        ranks.run(nranks, job)
    text = str(info.value)
    assert "rank 0: shuffle (op 0), groupby_agg (op 1)" in text
    assert "rank 1: groupby_agg (op 0)" in text
    assert set(seen) == ranks.here(nranks)


def test_a_rank_hearing_of_a_mismatch_from_a_peer_first_reports_the_mismatch_itself() -> None:
    """Under MPI a peer's abort can overtake the fingerprints; the outcome must not change."""
    world = InProcessWorld(3)
    failed = asyncio.Event()
    abort = world._abort

    def abort_and_tell(rank: int, cause: BaseException) -> None:
        abort(rank, cause)
        failed.set()

    world._abort = abort_and_tell  # type: ignore[method-assign]

    class Late(InProcessCommunicator):
        async def recv(self, source: int, tag: Any) -> Any:
            await failed.wait()  # the peers' fingerprints are there, but the abort comes first
            self._world._raise_if_failed(self.rank)
            return await super().recv(source, tag)

    async def job(ctx: Context) -> None:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        df = pl.DataFrame({"k": [1, 2], "v": [3, 4]})
        nodes = [actors.from_polars(ctx, a, df)]
        if ctx.rank == 0:
            nodes += [
                actors.shuffle(ctx, a, b, "k"),
                actors.groupby_agg(ctx, b, c, "k", {"v": "sum"}),
            ]
        else:
            nodes += [actors.groupby_agg(ctx, a, c, "k", {"v": "sum"})]
        await Network(ctx, [*nodes, actors.collect(ctx, c)]).run_async()

    async def main() -> list[Any]:
        comms = [world.communicator(0), world.communicator(1), Late(world, 2)]
        contexts = [Context(communicator=comm) for comm in comms]
        return await asyncio.wait_for(
            asyncio.gather(*(guarded(job, ctx) for ctx in contexts), return_exceptions=True), 30
        )

    outcomes = asyncio.run(main())
    assert [type(outcome) for outcome in outcomes] == [NetworkMismatchError] * 3
    assert "the ranks built different networks" in str(outcomes[2])
    assert any("found first by rank" in note for note in outcomes[2].__notes__)


def test_operation_ids_follow_build_order() -> None:
    ctx = Context()
    a, b, c, d = (ctx.create_channel() for _ in range(4))
    first = actors.shuffle(ctx, a, b, "k")
    local = actors.filter(ctx, b, c, pl.col("k") > 0)
    second = actors.distinct(ctx, c, d)
    assert (first.op_id, local.op_id, second.op_id) == (0, None, 1)


def test_shuffle_spills_to_stay_within_its_memory_bound(tmp_path) -> None:
    chunk = pl.DataFrame({"k": range(1000), "v": range(1000)})  # 16 kB a chunk
    bound = 4 * chunk.estimated_size()

    async def job(ctx: Context):
        a, b = ctx.create_channel(), ctx.create_channel()
        source = actors.from_polars(ctx, a, pl.concat([chunk] * 40), chunk_rows=1000)
        shuffle = actors.shuffle(
            ctx, a, b, "k", num_partitions=4 * ctx.nranks, max_buffered_bytes=bound
        )
        sink = actors.collect(ctx, b, into="polars")
        await Network(ctx, [source, shuffle, sink]).run_async()
        return shuffle.result(), sink.result()

    nranks = ranks.size(2)
    results = ranks.run(nranks, job)
    total = sum(out.height for _, out in results)
    assert total == nranks * 40 * 1000
    for report, _ in results:
        # Never more than the bound plus the one piece that crossed it.
        assert report.peak_buffered_bytes <= bound + chunk.estimated_size()
        assert report.spilled_bytes > 0
        assert sum(report.bytes_sent.values()) > 0


def test_collective_helpers_refuse_to_run_outside_a_collective_actor() -> None:
    from streamnet import Collective

    with pytest.raises(RuntimeError, match="collective=True"):
        Collective(Context())


def test_collective_bad_arguments() -> None:
    df = pl.DataFrame({"k": [1], "v": [2]})

    def run(make):
        async def job(ctx: Context) -> None:
            a, b = ctx.create_channel(), ctx.create_channel()
            await Network(
                ctx, [actors.from_polars(ctx, a, df), make(ctx, a, b), actors.collect(ctx, b)]
            ).run_async()

        ranks.run(ranks.size(1), job)

    with pytest.raises(ValueError, match="keys must be a column name"):
        run(lambda c, i, o: actors.shuffle(c, i, o, []))
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, "k", {"v": "median"}))
    with pytest.raises(ValueError, match="output names \\['v_sum'\\] repeat"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, "k", [("v", "sum"), ("v", "sum")]))
    with pytest.raises(ValueError, match="`keep` must be"):
        run(lambda c, i, o: actors.distinct(c, i, o, keep="none"))
    with pytest.raises(ValueError, match="one bool per key"):
        run(lambda c, i, o: actors.sort(c, i, o, "k", descending=[True, False]))
    from streamnet import ColumnNotFoundError

    with pytest.raises(ColumnNotFoundError, match="actor `groupby_agg#0`: column `w` not found"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, "k", {"w": "sum"}))
    with pytest.raises(ColumnNotFoundError, match="actor `shuffle#0`: column `zz` not found"):
        run(lambda c, i, o: actors.shuffle(c, i, o, "zz"))


def test_network_statistics_list_each_collectives_bytes_per_peer() -> None:
    df = pl.DataFrame({"k": range(400), "v": range(400)})

    async def job(ctx: Context):
        a, b = ctx.create_channel(), ctx.create_channel()
        shuffle = actors.shuffle(ctx, a, b, "k")
        net = Network(
            ctx, [actors.from_polars(ctx, a, df, chunk_rows=50), shuffle, actors.collect(ctx, b)]
        )
        await net.run_async()
        return net.statistics(), shuffle.result()

    nranks = ranks.size(3)
    for rank, (stats, report) in enumerate(ranks.run(nranks, job)):
        (entry,) = stats.collectives
        assert entry.name == "shuffle#0"
        assert entry.bytes_sent == report.bytes_sent
        assert set(entry.bytes_sent) == set(range(nranks)) - {rank}
        frame = stats.to_polars(what="collectives")
        assert frame.columns == ["name", "peer", "bytes_sent", "bytes_received"]
        assert frame["bytes_sent"].sum() == sum(report.bytes_sent.values())
