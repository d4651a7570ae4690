"""Spill directory: where spilled chunks go, and that they never outlive their run."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

import actors
from streamnet import (
    Context,
    Message,
    Network,
    SpillError,
    StreamnetError,
    TableChunk,
    define_actor,
)

CHUNK = pl.DataFrame({"k": range(1000), "v": range(1000)})


@pytest.fixture
def stray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Python's temporary directory, redirected: nothing may spill there."""
    folder = tmp_path / "python-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_spill_directory_must_be_writable_when_the_context_starts(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OSError, match=r"spill directory `.*a-file/spill` is not writable"):
        Context(spill_directory=blocker / "spill")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_spill_directory_fails_when_the_context_starts(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OSError, match="is not writable"):
            Context(spill_directory=tmp_path / "spill")
    finally:
        tmp_path.chmod(0o700)


def test_collective_spills_go_to_the_context_directory_and_leave_with_the_run(
    tmp_path: Path, stray: Path
) -> None:
    ctx = Context(spill_directory=tmp_path / "spill")
    a, b = ctx.create_channel(), ctx.create_channel()
    source = actors.from_polars(ctx, a, pl.concat([CHUNK] * 20), chunk_rows=1000)
    bound = 2 * int(CHUNK.estimated_size())
    shuffle = actors.shuffle(ctx, a, b, "k", num_partitions=4, max_buffered_bytes=bound)
    sink = actors.collect(ctx, b, into="polars")
    Network(ctx, [source, shuffle, sink]).run()
    assert_frame_equal(sink.result().sort("k", "v"), pl.concat([CHUNK] * 20).sort("k", "v"))
    stats = ctx.spills.statistics()
    assert shuffle.result().spilled_bytes > 0
    assert stats.files_written > 0 and stats.directory.parent == tmp_path / "spill"
    assert stats.files_present == 0
    assert list(stray.iterdir()) == []
    ctx.close()
    assert list((tmp_path / "spill").iterdir()) == []


def test_join_spills_its_left_buffer_into_the_context_directory(
    tmp_path: Path, stray: Path
) -> None:
    # under a memory limit: without one, a left buffer stays in memory
    ctx = Context(spill_directory=tmp_path, memory_limit=1 << 30)
    left_done = asyncio.Event()

    @define_actor
    async def left(ctx: Context, ch_out: Any) -> None:
        for seq in range(8):
            await ch_out.send(ctx, Message(seq, TableChunk.from_polars(CHUNK)))
        left_done.set()
        await ch_out.drain(ctx)

    @define_actor
    async def right(ctx: Context, ch_out: Any) -> None:
        await left_done.wait()  # the left side is buffered (and spilled) meanwhile
        await ch_out.send(ctx, Message(0, TableChunk.from_polars(CHUNK.head(10))))
        await ch_out.drain(ctx)

    a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    threshold = int(CHUNK.estimated_size())
    sink = actors.collect(ctx, c, into="polars")
    join = actors.join(ctx, a, b, c, on="k", broadcast_threshold=threshold)
    Network(ctx, [left(ctx, a), right(ctx, b), join, sink]).run()
    assert sink.result().height == 8 * 10
    assert ctx.spills.statistics().files_written > 0
    assert ctx.spills.statistics().files_present == 0
    assert list(stray.iterdir()) == []


def test_failed_run_removes_its_spill_files_while_its_error_lives(tmp_path: Path) -> None:
    """The chunks stay referenced from the traceback: garbage collection would not do it."""
    ctx = Context(spill_directory=tmp_path)
    ch = ctx.create_channel()

    @define_actor
    async def spills_then_fails(ctx: Context, ch_out: Any) -> None:
        held = [TableChunk.from_polars(CHUNK) for _ in range(3)]
        for chunk in held:
            await ctx.to_thread(chunk.spill, ctx.spills)
        raise RuntimeError("failed after spilling")

    with pytest.raises(RuntimeError, match="failed after spilling") as info:
        Network(ctx, [spills_then_fails(ctx, ch), actors.collect(ctx, ch)]).run()
    assert ctx.spills.statistics().files_written == 3
    assert ctx.spills.statistics().files_present == 0
    chunk = next(  # the actor's frame, chunks and all, is still alive
        c
        for tb in _frames(info.value.__traceback__)
        for v in tb.tb_frame.f_locals.values()
        if isinstance(v, list)
        for c in v
        if isinstance(c, TableChunk)
    )
    with pytest.raises(SpillError, match="cannot be loaded: its file is gone") as gone:
        chunk.to_arrow()
    assert isinstance(gone.value, StreamnetError) and isinstance(gone.value, OSError)


