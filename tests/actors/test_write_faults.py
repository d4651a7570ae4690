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
import socket
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bounded import run_ranks_within

import actors
from actors._commit import StagedOutput
from streamnet import (
    Context,
    Message,
    Network,
    RemoteRankError,
    SchemaError,
    TableChunk,
    current_actor,
    define_actor,
)

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
        monkeypatch.setattr("actors._commit.os.rename", disk_full)
        monkeypatch.setattr("actors._commit.os.replace", disk_full)
    else:  # every file is written through a ParquetWriter, one per chunk when partitioned
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


@pytest.mark.parametrize("path", WRITE_PATHS[:2], ids=lambda p: p.name)
def test_a_chunk_of_another_schema_fails_the_write_where_it_is_sent(
    tmp_path: Path, path: WritePath
) -> None:
    """The writer needs no schema check of its own: its input channel lets in one schema."""

    @define_actor
    async def mixed(ctx: Context, ch_out: Any) -> None:
        await ch_out.send(ctx, Message(0, TableChunk.from_arrow(pa.table({"x": [1, 2]}))))
        await ch_out.send(ctx, Message(1, TableChunk.from_arrow(pa.table({"x": [0.5]}))))
        await ch_out.drain(ctx)

    ctx = Context()
    ch = ctx.create_channel()
    writer = actors.write_parquet(ctx, ch, tmp_path / "out.parquet", partitioned=path.partitioned)
    with pytest.raises(
        SchemaError, match=r"^actor `mixed#0`, channel .*column `x` has type Float64"
    ):
        Network(ctx, [mixed(ctx, ch), writer]).run()
    assert list(tmp_path.iterdir()) == []


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


# -- the output appears only once the whole run succeeded -----------------------------------------


def writes_then_tells(returned: asyncio.Event) -> Any:
    """`write_parquet`'s own code as an actor that sets ``returned`` once that code returned."""

    @define_actor(collective=True)
    async def write_parquet(ctx: Context, /, ch_in: Any, path: Path, **options: Any) -> Any:
        report = await actors.write_parquet.fn(ctx, ch_in, path, **options)
        returned.set()
        return report

    return write_parquet


@define_actor
async def fails_after_the_writer(
    ctx: Context, ch_in: Any, returned: asyncio.Event, failing_rank: int
) -> None:
    """Reads its copy of the stream, waits until this rank's writer returned, then fails
    (on ``failing_rank``): a quality check, or a second sink still flushing."""
    async for _ in ch_in:
        pass
    await returned.wait()
    if ctx.rank == failing_rank:
        raise InjectedFault(f"check failed on rank {ctx.rank} after the writer returned")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("path", "mode"),
    [
        (path, mode)
        for path in WRITE_PATHS
        for mode in ["error", "overwrite", "append"]
        if mode != "append" or path.partitioned or path.nranks > 1  # a file takes no append
    ],
    ids=lambda p: p if isinstance(p, str) else p.name,
)
def test_a_run_failing_after_the_writer_returned_publishes_nothing(
    tmp_path: Path, path: WritePath, mode: str
) -> None:
    """The writer used to publish as soon as its own stream ended: `_SUCCESS` and every
    part file were in place although the run failed, and an overwrite had already
    destroyed the old output."""
    target = tmp_path / "out.parquet"
    if mode != "error":
        existing_target(target, path.partitioned, path.nranks)
    before = snapshot(tmp_path)

    async def job(ctx: Context) -> None:
        src, a, b = (ctx.create_channel() for _ in range(3))
        returned = asyncio.Event()
        writer = writes_then_tells(returned)(
            ctx, a, target, partitioned=path.partitioned, mode=mode
        )
        check = fails_after_the_writer(ctx, b, returned, path.nranks - 1)
        nodes = [source(ctx, src, fail_at=None, failing_rank=0), actors.fanout(ctx, src, [a, b])]
        await Network(ctx, [*nodes, writer, check]).run_async()

    with pytest.raises(InjectedFault, match="check failed on rank .* after the writer returned"):
        run_ranks_within(60, path.nranks, job)
    assert snapshot(tmp_path) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", [WRITE_PATHS[0], WRITE_PATHS[3]], ids=lambda p: p.name)
