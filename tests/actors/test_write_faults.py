"""Fault injection: a failed or interrupted write leaves nothing that looks like a result.

Each write path (a single file, one file per chunk, one file per rank) fails at
the start, in the middle and at the end of its stream, by a failing upstream
actor and by a failing disk; the original error is raised, and the folder
holding the target is exactly as it was (an existing target included).
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bounded import run_ranks_within

import actors
import actors._commit
from streamnet import Context, Message, Network, TableChunk, current_actor, define_actor

CHUNKS = 4
ROWS = 5


class InjectedFault(RuntimeError):
    """The failure a test injects."""


@dataclass(frozen=True)
class WritePath:
    name: str
    nranks: int
    partitioned: bool


WRITE_PATHS = [
    WritePath("single file", 1, False),
    WritePath("one file per chunk", 1, True),
    WritePath("one file per rank", 2, False),
    WritePath("one file per chunk per rank", 2, True),
]
WHERE = {"start": 0, "middle": CHUNKS // 2, "end": CHUNKS}


def chunk(rank: int, seq: int) -> TableChunk:
    start = rank * 1000 + seq * ROWS
    return TableChunk.from_arrow(pa.table({"x": range(start, start + ROWS)}))


@define_actor
async def source(ctx: Context, ch_out: Any, *, fail_at: int | None, failing_rank: int) -> None:
    """``CHUNKS`` chunks; on ``failing_rank``, raise before chunk ``fail_at`` (at
    ``CHUNKS``: after sending them all, before the end of the stream)."""
    for seq in range(CHUNKS + 1):
        if seq == fail_at and ctx.rank == failing_rank:
            raise InjectedFault(f"injected before chunk {seq} on rank {ctx.rank}")
        if seq < CHUNKS:
            await ch_out.send(ctx, Message(seq, chunk(ctx.rank, seq)))
    await ch_out.drain(ctx)


def write(path: WritePath, target: Path, *, fail_at: int | None = None, **options: Any) -> None:
    """Run the write on ``path.nranks`` ranks; rank ``nranks - 1`` fails at ``fail_at``."""

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        src = source(ctx, ch, fail_at=fail_at, failing_rank=path.nranks - 1)
        writer = actors.write_parquet(ctx, ch, target, partitioned=path.partitioned, **options)
        await Network(ctx, [src, writer]).run_async()

    run_ranks_within(60, path.nranks, job)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones too) with its bytes (None for a folder)."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def existing_target(target: Path, partitioned: bool, nranks: int) -> None:
    """An earlier successful output at ``target``."""
    ch_rows = pa.table({"x": [-1, -2]})

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        writer = actors.write_parquet(ctx, ch, target, partitioned=partitioned)
        await Network(ctx, [actors.from_arrow(ctx, ch, ch_rows), writer]).run_async()

    run_ranks_within(60, nranks, job)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", list(WHERE))
@pytest.mark.parametrize("path", WRITE_PATHS, ids=lambda p: p.name)
@pytest.mark.parametrize("mode", ["error", "overwrite"])
def test_failing_upstream_leaves_nothing(
    tmp_path: Path, path: WritePath, where: str, mode: str
) -> None:
    target = tmp_path / "out.parquet"
    if mode == "overwrite":
        existing_target(target, path.partitioned, path.nranks)
    before = snapshot(tmp_path)
    with pytest.raises(InjectedFault, match=f"injected before chunk {WHERE[where]}"):
        write(path, target, fail_at=WHERE[where], mode=mode)
    assert snapshot(tmp_path) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", list(WHERE))
@pytest.mark.parametrize("path", WRITE_PATHS, ids=lambda p: p.name)
def test_failing_disk_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: WritePath, where: str
) -> None:
    """The disk fails on the first write, a middle one, or when the output is moved into place."""
    failing_rank = path.nranks - 1
    calls = {"writes": 0}

    def disk_full(*_: Any, **__: Any) -> None:
        raise OSError(errno.ENOSPC, "injected: no space left on device")

    def flaky(real: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            node = current_actor()
            if node is not None and node.ctx.rank == failing_rank:
                calls["writes"] += 1
                if calls["writes"] - 1 == WHERE[where]:
                    disk_full()
            return real(*args, **kwargs)

        return write

    if where == "end":  # every file written; moving the output into place fails
        monkeypatch.setattr(actors._commit.os, "rename", disk_full)
        monkeypatch.setattr(actors._commit.os, "replace", disk_full)
    elif path.partitioned:
        monkeypatch.setattr(pq, "write_table", flaky(pq.write_table))
    else:
        monkeypatch.setattr(pq.ParquetWriter, "write_table", flaky(pq.ParquetWriter.write_table))
    before = snapshot(tmp_path)
    with pytest.raises(OSError, match="injected: no space left on device"):
        write(path, tmp_path / "out.parquet")
    assert snapshot(tmp_path) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", WRITE_PATHS[:2], ids=lambda p: p.name)
async def test_cancelled_run_leaves_nothing(tmp_path: Path, path: WritePath) -> None:
    """An interrupted job (Ctrl-C, a cancelled notebook cell) is a failed one."""
    sent = asyncio.Event()

    @define_actor
    async def stalls(ctx: Context, ch_out: Any) -> None:
        for seq in range(2):
            await ch_out.send(ctx, Message(seq, chunk(0, seq)))
        sent.set()
        await asyncio.Event().wait()  # never ends its stream

    before = snapshot(tmp_path)
    ctx = Context(channel_capacity=1)
    ch = ctx.create_channel()
    writer = actors.write_parquet(ctx, ch, tmp_path / "out.parquet", partitioned=path.partitioned)
    run = asyncio.ensure_future(Network(ctx, [stalls(ctx, ch), writer]).run_async())
    await sent.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    ctx.close()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("path", WRITE_PATHS, ids=lambda p: p.name)
def test_success_puts_the_output_in_place_with_a_marker(tmp_path: Path, path: WritePath) -> None:
    target = tmp_path / "out.parquet"
    write(path, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]  # nothing staged left
    expected = [x for rank in range(path.nranks) for s in range(CHUNKS) for x in chunk(rank, s)
                .to_arrow()["x"].to_pylist()]  # fmt: skip
    assert pl.read_parquet(target)["x"].to_list() == expected
    if path.nranks > 1 or path.partitioned:
        assert (target / "_SUCCESS").is_file()
        out, _ = _scan(target)
        assert out["x"].to_list() == expected


def _scan(path: Path) -> tuple[pl.DataFrame, Any]:
    ctx = Context()
    ch = ctx.create_channel()
    scan = actors.read_parquet(ctx, ch, path)
    sink = actors.collect(ctx, ch, into="polars")
    Network(ctx, [scan, sink]).run()
    return sink.result(), scan.result()


# -- write modes -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WRITE_PATHS, ids=lambda p: p.name)
def test_mode_error_refuses_an_existing_target_before_anything_runs(
    tmp_path: Path, path: WritePath
) -> None:
    target = tmp_path / "out.parquet"
    existing_target(target, path.partitioned, path.nranks)
    before = snapshot(tmp_path)
    ran = []

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()

        @define_actor
        async def noted(ctx: Context, ch_out: Any) -> None:
            ran.append(ctx.rank)
            await ch_out.drain(ctx)

        writer = actors.write_parquet(ctx, ch, target, partitioned=path.partitioned)
        await Network(ctx, [noted(ctx, ch), writer]).run_async()

    with pytest.raises(
        FileExistsError,
        match=r"actor `write_parquet#0`: `.*out.parquet` already exists; pass mode='overwrite'",
    ):
        run_ranks_within(60, path.nranks, job)
    assert ran == []
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("path", WRITE_PATHS, ids=lambda p: p.name)
def test_mode_overwrite_replaces_the_old_output(tmp_path: Path, path: WritePath) -> None:
    target = tmp_path / "out.parquet"
    existing_target(target, path.partitioned, path.nranks)
    (tmp_path / "neighbour.txt").write_text("untouched")
    write(path, target, mode="overwrite")
    out = pl.read_parquet(target)["x"].to_list()
    assert -1 not in out and len(out) == path.nranks * CHUNKS * ROWS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neighbour.txt", "out.parquet"]


def test_mode_overwrite_replaces_a_directory_with_a_file_and_back(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    write(WRITE_PATHS[1], target)
    write(WRITE_PATHS[0], target, mode="overwrite")
    assert target.is_file()
    write(WRITE_PATHS[1], target, mode="overwrite")
    assert target.is_dir() and (target / "_SUCCESS").is_file()
    assert pl.read_parquet(target).height == CHUNKS * ROWS


@pytest.mark.parametrize("path", WRITE_PATHS[1:], ids=lambda p: p.name)
def test_mode_append_adds_files_beside_the_old_ones(tmp_path: Path, path: WritePath) -> None:
    target = tmp_path / "out"
    existing_target(target, path.partitioned, path.nranks)
    old = sorted(p.name for p in target.iterdir())
    write(path, target, mode="append")
    write(path, target, mode="append")
    names = sorted(p.name for p in target.iterdir())
    assert set(old) <= set(names) and "_SUCCESS" in names
    added = [n for n in names if n not in old]
    files_per_write = path.nranks * (CHUNKS if path.partitioned else 1)
    assert len(added) == 2 * files_per_write
    assert all(n.startswith("part-w") for n in added)
    out = pl.read_parquet(target)["x"].to_list()
    assert out.count(-1) == path.nranks
    assert len(out) == 2 * path.nranks + 2 * path.nranks * CHUNKS * ROWS
    assert len({n.split("-")[1] for n in added}) == 2  # each write's files carry its own tag


def test_mode_append_to_a_single_file_is_refused(tmp_path: Path) -> None:
    ctx = Context()
    with pytest.raises(ValueError, match=r"mode='append' adds files to a directory.*partitioned"):
        actors.write_parquet(ctx, ctx.create_channel(), tmp_path / "x.parquet", mode="append")
    with pytest.raises(ValueError, match=r"`mode` must be one of \['error', 'overwrite', 'appe"):
        actors.write_parquet(ctx, ctx.create_channel(), tmp_path / "x.parquet", mode="replace")


def test_failed_append_leaves_the_old_dataset_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "out"
    existing_target(target, True, 2)
    before = snapshot(tmp_path)
    with pytest.raises(InjectedFault):
        write(WRITE_PATHS[3], target, fail_at=2, mode="append")
    assert snapshot(tmp_path) == before


# -- a writer cancelled while its kernel writes ------------------------------------------------

CRASH_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import numpy as np, pyarrow as pa, pyarrow.parquet as pq
    import actors
    from streamnet import Context, Message, Network, TableChunk, define_actor

    writing = threading.Event()
    real = pq.ParquetWriter.write_table

    def write_table(self, *args, **kwargs):
        writing.set()
        return real(self, *args, **kwargs)

    pq.ParquetWriter.write_table = write_table
    big = pa.table({"x": np.arange(3_000_000), "y": np.ones(3_000_000)})

    @define_actor
    async def feed(ctx, ch_out):
        for seq in range(20):
            await ch_out.send(ctx, Message(seq, TableChunk.from_arrow(big)))
        await ch_out.drain(ctx)

    @define_actor
    async def fails_while_writing(ctx):
        await ctx.to_thread(writing.wait, 30)
        raise RuntimeError("injected while the writer writes")

    ctx = Context()
    ch = ctx.create_channel()
    try:
        Network(
            ctx, [feed(ctx, ch), actors.write_parquet(ctx, ch, sys.argv[1]), fails_while_writing(ctx)]
        ).run()
    except RuntimeError as exc:
        print("raised:", exc)
    """
)