def _frames(tb: Any) -> list[Any]:
    out = []
    while tb is not None:
        out.append(tb)
        tb = tb.tb_next
    return out


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    import pyarrow as pa
    from streamnet import Context, TableChunk

    ctx = Context(spill_directory=sys.argv[1])
    chunk = TableChunk.from_arrow(pa.table({"x": range(100)}))
    chunk.spill(ctx.spills)
    print(ctx.spills.path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.timeout(60)
def test_leftovers_of_a_killed_process_are_removed_at_the_next_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=Path(__file__).parents[3],
    )
    assert done.returncode == -9, done.stderr
    left = Path(done.stdout.strip())
    assert left.parent == tmp_path and len(list(left.iterdir())) == 1
    host = socket.gethostname().replace("-", "_")
    alive = tmp_path / f"streamnet-spill-{host}-{os.getpid()}-0123456789ab"  # this process
    alive.mkdir()
    other_host = tmp_path / f"streamnet-spill-elsewhere-{2**22 + 7}-0123456789ab"
    other_host.mkdir()
    ctx = Context(spill_directory=tmp_path)
    assert not left.exists()
    assert alive.exists() and other_host.exists()
    ctx.close()


def test_closing_the_context_removes_its_folder(tmp_path: Path) -> None:
    with Context(spill_directory=tmp_path) as ctx:
        chunk = TableChunk.from_arrow(pa.table({"x": [1, 2]}))
        chunk.spill(ctx.spills)
        assert ctx.spills.path.parent == tmp_path and ctx.spills.statistics().files_present == 1
        assert chunk.to_arrow()["x"].to_pylist() == [1, 2]
    assert list(tmp_path.iterdir()) == []


def test_a_chunk_spilled_by_an_actor_goes_to_its_context_directory(
    tmp_path: Path, stray: Path
) -> None:
    ctx = Context(spill_directory=tmp_path)
    ch = ctx.create_channel()

    @define_actor
    async def spills(ctx: Context, ch_out: Any) -> None:
        chunk = TableChunk.from_arrow(pa.table({"x": range(10)}))
        await ctx.to_thread(chunk.spill)  # no directory given: the Context's
        await ch_out.send(ctx, Message(0, chunk))
        await ch_out.drain(ctx)

    sink = actors.collect(ctx, ch)
    Network(ctx, [spills(ctx, ch), sink]).run()
    assert sink.result()["x"].to_pylist() == list(range(10))
    assert ctx.spills.statistics().files_written == 1
    assert list(stray.iterdir()) == []


# -- one run's end touches only its own files -------------------------------------------------


@define_actor
async def _spill_then_forward(
    ctx: Context, ch_in: Any, ch_out: Any, spilled: asyncio.Event, go_on: asyncio.Event
) -> None:
    """Spill every chunk it receives, hold them until ``go_on``, then send them on."""
    held = []
    async for msg in ch_in:
        chunk = TableChunk.from_message(msg)
        await ctx.to_thread(chunk.spill)
        held.append((msg.sequence_number, chunk))
    spilled.set()
    await go_on.wait()
    for seq, chunk in held:
        await ch_out.send(ctx, Message(seq, chunk))
    await ch_out.drain(ctx)


