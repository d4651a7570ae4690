"""Failure paths of collectives: a failing rank, mismatched networks, memory bounds."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import ranks

import actors
from actors.testing import Stage
from streamnet import (
    ActorNode,
    Channel,
    Context,
    InProcessCommunicator,
    InProcessWorld,
    Message,
    Network,
    NetworkMismatchError,
    NetworkStatistics,
    RemoteRankError,
    SchemaError,
    TableChunk,
    define_actor,
)
from streamnet.engines._in_process import guarded


@define_actor
async def chunks_then_fail(ctx: Context, ch_out: Channel[Any], fail_on_rank: int, after: int) -> None:
    for seq in range(1000):
        if ctx.rank == fail_on_rank and seq == after:
            raise ValueError(f"bad record on rank {ctx.rank}")
        frame = pl.DataFrame({"k": [seq % 5], "v": [seq]})
        await ch_out.send(ctx, Message(seq, TableChunk.from_polars(frame)))
        await asyncio.sleep(0)  # a yield, so the ranks' sends interleave


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
        error = seen[rank]
        assert isinstance(error, RemoteRankError)
        assert error.rank == 1
        assert "rank 1 failed: ValueError: bad record on rank 1" in str(error)


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
    assert_reported_once(caplog, nranks)


def assert_reported_once(caplog: pytest.LogCaptureFixture, nranks: int) -> None:
    """Rank 1's failure was logged once on rank 1, once as RemoteRankError on each other
    rank, and no task was left with an unretrieved exception."""
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


# A peer's failure ends a rank's network at once, whatever that rank is doing: rank 1
# fails in its first actor while every other rank is busy upstream of its collective.
@pytest.fixture
def no_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under MPI, nothing polls for messages once none moves or is awaited (no grace time),
    except what a running network does to hear of a peer's failure."""
    monkeypatch.setattr("streamnet.comm._mpi_endpoint._LINGER", 0.0)


@define_actor
async def fails_at_once(ctx: Context, ch_out: Channel[Any]) -> None:
    raise ValueError(f"bad record on rank {ctx.rank}")


@define_actor
async def fails_once_the_others_are_busy(ctx: Context, ch_out: Channel[Any]) -> None:
    for peer in range(ctx.nranks):
        if peer != ctx.rank:
            await ctx.communicator.recv(peer, "busy")
    raise ValueError(f"bad record on rank {ctx.rank}")


async def tell_rank_1_busy(ctx: Context) -> None:
    await ctx.communicator.send(1, "busy", None)


