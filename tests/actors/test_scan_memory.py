"""read_parquet under a memory budget: each scan task reserved before it decodes, a row group
larger than its share read in parts of rows, reading ahead only what fits; Polars' rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import actors
from actors._parquet import READ_AHEAD_SHARE, SCAN_SHARE, _ScanMemory
from streamnet import Context, Network, ScanTask

pytestmark = pytest.mark.timeout(120)

KiB = 2**10


def _frame(rows: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "k": rng.integers(0, rows // 3 + 1, rows),
            "a": rng.random(rows),
            "s": [None if i % 13 == 0 else f"s{i % 101}" for i in range(rows)],
        }
    )


def _scan(path: Path, limit: int | None, **options: object) -> tuple[pl.DataFrame, Network, Context]:
    ctx = Context(memory_limit=limit)
    ch = ctx.create_channel()
    scan = actors.read_parquet(ctx, ch, path, **options)  # type: ignore[arg-type]
    sink = actors.collect(ctx, ch, into="polars")
    net = Network(ctx, [scan, sink])
    net.run()
    return sink.result(), net, ctx


def test_a_row_group_larger_than_its_share_is_read_in_parts_of_rows(tmp_path: Path) -> None:
    df = _frame(30_000)
    path = tmp_path / "one.parquet"
    df.write_parquet(path, row_group_size=30_000)  # one row group of about 1 MiB decoded
    limit = 1024 * KiB
    got, net, ctx = _scan(path, limit)
    assert_frame_equal(got, df)  # every row once, in order
    (scan,) = [node for node in net.actors if node.name.startswith("read_parquet")]
    report = scan.result()
    assert (report.row_groups_read, report.rows_read) == (1, 30_000)
    stats = net.statistics().actor(scan.name)
    assert stats.messages_out > 4  # parts of the row group, each fitting the scan's share
    scanned = ctx.memory.statistics().actors[scan.name]
    assert 0 < scanned.reserved_peak <= limit  # reserved before decoding
    assert ctx.memory.in_use == 0


def test_without_a_budget_a_row_group_is_read_whole(tmp_path: Path) -> None:
    df = _frame(30_000)
    path = tmp_path / "one.parquet"
    df.write_parquet(path, row_group_size=30_000)
    got, net, ctx = _scan(path, None)
    assert_frame_equal(got, df)
    (scan,) = [node for node in net.actors if node.name.startswith("read_parquet")]
    assert net.statistics().actor(scan.name).messages_out == 1
    assert ctx.memory.statistics().actors.get(scan.name) is None or (
        ctx.memory.statistics().actors[scan.name].reserved_peak == 0
    )


def test_parts_of_row_groups_keep_filters_and_fused_steps_equal_to_polars(tmp_path: Path) -> None:
    df = _frame(20_000, seed=3)
    path = tmp_path / "groups.parquet"
    df.write_parquet(path, row_group_size=7_000)
    ctx = Context(memory_limit=512 * KiB)
    a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    sink = actors.collect(ctx, c, into="polars")
    Network(
        ctx,
        [
            actors.read_parquet(ctx, a, path, filters=pl.col("a") > 0.25),
            actors.with_columns(ctx, a, b, (pl.col("k") * 2).alias("k2")),
            actors.filter(ctx, b, c, pl.col("s").is_not_null()),
            sink,
        ],
    ).run()
    want = df.filter(pl.col("a") > 0.25).with_columns((pl.col("k") * 2).alias("k2"))
    assert_frame_equal(sink.result(), want.filter(pl.col("s").is_not_null()))


def test_a_group_by_fused_into_a_scan_in_parts_equals_polars(tmp_path: Path) -> None:
    df = _frame(40_000, seed=5)
    path = tmp_path / "agg.parquet"
    df.write_parquet(path, row_group_size=20_000)
    ctx = Context(memory_limit=768 * KiB)
    a, b = ctx.create_channel(), ctx.create_channel()
    sink = actors.collect(ctx, b, into="polars")
    Network(
        ctx,
        [
            actors.read_parquet(ctx, a, path),
            actors.groupby_agg(ctx, a, b, "k", [("a", "sum"), ("*", "len")]),
            sink,
        ],
    ).run()
    want = df.group_by("k").agg(pl.col("a").sum().alias("a_sum"), pl.len())
    assert_frame_equal(sink.result(), want, check_row_order=False)


async def test_a_scan_reads_ahead_only_within_its_share_and_what_is_free() -> None:
    limit = 64 * KiB
    with Context(memory_limit=limit) as ctx:
        reads = _ScanMemory(ctx, "scan")
        # tasks whose reservation is about a tenth of the budget each
        task = ScanTask(Path("x.parquet"), (0,), 0, 100, nbytes=0, decoded=5 * KiB)
        first = await reads.reserve(task, ahead=False)
        assert first is not None
        ahead = []
        while (more := await reads.reserve(task, ahead=True)) is not None:
            ahead.append(more)
        total = first.nbytes + sum(r.nbytes for r in ahead)
        # read ahead while the tasks in flight fit the share, though the budget has room
        assert ahead and total <= limit * READ_AHEAD_SHARE < total + first.nbytes
        assert (ctx.memory.available() or 0) > first.nbytes
        for reservation in [first, *ahead]:
            reads.read(reservation)
        assert ctx.memory.in_use == 0


def test_tasks_are_sized_to_the_scan_share(tmp_path: Path) -> None:
    with Context(memory_limit=1024 * KiB) as ctx:
        reads = _ScanMemory(ctx, "scan")
        big = ScanTask(tmp_path / "x.parquet", (0,), 0, 10_000, nbytes=20 * KiB, decoded=800 * KiB)
        parts = reads.sized([big])
        assert sum(p.rows for p in parts) == 10_000 and len(parts) > 1
        share = ctx.memory.share(SCAN_SHARE)
        assert share is not None
        for part in parts:
            assert part.nbytes + ctx.backend.working_memory("scan", part.decoded) <= share