@define_actor
async def _spill_then_end(
    ctx: Context, ch_in: Any, other_spilled: asyncio.Event, fail: bool
) -> None:
    """Spill what it receives, then (once the other network spilled too) end or fail."""
    held = []
    async for msg in ch_in:
        chunk = TableChunk.from_message(msg)
        await ctx.to_thread(chunk.spill)
        held.append(chunk)
    await other_spilled.wait()
    if fail:
        raise RuntimeError("the other network failed")


@pytest.mark.parametrize("other_fails", [False, True], ids=["other succeeds", "other fails"])
@pytest.mark.timeout(60)
def test_two_networks_on_one_context_keep_each_others_spill_files(
    tmp_path: Path, other_fails: bool
) -> None:
    """The first run to end used to remove every spill file of the Context, so the
    other one failed: "chunk spilled to ... cannot be loaded"."""

    async def main() -> tuple[pl.DataFrame, BaseException | None]:
        ctx = Context(spill_directory=tmp_path)
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        spilled, other_done = asyncio.Event(), asyncio.Event()
        sink = actors.collect(ctx, b, into="polars")
        slow = Network(
            ctx,
            [
                actors.from_polars(ctx, a, CHUNK, chunk_rows=100),
                _spill_then_forward(ctx, a, b, spilled, other_done),
                sink,
            ],
            name="slow",
        )
        fast = Network(
            ctx,
            [
                actors.from_polars(ctx, c, CHUNK, chunk_rows=100),
                _spill_then_end(ctx, c, spilled, other_fails),
            ],
            name="fast",
        )

        async def fast_then_tell() -> None:
            try:
                await fast.run_async()
            finally:
                other_done.set()

        outcome = await asyncio.gather(slow.run_async(), fast_then_tell(), return_exceptions=True)
        assert outcome[0] is None, outcome[0]
        failure = outcome[1] if isinstance(outcome[1], BaseException) else None
        assert ctx.spills.statistics().files_written == 20
        ctx.close()
        return sink.result(), failure

    rows, failure = asyncio.run(main())
    assert_frame_equal(rows, CHUNK)
    assert (failure is not None) == other_fails
    assert list(tmp_path.iterdir()) == []


def test_a_spilled_chunk_returned_in_a_result_stays_loadable_until_it_goes(
    tmp_path: Path,
) -> None:
    """A chunk spilled in a run that succeeded keeps its file while the chunk lives (an
    actor's result holds it); the file goes with the chunk, or with the Context."""
    ctx = Context(spill_directory=tmp_path)

    @define_actor
    async def keeps_spilled(ctx: Context) -> list[TableChunk]:
        chunks = [TableChunk.from_polars(CHUNK.slice(i * 100, 100)) for i in range(3)]
        for chunk in chunks:
            await ctx.to_thread(chunk.spill)
        return chunks

    node = keeps_spilled(ctx)
    Network(ctx, [node]).run()
    loaded, collected, kept = node.result()
    assert loaded.is_spilled and collected.is_spilled and kept.is_spilled
    assert ctx.spills.statistics().files_present == 3
    assert_frame_equal(loaded.to_polars(), CHUNK.head(100))  # loaded back: its file goes
    assert ctx.spills.statistics().files_present == 2
    node.result().clear()
    del collected  # the last reference: its file goes
    assert ctx.spills.statistics().files_present == 1
    assert_frame_equal(kept.to_polars(), CHUNK.slice(200, 100))
    ctx.close()
    assert list(tmp_path.iterdir()) == []


def test_every_context_removes_the_leftovers_of_dead_processes(tmp_path: Path) -> None:
    """Only the first Context of a process in a directory used to look for them."""
    first = Context(spill_directory=tmp_path)
    host = socket.gethostname().replace("-", "_")
    dead = tmp_path / f"streamnet-spill-{host}-{_dead_pid()}-0123456789ab"
    dead.mkdir()
    (dead / "x.arrow").write_bytes(b"0" * 100)
    second = Context(spill_directory=tmp_path)
    assert not dead.exists()
    first.close()
    second.close()


def _dead_pid() -> int:
    """The pid of a process of this host that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True, timeout=50)  # fmt: skip
    return int(done.stdout)