def run_while_rank_1_fails(
    busy: Callable[[Context, Any], list[Any]],
    caplog: pytest.LogCaptureFixture,
    *,
    rank_1: Any = fails_at_once,
    collective: str = "shuffle",
    sink: Any = actors.collect,
) -> tuple[dict[int, Network], dict[int, BaseException]]:
    """On every rank: ``busy`` actors (``rank_1`` on rank 1) -> ``collective`` -> ``sink``.

    Checks that rank 1's error is raised, and that every other rank's network
    failed with `RemoteRankError` naming it; returns each rank's network and error.
    """
    caplog.set_level(logging.ERROR)
    networks: dict[int, Network] = {}
    seen: dict[int, BaseException] = {}

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(), ctx.create_channel()
        upstream = [rank_1(ctx, a)] if ctx.rank == 1 else busy(ctx, a)
        if collective == "shuffle":
            middle = actors.shuffle(ctx, a, b, "k")
        else:  # a global aggregation: its one exchange comes after its whole input
            middle = actors.groupby_agg(ctx, a, b, [], {"v": "sum"})
        networks[ctx.rank] = net = Network(ctx, [*upstream, middle, sink(ctx, b)])
        try:
            await net.run_async()
        except BaseException as exc:
            seen[ctx.rank] = exc
            raise

    nranks = ranks.size(2)
    with pytest.raises(ValueError, match="bad record on rank 1"):
        ranks.run(nranks, job, within=20)
    assert set(seen) == ranks.here(nranks)
    for rank in ranks.here(nranks) - {1}:
        error = seen[rank]
        assert isinstance(error, RemoteRankError), error
        assert error.rank == 1
        assert str(error) == "rank 1 failed: ValueError: bad record on rank 1"
        assert networks[rank].state == "failed"
    assert_reported_once(caplog, nranks)
    return networks, seen


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("no_linger")
def test_a_peer_failing_ends_a_rank_waiting_for_something_that_never_happens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waited: set[int] = set()

    @define_actor
    async def waits_forever(ctx: Context, ch_out: Channel[Any]) -> None:
        await tell_rank_1_busy(ctx)
        waited.add(ctx.rank)
        await asyncio.Event().wait()  # nobody sets it: only the peer's failure ends this

    networks, _ = run_while_rank_1_fails(
        lambda ctx, ch: [waits_forever(ctx, ch)],
        caplog,
        rank_1=fails_once_the_others_are_busy,
        collective="global aggregation",  # nothing is exchanged while its input is awaited
    )
    for rank in ranks.here(ranks.size(2)) - {1}:
        assert rank in waited
        assert networks[rank].actors[0].state == "cancelled"


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("no_linger")
def test_a_peer_failing_ends_a_rank_in_a_long_kernel_once_the_kernel_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started, release, returned = threading.Event(), threading.Event(), threading.Event()
    after_kernel: list[int] = []

    def kernel() -> None:
        started.set()
        release.wait(30)  # let go only once this rank's network has failed
        returned.set()

    @define_actor
    async def long_kernel(ctx: Context, ch_out: Channel[Any]) -> None:
        await tell_rank_1_busy(ctx)
        await ctx.to_thread(kernel)
        after_kernel.append(ctx.rank)  # never runs: the actor was cancelled meanwhile

    @define_actor
    async def sink(ctx: Context, ch_in: Channel[Any]) -> None:
        try:
            async for _ in ch_in:
                pass
        finally:  # its input was aborted, or it was cancelled: the network failed
            release.set()

    @define_actor
    async def fails_once_the_kernel_runs(ctx: Context, ch_out: Channel[Any]) -> None:
        for peer in range(ctx.nranks):
            if peer != ctx.rank:
                await ctx.communicator.recv(peer, "busy")
        if not ranks.UNDER_MPI:  # in one process, make sure the kernel runs when rank 1 fails
            await ctx.to_thread(started.wait, 30)
        raise ValueError(f"bad record on rank {ctx.rank}")

    networks, _ = run_while_rank_1_fails(
        lambda ctx, ch: [long_kernel(ctx, ch)], caplog, rank_1=fails_once_the_kernel_runs,
        sink=sink,
    )  # fmt: skip
    assert after_kernel == []
    if not ranks.UNDER_MPI:
        assert started.is_set()
    if started.is_set():  # the network ended only after the running kernel returned
        assert returned.is_set()
        for rank in ranks.here(ranks.size(2)) - {1}:
            assert networks[rank].actors[0].state == "cancelled"


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("no_linger")
def test_a_peer_failing_ends_a_rank_reading_a_slow_source_before_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A minute's scan feeds an aggregation that exchanges only after its whole input."""
    frame = pl.DataFrame({"k": range(1200), "v": range(1200)})

    def slow_scan(ctx: Context, ch_out: Any) -> list[Any]:
        raw = ctx.create_channel()
        return [
            actors.from_polars(ctx, raw, frame, chunk_rows=1),
            actors.throttle(ctx, raw, ch_out, chunks_per_second=20),
        ]

    networks, _ = run_while_rank_1_fails(slow_scan, caplog, collective="global aggregation")
    for rank in ranks.here(ranks.size(2)) - {1}:
        scan, throttle = networks[rank].actors[:2]
        assert "done" not in (scan.state, throttle.state)  # stopped part way


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
        nodes: list[ActorNode[Any]]
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
    abort = world.abort

    def abort_and_tell(rank: int, cause: BaseException) -> None:
        abort(rank, cause)
        failed.set()

    world.abort = abort_and_tell  # type: ignore[method-assign]

    class Late(InProcessCommunicator):
        async def recv(self, source: int, tag: Any) -> Any:
            await failed.wait()  # the peers' fingerprints are there, but the abort comes first
            self._world.failures.check()
            return await super().recv(source, tag)

    async def job(ctx: Context) -> None:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        df = pl.DataFrame({"k": [1, 2], "v": [3, 4]})
        nodes: list[ActorNode[Any]] = [actors.from_polars(ctx, a, df)]
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


