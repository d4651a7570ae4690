"""A Context's memory budget: held chunks spilled largest and coldest first, reservations that
wait or fail clearly, and its figures per actor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from budgets import asking_for
from waiting import until

import actors
from channels import Channel
from streamnet import (
    ActorMemory,
    Context,
    MemoryBudget,
    MemoryLimitError,
    Message,
    Network,
    SpillDirectory,
    TableChunk,
    define_actor,
    parse_memory_limit,
)
from streamnet.memory._budget import machine_memory

pytestmark = pytest.mark.timeout(60)


def _chunk(rows: int) -> TableChunk:
    return TableChunk.from_polars(pl.DataFrame({"x": range(rows)}, schema={"x": pl.Int64}))


@pytest.fixture
def ctx() -> Iterator[Context]:
    with Context(memory_limit=asking_for(10_000), num_threads=2) as context:
        yield context


# ------------------------------------------------------------------ the argument
@pytest.mark.parametrize(
    ("value", "nbytes"),
    [
        (None, None),
        (1, 1),
        (4096, 4096),
        ("2GiB", 2 * 2**30),
        ("500MB", 500 * 10**6),
        ("1.5 gb", 1_500_000_000),
        ("64 KiB", 65_536),
        ("123", 123),
    ],
)
def test_a_limit_is_bytes_or_a_size_with_its_unit(value: object, nbytes: int | None) -> None:
    assert parse_memory_limit(value) == nbytes


def test_a_float_is_a_fraction_of_the_machine_s_memory() -> None:
    assert parse_memory_limit(0.5) == machine_memory() // 2
    assert parse_memory_limit(1.0) == machine_memory()


@pytest.mark.parametrize("value", [0, -5, 0.0, 1.5, "2 parsecs", "GiB", "", True, [1], "0B"])
def test_a_bad_limit_is_refused_naming_it(value: object) -> None:
    with pytest.raises(ValueError, match=r"^Context: `memory_limit`: .*") as info:
        Context(memory_limit=value)  # type: ignore[arg-type]
    assert repr(value) in str(info.value) or str(value) in str(info.value)


# ------------------------------------------------------------------ held chunks
async def test_held_chunks_count_until_removed_and_without_limit_nothing_spills() -> None:
    with Context() as ctx:
        holder = ctx.memory.holder("state", actor="a")
        chunks = [_chunk(1000) for _ in range(3)]
        for chunk in chunks:
            await holder.add(chunk)
        assert holder.resident == ctx.memory.in_use == 3 * chunks[0].nbytes
        assert not any(c.is_spilled for c in chunks)
        holder.remove(chunks[0])
        holder.remove(chunks[0])  # twice: ignored
        assert holder.resident == 2 * chunks[0].nbytes
        stats = ctx.memory.statistics()
        assert stats.limit is None
        assert stats.peak == 3 * chunks[0].nbytes
        assert stats.actors["a"].held_peak == 3 * chunks[0].nbytes


async def test_beyond_the_limit_the_largest_and_coldest_chunks_of_any_holder_spill(
    ctx: Context,
) -> None:
    mine, theirs = ctx.memory.holder("mine", actor="m"), ctx.memory.holder("theirs", actor="t")
    big = _chunk(600)  # 4800 bytes
    await theirs.add(big)
    small = _chunk(100)  # 800 bytes, newer
    await mine.add(small)
    assert ctx.memory.in_use == big.nbytes + small.nbytes
    fresh = _chunk(600)
    await mine.add(fresh)  # 10400 > 10000: one chunk must go, the big cold one of the other
    assert big.is_spilled and not small.is_spilled and not fresh.is_spilled
    assert ctx.memory.in_use == small.nbytes + fresh.nbytes <= ctx.memory.limit  # type: ignore[operator]
    stats = ctx.memory.statistics()
    assert stats.spilled == big.nbytes
    assert stats.actors["t"].spilled == big.nbytes and stats.actors["m"].spilled == 0
    assert theirs.spilled == big.nbytes
    # a spilled chunk comes back whole once its holder takes it back
    theirs.remove(big)
    assert big.make_available().to_polars()["x"].to_list() == list(range(600))


async def test_a_touched_chunk_is_spilled_after_an_untouched_one_of_its_size(ctx: Context) -> None:
    holder = ctx.memory.holder("state", actor="a")
    first, second = _chunk(500), _chunk(500)
    await holder.add(first)
    await holder.add(second)
    holder.touch(first)  # now the second is the colder
    await holder.add(_chunk(300))
    assert second.is_spilled and not first.is_spilled


async def test_an_operator_s_own_bound_spills_only_its_chunks() -> None:
    with Context() as ctx:  # no limit: only the holder's own bound
        mine, theirs = ctx.memory.holder("mine"), ctx.memory.holder("theirs")
        other = _chunk(1000)
        await theirs.add(other)
        held = [_chunk(100 * (i + 1)) for i in range(4)]
        for chunk in held:
            await mine.add(chunk)
        await mine.spill_down_to(held[0].nbytes + held[1].nbytes)
        assert [c.is_spilled for c in held] == [False, False, True, True]
        assert not other.is_spilled
        assert mine.resident == held[0].nbytes + held[1].nbytes


async def test_clearing_a_holder_forgets_only_its_chunks(ctx: Context) -> None:
    mine, theirs = ctx.memory.holder("mine", actor="m"), ctx.memory.holder("theirs", actor="t")
    kept = _chunk(100)
    await theirs.add(kept)
    await mine.add(_chunk(600))
    await mine.add(_chunk(600))  # over the limit: one of them spilled
    mine.clear()
    assert mine.resident == 0
    assert ctx.memory.in_use == theirs.resident == kept.nbytes
    await mine.add(_chunk(600))  # counted afresh, and nothing of the old ones is spilled again
    assert ctx.memory.in_use == kept.nbytes + 4800


async def test_chunks_of_a_holder_that_spills_last_go_after_all_others(ctx: Context) -> None:
    """Chunks read ahead (about to be sent) are spilled only once nothing else is left."""
    ahead = ctx.memory.holder("read ahead", actor="scan", spill_last=True)
    state = ctx.memory.holder("state", actor="sort")
    big, small = _chunk(500), _chunk(200)  # 4000 and 1600 bytes: the larger one spills last
    await ahead.add(big)
    await state.add(small)
    async with await ctx.memory.reserve(5000):
        assert small.is_spilled and not big.is_spilled
    async with await ctx.memory.reserve(9000):  # nothing else left: then it goes too
        assert big.is_spilled


# ------------------------------------------------------------------ reservations
async def test_a_reservation_that_fits_is_granted_and_given_back(ctx: Context) -> None:
    async with await ctx.memory.reserve(4000, what="a build") as reservation:
        assert ctx.memory.in_use == 4000
        reservation.resize(6000)
        assert ctx.memory.available() == 4000
    assert ctx.memory.in_use == 0
    assert ctx.memory.statistics().peak == 6000


async def test_a_reservation_spills_held_chunks_to_fit(ctx: Context) -> None:
    holder = ctx.memory.holder("state", actor="a")
    chunk = _chunk(1000)  # 8000 bytes
    await holder.add(chunk)
    reservation = await ctx.memory.reserve(5000)
    assert chunk.is_spilled
    assert ctx.memory.in_use == 5000
    reservation.release()
    reservation.release()  # idempotent
    assert ctx.memory.in_use == 0


async def test_a_reservation_also_spills_what_was_held_while_it_spilled(tmp_path: Path) -> None:
    """Another task holds a chunk while the reservation's spill runs in a thread: the
    reservation spills that one too, rather than fail as if nothing could be spilled."""
    first, late = _chunk(500), _chunk(500)  # 4000 bytes each
    added: list[TableChunk] = []

    async def to_thread(fn: Callable[..., Any], *args: Any) -> Any:
        result = fn(*args)
        if not added:  # the other task's chunk arrives during the first spill
            added.append(late)
            await holder.add(late)
        return result

    budget = MemoryBudget(10_000, SpillDirectory(tmp_path), to_thread)
    holder = budget.holder("state", actor="a")
    await holder.add(first)
    async with await budget.reserve(8000, what="a sort run"):
        assert first.is_spilled and late.is_spilled
        assert budget.in_use == 8000


async def test_a_reservation_larger_than_the_budget_fails_naming_the_sizes(ctx: Context) -> None:
    with pytest.raises(MemoryLimitError, match=r"a sort run needs 19\.5 KiB, more than the whole"):
        await ctx.memory.reserve(20_000, what="a sort run")


async def test_a_reservation_waits_for_another_actor_s_to_end_then_goes_on(
    ctx: Context,
) -> None:
    granted: list[str] = []
    held = asyncio.Event()

    @define_actor
    async def first(ctx: Context) -> None:
        reservation = await ctx.memory.reserve(8000, what="a build")
        held.set()
        # until the other is waiting for memory
        await until(lambda: ctx.memory.statistics().actors.get("second#0", ActorMemory()).waits)
        granted.append("first releases")
        reservation.release()

    @define_actor
    async def second(ctx: Context) -> None:
        await held.wait()
        async with await ctx.memory.reserve(5000, what="a run"):
            granted.append("second granted")
            assert ctx.memory.in_use == 5000

    async with asyncio.timeout(30):
        await Network(ctx, [first(ctx), second(ctx)]).run_async()
    assert granted == ["first releases", "second granted"]
    assert ctx.memory.statistics().actors["second#0"].waits == 1


async def test_a_reservation_that_only_its_own_actor_could_make_room_for_fails_at_once(
    ctx: Context,
) -> None:
    held = await ctx.memory.reserve(9000)  # this caller's own: waiting for it would never end
    with pytest.raises(
        MemoryLimitError,
        match=r"^outside any actor: working memory needs 4\.9 KiB but only 1000 B of the memory budget",
    ):
        async with asyncio.timeout(10):
            await ctx.memory.reserve(5000)
    held.release()


async def test_a_reservation_waits_for_another_task_of_its_own_actor(ctx: Context) -> None:
    """Two tasks of one actor (the two sides of a join): the second waits for the first's
    reservation to end, where it would wait forever for one of its own task."""
    order: list[str] = []
    held = asyncio.Event()

    async def first() -> None:
        reservation = await ctx.memory.reserve(8000, what="one side")
        held.set()
        await until(lambda: ctx.memory.statistics().actors[""].waits == 1)
        order.append("first releases")
        reservation.release()

    async def second() -> None:
        await held.wait()
        async with await ctx.memory.reserve(5000, what="the other side"):
            order.append("second granted")

    async with asyncio.timeout(30):
        await asyncio.gather(first(), second())
    assert order == ["first releases", "second granted"]


async def test_try_reserve_grants_what_fits_now_and_never_spills(ctx: Context) -> None:
    holder = ctx.memory.holder("state", actor="a")
    chunk = _chunk(500)  # 4000 bytes
    await holder.add(chunk)
    assert ctx.memory.try_reserve(7000) is None  # would need a spill: refused
    assert not chunk.is_spilled and ctx.memory.in_use == 4000
    granted = ctx.memory.try_reserve(6000, what="reading ahead")
    assert granted is not None and ctx.memory.in_use == 10_000
    granted.release()
    assert ctx.memory.in_use == 4000


async def test_a_reservation_for_data_in_hand_is_granted_over_the_limit_rather_than_failing(
    ctx: Context,
) -> None:
    """Only running the kernel frees its input: at most the whole limit is reserved, and
    when nothing can free memory it goes on over the limit instead of raising."""
    held = await ctx.memory.reserve(6000)  # the caller's own, which cannot end meanwhile
    async with asyncio.timeout(10):
        async with await ctx.memory.reserve(50_000, what="a cut", in_hand=True) as cut:
            assert cut.nbytes == 10_000  # the whole limit, at most
            assert ctx.memory.in_use == 16_000
    held.release()
    assert ctx.memory.statistics().peak == 16_000
    with pytest.raises(MemoryLimitError):  # without `in_hand`, the same fails clearly
        await ctx.memory.reserve(50_000, what="a cut")


async def test_a_negative_reservation_is_refused(ctx: Context) -> None:
    with pytest.raises(ValueError, match="`nbytes` must be an int >= 0, got -1"):
        await ctx.memory.reserve(-1)


# ------------------------------------------------------------------ what users see
async def test_statistics_and_the_timeline_show_each_actor_s_memory() -> None:
    n = 4_000
    df = pl.DataFrame({"k": range(n), "v": range(n)})
    with Context(memory_limit=asking_for(48 * 1024), trace=True) as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        out = actors.collect(ctx, b, into="polars")
        network = Network(ctx, [
            actors.from_polars(ctx, a, df, chunk_rows=250),
            actors.groupby_agg(ctx, a, b, "k", {"v": ["sum"]}),
            out,
        ])  # fmt: skip
        async with asyncio.timeout(60):
            await network.run_async()
        assert out.result().height == n
        stats = network.statistics()
        group = stats.actor("groupby_agg#0")
        assert group.spilled_bytes > 0 and group.held_peak_bytes > 0
        assert group.reserved_peak_bytes > 0  # finishing reserved its working memory
        assert stats.actor("from_polars#0").spilled_bytes == 0
        assert "MB spilled" in str(stats).splitlines()[0]
        assert {"held_peak_bytes", "spilled_bytes"} <= set(stats.to_polars().columns)
        timeline = network.timeline()
        mine = [s for s in timeline.memory if s.actor == "groupby_agg#0"]
        assert mine and max(s.spilled for s in mine) == group.spilled_bytes
        assert all(s.time >= 0 for s in mine)
        counters = [e for e in timeline.to_chrome_trace()["traceEvents"] if e["ph"] == "C"]
        assert {e["name"] for e in counters} == {"memory groupby_agg#0"}


def test_without_a_budget_or_a_spill_the_table_keeps_its_columns() -> None:
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        network = Network(ctx, [actors.from_polars(ctx, a, pl.DataFrame({"x": [1, 1, 2]})),
                                actors.groupby_agg(ctx, a, b, "x", {"x": ["count"]}),
                                actors.collect(ctx, b)])  # fmt: skip
        network.run()
        stats = network.statistics()
        assert stats.actor("groupby_agg#0").held_peak_bytes > 0  # counted all the same
        assert "MB held" not in str(stats)


async def test_a_wait_for_memory_is_a_span_of_its_own_and_not_busy_time() -> None:
    held = asyncio.Event()

    @define_actor
    async def first(ctx: Context) -> None:
        reservation = await ctx.memory.reserve(8000)
        held.set()
        await until(lambda: ctx.memory.statistics().actors.get("second#0", ActorMemory()).waits)
        reservation.release()

    @define_actor
    async def second(ctx: Context) -> None:
        await held.wait()
        async with await ctx.memory.reserve(5000):
            pass

    with Context(memory_limit=asking_for(10_000), trace=True) as ctx:
        network = Network(ctx, [first(ctx), second(ctx)])
        async with asyncio.timeout(30):
            await network.run_async()
        stats = network.statistics().actor("second#0")
        assert stats.memory_waits == 1 and stats.blocked_memory_seconds > 0
        kinds = {s.kind for s in network.timeline().spans if s.actor == "second#0"}
        assert "blocked on memory" in kinds


async def test_messages_waiting_in_channels_count_against_the_budget() -> None:
    with Context(memory_limit=asking_for(100_000)) as ctx:
        ch = ctx.create_channel(capacity=4)
        chunk = _chunk(1000)
        await ch.send(ctx, Message(0, chunk))
        assert ctx.memory.in_use == ctx.memory.statistics().in_channels == chunk.nbytes
        assert ctx.memory.available() == 100_000 - chunk.nbytes
        await ch.recv(ctx)
        assert ctx.memory.in_use == 0
        await ch.send(ctx, Message(1, chunk))
        await ch.shutdown(ctx)  # what a channel drops leaves the budget
        assert ctx.memory.in_use == 0
        plain: Channel[TableChunk] = Channel(capacity=4)  # not made with the Context
        await plain.send(ctx, Message(0, chunk))
        ctx.activity.track([plain, plain])  # a network runs it: counted, with what it holds, once
        assert ctx.memory.statistics().in_channels == chunk.nbytes
        await plain.recv(ctx)
        assert ctx.memory.in_use == 0


def test_a_context_leaves_a_headroom_of_its_limit_to_what_no_budget_sees(tmp_path: Path) -> None:
    """Operators hold and reserve ``memory_limit`` less `HEADROOM`: the interpreter, the
    libraries and the allocators take the rest, and the process stays near the limit."""
    from streamnet.memory._budget import HEADROOM, MemoryBudget

    with Context(memory_limit=100_000) as ctx:
        assert (ctx.memory.memory_limit, ctx.memory.limit) == (
            100_000,
            int(100_000 * (1 - HEADROOM)),
        )
        assert ctx.memory.share(0.5) == int(100_000 * (1 - HEADROOM)) // 2
    with Context() as ctx:
        assert (ctx.memory.memory_limit, ctx.memory.limit) == (None, None)

    async def to_thread(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    with pytest.raises(ValueError, match=r"`headroom` must be in \[0, 1\), got 1"):
        MemoryBudget(100, SpillDirectory(tmp_path), to_thread, headroom=1)