def test_an_output_that_cannot_be_published_fails_the_run_and_names_what_was(
    tmp_path: Path, path: WritePath
) -> None:
    """Two writers; once both returned, something else creates the second's target. The
    first output is published, the second is not (its staged files go), and every rank
    fails, the publishing rank with the error and a note saying which was published."""
    first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
    errors: dict[int, BaseException] = {}

    @define_actor
    async def takes_the_target(ctx: Context, returned: list[asyncio.Event]) -> None:
        for event in returned:
            await event.wait()
        if ctx.rank == 0:
            second.write_text("written by someone else meanwhile")

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(), ctx.create_channel()
        returned = [asyncio.Event(), asyncio.Event()]
        writers = [
            writes_then_tells(returned[0])(ctx, a, first, partitioned=path.partitioned),
            writes_then_tells(returned[1])(ctx, b, second, partitioned=path.partitioned),
        ]
        sources = [source(ctx, ch, fail_at=None, failing_rank=0) for ch in (a, b)]
        try:
            await Network(ctx, [*sources, *writers, takes_the_target(ctx, returned)]).run_async()
        except BaseException as exc:
            errors[ctx.rank] = exc
            raise

    with pytest.raises(
        FileExistsError, match="second.parquet` appeared while it was being written"
    ):
        run_ranks_within(60, path.nranks, job)
    assert "the steps committed before it stay committed (`write_parquet#0`)" in "\n".join(
        errors[0].__notes__
    )
    if path.nranks > 1:
        assert isinstance(errors[1], RemoteRankError) and errors[1].rank == 0
    assert len(pl.read_parquet(first)) == path.nranks * CHUNKS * ROWS
    assert second.read_text() == "written by someone else meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.parquet", "second.parquet"]


# -- one rank's cleanup never makes another fail -----------------------------------------------


def write_recording_errors(
    path: WritePath,
    target: Path,
    errors: dict[int, BaseException],
    *extra: Any,
    fail_at: int | None,
) -> None:
    """:func:`write` with the actors ``extra(ctx)`` beside it, noting each rank's error."""

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        src = source(ctx, ch, fail_at=fail_at, failing_rank=1)
        writer = actors.write_parquet(ctx, ch, target, partitioned=path.partitioned)
        try:
            await Network(ctx, [src, writer, *(make(ctx) for make in extra)]).run_async()
        except BaseException as exc:
            errors[ctx.rank] = exc
            raise

    run_ranks_within(60, path.nranks, job)


def on_rank(rank: int) -> bool:
    node = current_actor()
    return node is not None and node.ctx.rank == rank


@pytest.fixture
def cleaned(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once rank 1's writer removed what it staged after a failure."""
    done = threading.Event()
    real = StagedOutput.abandon

    def abandon(self: Any) -> None:
        real(self)
        if on_rank(1):
            done.set()

    monkeypatch.setattr(StagedOutput, "abandon", abandon)
    return done


def rank_1_fails_once(event: threading.Event, message: str) -> Any:
    """An actor that, on rank 1, raises ``InjectedFault(message)`` once ``event`` is set."""

    @define_actor
    async def fails(ctx: Context) -> None:
        if ctx.rank == 1:
            assert await ctx.to_thread(event.wait, 30)
            raise InjectedFault(message)

    return fails


class Rank0Pause:
    """Wraps functions so that the first call of any of them on rank 0 sets ``started``,
    then waits until rank 1 ``cleaned`` up; ``waited`` notes True for a wait that ended so."""

    def __init__(self, cleaned: threading.Event) -> None:
        self.cleaned = cleaned
        self.started = threading.Event()
        self.waited: list[bool] = []

    def wrap(self, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if on_rank(0) and not self.started.is_set():
                self.started.set()
                self.waited.append(self.cleaned.wait(30))
            return real(*args, **kwargs)

        return call


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", WRITE_PATHS[2:], ids=lambda p: p.name)
def test_a_rank_failing_while_a_peer_writes_does_not_make_the_peer_fail_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: WritePath, cleaned: threading.Event
) -> None:
    """Rank 1 fails and cleans up while rank 0 is about to write its first file; rank 0
    still writes it, then reports rank 1's failure. (The ranks shared one staging folder,
    which rank 1's cleanup removed from under rank 0: `FileNotFoundError`, now and then.)"""
    pause = Rank0Pause(cleaned)
    monkeypatch.setattr(pq, "write_table", pause.wrap(pq.write_table))
    monkeypatch.setattr(pq, "ParquetWriter", pause.wrap(pq.ParquetWriter))
    fails = rank_1_fails_once(pause.started, "injected while rank 0 writes")
    before = snapshot(tmp_path)
    errors: dict[int, BaseException] = {}
    with pytest.raises(InjectedFault, match="injected while rank 0 writes"):
        write_recording_errors(path, tmp_path / "out.parquet", errors, fails, fail_at=None)
    assert pause.waited == [True]
    assert isinstance(errors[0], RemoteRankError) and errors[0].rank == 1
    assert snapshot(tmp_path) == before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", WRITE_PATHS[2:], ids=lambda p: p.name)
def test_a_rank_failing_while_rank_0_moves_its_files_fails_the_write_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: WritePath, cleaned: threading.Event
) -> None:
    """Rank 1 staged everything, then fails (another of its actors) and cleans up while
    rank 0 moves the ranks' files into place: rank 0 raises `RemoteRankError`, and no
    output appears (it used to appear without rank 1's files, marked complete)."""
    pause = Rank0Pause(cleaned)
    monkeypatch.setattr("actors._commit.os.rename", pause.wrap(os.rename))
    monkeypatch.setattr("actors._commit.os.replace", pause.wrap(os.replace))
    fails = rank_1_fails_once(pause.started, "injected while rank 0 moves the files")
    before = snapshot(tmp_path)
    errors: dict[int, BaseException] = {}
    with pytest.raises(InjectedFault, match="injected while rank 0 moves the files"):
        write_recording_errors(path, tmp_path / "out.parquet", errors, fails, fail_at=None)
    assert pause.waited == [True]
    assert isinstance(errors[0], RemoteRankError) and errors[0].rank == 1
    assert snapshot(tmp_path) == before


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
        actors.write_parquet(ctx, ctx.create_channel(), tmp_path / "x.parquet", mode="replace")  # type: ignore[arg-type]