def test_shuffle_spills_to_stay_within_its_memory_bound(tmp_path: Path) -> None:
    chunk = pl.DataFrame({"k": range(1000), "v": range(1000)})  # 16 kB a chunk
    bound = 4 * int(chunk.estimated_size())

    async def job(ctx: Context) -> tuple[Any, pl.DataFrame]:
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

    def run(make: Stage) -> None:
        async def job(ctx: Context) -> None:
            a, b = ctx.create_channel(), ctx.create_channel()
            await Network(
                ctx, [actors.from_polars(ctx, a, df), make(ctx, a, b), actors.collect(ctx, b)]
            ).run_async()

        ranks.run(ranks.size(1), job)

    with pytest.raises(ValueError, match="keys must be a column name"):
        run(lambda c, i, o: actors.shuffle(c, i, o, []))
    # a key that is not a list: named by the actor, not a TypeError of the network's passes
    with pytest.raises(ValueError, match="shuffle: keys must be a column name or a non-empty list of names, got 5"):
        run(lambda c, i, o: actors.shuffle(c, i, o, 5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sort: keys must be a column name or a non-empty list of names, got 5"):
        run(lambda c, i, o: actors.sort(c, i, o, 5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_k: keys must be a column name or a non-empty list of names, got 5"):
        run(lambda c, i, o: actors.top_k(c, i, o, by=5, k=1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="distinct: `subset` must be a column name or a list of names, got 5"):
        run(lambda c, i, o: actors.distinct(c, i, o, subset=5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, "k", {"v": "median"}))
    with pytest.raises(ValueError, match="output names \\['v_sum'\\] repeat"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, "k", [("v", "sum"), ("v", "sum")]))
    with pytest.raises(ValueError, match="`keep` must be"):
        run(lambda c, i, o: actors.distinct(c, i, o, keep="none"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one bool per key"):
        run(lambda c, i, o: actors.sort(c, i, o, "k", descending=[True, False]))
    with pytest.raises(TypeError, match=r"give the aggregations as a list .* got 'sum'"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, "k", "sum"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"keys \['k'\] are given more than once"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, ["k", "k"], {"v": "sum"}))
    from streamnet import ColumnNotFoundError

    with pytest.raises(ColumnNotFoundError, match="actor `groupby_agg#0`: column `w` not found"):
        run(lambda c, i, o: actors.groupby_agg(c, i, o, "k", {"w": "sum"}))
    with pytest.raises(ColumnNotFoundError, match="actor `shuffle#0`: column `zz` not found"):
        run(lambda c, i, o: actors.shuffle(c, i, o, "zz"))


def test_join_refuses_bad_arguments_when_it_is_made() -> None:
    """Each bad argument is named as the node is made, before the network's passes read
    the keys (an int key failed there with Polars' `'int' object is not iterable`)."""
    ctx = Context()
    a, b, out = (ctx.create_channel() for _ in range(3))
    bad: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"on": 5}, TypeError, "`on` must be a column name or a non-empty list of names, got 5"),
        ({"on": []}, TypeError, "`on` must be a column name"),
        ({"left_on": "k", "right_on": [1]}, TypeError, "`right_on` must be a column name"),
        ({"on": "k", "suffix": None}, TypeError, "`suffix` must be a string"),
        ({"on": "k", "how": "outer"}, ValueError, "`how` must be inner, left"),
        ({"on": "k", "strategy": "hash"}, ValueError, "`strategy` must be auto"),
        ({"on": "k", "broadcast_threshold": -1}, ValueError, "`broadcast_threshold` must be"),
        ({"on": "k", "num_partitions": 0}, ValueError, "`num_partitions` must be an int >= 1"),
        ({"on": "k", "left_on": "k"}, ValueError, "give `on`, or `left_on` and `right_on`, not both"),
        ({"left_on": "k"}, ValueError, "give the keys with `on`, or with `left_on` and `right_on`"),
        ({"left_on": "k", "right_on": ["k", "v"]}, ValueError,
         "`left_on` ['k'] and `right_on` ['k', 'v'] differ in length"),
        ({"on": "k", "how": "full", "strategy": "broadcast"}, ValueError, "how='full' cannot broadcast"),
    ]
    for arguments, kind, message in bad:
        with pytest.raises(kind, match=f"actor `join#0`: {re.escape(message)}"):
            actors.join(ctx, a, b, out, **arguments)


def test_a_suffix_that_does_not_tell_columns_apart_is_named() -> None:
    left, right = pl.DataFrame({"k": [1], "v": [2]}), pl.DataFrame({"k": [1], "v": [3]})

    async def job(ctx: Context) -> None:
        a, b, out = (ctx.create_channel() for _ in range(3))
        await Network(ctx, [
            actors.from_polars(ctx, a, left), actors.from_polars(ctx, b, right),
            actors.join(ctx, a, b, out, on="k", suffix=""), actors.collect(ctx, out),
        ]).run_async()  # fmt: skip

    with pytest.raises(SchemaError, match=r"both sides have the columns \['v'\], and the suffix ''"):
        ranks.run(ranks.size(1), job)


def test_network_statistics_list_each_collectives_bytes_per_peer() -> None:
    df = pl.DataFrame({"k": range(400), "v": range(400)})

    async def job(ctx: Context) -> tuple[NetworkStatistics, Any]:
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