@pytest.mark.timeout(120)
def test_actor_failing_while_the_writer_writes_does_not_crash_the_process(tmp_path: Path) -> None:
    """It used to kill the process (SIGSEGV): the writer closed while write_table still ran."""
    target = tmp_path / "out.parquet"
    done = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(target)],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "raised: injected while the writer writes" in done.stdout
    assert list(tmp_path.iterdir()) == []


SLOW_DISK_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    import numpy as np, pyarrow as pa, pyarrow.parquet as pq
    import actors
    from streamnet import Context, Message, Network, TableChunk, define_actor

    release = threading.Event()
    real = pq.ParquetWriter.write_table

    def write_table(self, *args, **kwargs):  # a slow disk
        print("writing", flush=True)
        release.wait(60)
        real(self, *args, **kwargs)
        print("written", flush=True)

    pq.ParquetWriter.write_table = write_table
    table = pa.table({"x": np.arange(100_000)})

    @define_actor
    async def feed(ctx, ch_out):
        for seq in range(3):
            await ch_out.send(ctx, Message(seq, TableChunk.from_arrow(table)))
        await ch_out.drain(ctx)

    ctx = Context(cancel_grace=0.2)
    ch = ctx.create_channel()
    try:
        Network(ctx, [feed(ctx, ch), actors.write_parquet(ctx, ch, sys.argv[1])]).run()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    release.set()
    """
)


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
@pytest.mark.timeout(120)
def test_ctrl_c_while_the_writer_writes_ends_the_run_and_cleans_up_after_the_write(
    tmp_path: Path,
) -> None:
    """The run does not wait for a slow write; the writer is closed, and what it staged
    removed, only once the write ended (never under it: that crashed the process)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_DISK_SCRIPT, str(tmp_path / "out.parquet")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=100)
    assert proc.returncode == 0, err[-3000:]
    assert out.split() == ["interrupted", "written"]  # the run ended before the write
    assert "actor `write_parquet#0` was cancelled while its kernel" in err
    assert "Traceback" not in err, err[-3000:]
    assert list(tmp_path.iterdir()) == []