def test_a_target_that_is_no_path_is_refused_naming_the_writer() -> None:
    ctx = Context()
    for writer in (actors.write_parquet, actors.write_csv, actors.write_ndjson, actors.write_delta):
        with pytest.raises(TypeError, match=r"actor `write_\w+#0`: the target must be a path or a URI.*got 5"):
            writer(ctx, ctx.create_channel(), 5)  # type: ignore[arg-type]


def test_a_target_under_a_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    """Making the target's folder would fail with a bare FileExistsError at run time."""
    (tmp_path / "afile").write_text("x")
    ctx = Context()
    for writer in (actors.write_parquet, actors.write_csv, actors.write_ndjson, actors.write_delta):
        with pytest.raises(
            NotADirectoryError,
            match=rf"actor `write_\w+#0`: cannot write .*: `{tmp_path / 'afile'}` is a file, not a folder",
        ):
            writer(ctx, ctx.create_channel(), tmp_path / "afile" / "deeper" / "out")
    with pytest.raises(NotADirectoryError, match="is a file, but a Delta table is a folder"):
        actors.write_delta(ctx, ctx.create_channel(), tmp_path / "afile")


def test_partition_by_takes_one_column_name_as_polars_does(tmp_path: Path) -> None:
    frame = pl.DataFrame({"k": [1, 2, 1], "v": [1.0, 2.0, 3.0]})
    ctx = Context()
    ch = ctx.create_channel()
    Network(
        ctx, [actors.from_polars(ctx, ch, frame), actors.write_parquet(ctx, ch, tmp_path / "out", partition_by="k")]
    ).run(progress=False)
    back = pl.read_parquet(tmp_path / "out", hive_partitioning=True)
    assert sorted(back.rows()) == sorted(frame.select("v", "k").rows())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_SUCCESS", "k=1", "k=2"]
    with pytest.raises(TypeError, match=r"`partition_by` must be a column name or a list of one or more, got 5"):
        actors.write_parquet(ctx, ctx.create_channel(), tmp_path / "o2", partition_by=5)  # type: ignore[arg-type]


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


# -- a writer killed outright ------------------------------------------------------------------

KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import pyarrow as pa, pyarrow.parquet as pq
    import actors
    from streamnet import Context, Network

    target, mode, partitioned, when = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]

    def kill_after(real, when=lambda *args: True):
        def call(*args, **kwargs):
            result = real(*args, **kwargs)
            if when(*args):
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return call

    if when == "writing":  # after the first chunk of ten is written (a file per chunk or not)
        pq.ParquetWriter.write_table = kill_after(pq.ParquetWriter.write_table)
    else:  # the old output was moved aside, the new one is not in its place yet
        os.rename = kill_after(os.rename, lambda src, dst: str(dst).endswith(".old"))
    ctx = Context()
    ch = ctx.create_channel()
    source = actors.from_arrow(ctx, ch, pa.table({"x": range(100)}), chunk_rows=10)
    writer = actors.write_parquet(ctx, ch, target, partitioned=partitioned, mode=mode)
    Network(ctx, [source, writer]).run()
    """
)


def killed_writer(target: Path, mode: str, partitioned: bool, when: str) -> None:
    """Run a write in another process that kills itself (SIGKILL) ``when``."""
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(target), mode, str(int(partitioned)), when],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("mode", "partitioned"), [("error", False), ("overwrite", False), ("append", True)]
)
def test_the_next_write_removes_what_a_killed_writer_left(
    tmp_path: Path, mode: str, partitioned: bool
) -> None:
    target = tmp_path / "out.parquet"
    if mode != "error":
        existing_target(target, partitioned, 1)
    killed_writer(target, mode, partitioned, "writing")
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.parquet.")]
    assert len(left) == 1 and left[0].endswith(".tmp")
    host = socket.gethostname().replace("-", "_")
    running = f".out.parquet.{host}-{os.getpid()}-0123456789ab.tmp"  # this process's
    elsewhere = f".out.parquet.elsewhere-{2**22 + 7}-0123456789ab.tmp"  # another host's
    for name in (running, elsewhere):
        (tmp_path / name).mkdir()
    write(WritePath("one rank", 1, partitioned), target, mode=mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([elsewhere, running, "out.parquet"])
    out = pl.read_parquet(target)["x"].to_list()
    assert sorted(out) == sorted([-1, -2] * (mode == "append") + list(range(CHUNKS * ROWS)))


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.timeout(60)
@pytest.mark.parametrize("old_partitioned", [False, True], ids=["old file", "old directory"])
def test_the_next_write_puts_back_the_output_a_killed_overwrite_moved_aside(
    tmp_path: Path, old_partitioned: bool
) -> None:
    """A new directory replaces an old output in three steps (old aside, new in, old
    deleted); a writer killed after the first leaves the old output aside."""
    target = tmp_path / "out.parquet"
    existing_target(target, old_partitioned, 1)
    killed_writer(target, "overwrite", True, "moved aside")
    assert not target.exists()
    left = sorted(p.suffix for p in tmp_path.iterdir() if p.name.startswith(".out.parquet."))
    assert left == [".old", ".tmp"]  # the old output aside, the new one staged
    ctx = Context()
    with pytest.raises(FileExistsError, match="already exists"):  # the old output is back
        actors.write_parquet(ctx, ctx.create_channel(), target)
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]
    assert pl.read_parquet(target)["x"].to_list() == [-1, -2]


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


class _RecordedWriter:
    """A file writer that says whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def write(self, chunk: TableChunk) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.mark.timeout(60)
async def test_a_file_opened_while_its_writer_is_cancelled_is_closed(tmp_path: Path) -> None:
    """The thread opening a file finishes after its caller was cancelled: the writer it
    made is closed then, not left to the garbage collector (an upload to a store would
    wait for its server when collected)."""
    from actors._writing import _open_file

    opening, release = threading.Event(), threading.Event()
    made: list[_RecordedWriter] = []

    def open_writer(file: Any, schema: Any) -> Any:
        opening.set()
        release.wait(30)
        made.append(_RecordedWriter())
        return made[-1]

    ctx = Context()
    try:
        task = asyncio.ensure_future(
            _open_file(ctx, open_writer, tmp_path / "f.parquet", pa.schema([]))
        )
        await asyncio.to_thread(opening.wait, 30)
        task.cancel()
        await asyncio.sleep(0)  # the task takes its cancellation, and waits for the thread
        assert ctx.kernels_running
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        release.set()
        ctx.close()
    assert len(made) == 1 and made[0].closed


@pytest.mark.timeout(60)
def test_a_failed_partitioned_write_closes_every_file_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write into a partition's file that fails, the file's first included, leaves no
    writer open."""
    opened: list[pq.ParquetWriter] = []
    closed: list[pq.ParquetWriter] = []
    init, close, write_table = (
        pq.ParquetWriter.__init__, pq.ParquetWriter.close, pq.ParquetWriter.write_table
    )  # fmt: skip

    def recording_init(self: pq.ParquetWriter, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        opened.append(self)

    def recording_close(self: pq.ParquetWriter) -> None:
        closed.append(self)
        close(self)

    def failing_write(self: pq.ParquetWriter, table: pa.Table, *args: Any, **kw: Any) -> None:
        if len(opened) == 3:
            raise OSError(errno.ENOSPC, "injected: no space left on device")
        write_table(self, table, *args, **kw)

    monkeypatch.setattr(pq.ParquetWriter, "__init__", recording_init)
    monkeypatch.setattr(pq.ParquetWriter, "close", recording_close)
    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing_write)
    rows = pa.table({"k": [0, 1, 2, 0, 1, 2], "x": range(6)})

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        writer = actors.write_parquet(ctx, ch, tmp_path / "out", partition_by=["k"])
        await Network(ctx, [actors.from_arrow(ctx, ch, rows), writer]).run_async()

    before = snapshot(tmp_path)
    with pytest.raises(OSError, match="injected"):
        run_ranks_within(60, 1, job)
    assert len(opened) == 3
    assert {id(w) for w in closed} == {id(w) for w in opened}
    assert snapshot(tmp_path) == before
