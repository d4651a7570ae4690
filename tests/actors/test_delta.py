"""Delta Lake: read_delta and write_delta, locally and on the S3 server, on 1 and 2 ranks;
compared with Polars (``pl.read_delta``) and the deltalake package reading the same table."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from ranks import run
from s3_server import S3Bucket, s3, s3_server
from waiting import until

import actors
from streamnet import Context, FileReadError, Message, Network, define_actor

deltalake = pytest.importorskip("deltalake")

__all__ = ["s3", "s3_server"]  # fixtures, imported for pytest


def _events(n: int, start: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(start)
    return pl.DataFrame(
        {
            "id": range(start, start + n),
            "cat": rng.choice(["a", "b", "c"], n),
            "v": rng.normal(size=n),
            "day": [None if i % 7 == 0 else f"d{i % 3}" for i in range(n)],
        }
    )


def _write(frame: pl.DataFrame, target: Any, *, chunk_rows: int = 100, **kwargs: Any) -> Any:
    ctx = Context()
    ch = ctx.create_channel()
    source = actors.from_polars(ctx, ch, frame, chunk_rows=chunk_rows)
    writer = actors.write_delta(ctx, ch, target, **kwargs)
    Network(ctx, [source, writer]).run()
    return writer.result()


def _read(source: Any, **kwargs: Any) -> tuple[pl.DataFrame, actors.ParquetScanReport]:
    ctx = Context()
    ch = ctx.create_channel()
    scan = actors.read_delta(ctx, ch, source, **kwargs)
    sink = actors.collect(ctx, ch, into="polars")
    Network(ctx, [scan, sink]).run()
    return sink.result(), scan.result()


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("id")


def test_write_then_read_equals_polars_one_version_per_run(tmp_path: Path) -> None:
    table = tmp_path / "t"
    first, second = _events(500), _events(300, start=500)
    _write(first, table, partition_by=["cat"])
    _write(second, table, partition_by=["cat"], max_open_files=1)
    assert deltalake.DeltaTable(table).version() == 1  # one commit per run
    expected = pl.read_delta(str(table))
    assert_frame_equal(_sorted(expected), _sorted(pl.concat([first, second])), check_column_order=False)
    got, report = _read(table)
    assert got.columns == expected.columns  # the table's order
    assert_frame_equal(_sorted(got), _sorted(expected))
    assert report.files == len(deltalake.DeltaTable(table).file_uris())
    old, _ = _read(table, version=0)
    assert_frame_equal(_sorted(old), _sorted(pl.read_delta(str(table), version=0)))
    assert old.height == 500
    committed = {h["version"]: h["timestamp"] for h in deltalake.DeltaTable(table).history()}
    as_of = dt.datetime.fromtimestamp(committed[0] / 1000, tz=dt.UTC)
    then, _ = _read(table, timestamp=as_of)
    assert_frame_equal(_sorted(then), _sorted(old))


def test_filters_prune_files_by_partition_and_log_statistics(tmp_path: Path) -> None:
    table = tmp_path / "t"
    frame = _events(1000)
    _write(frame, table, partition_by=["cat"], chunk_rows=100, max_file_bytes=1)  # a file per chunk
    total = len(deltalake.DeltaTable(table).file_uris())
    for predicate in [pl.col("id") < 150, pl.col("cat") == "b", (pl.col("cat") != "a") & (pl.col("id") >= 900)]:
        got, report = _read(table, filters=predicate)
        expected = pl.read_delta(str(table)).filter(predicate)
        assert_frame_equal(_sorted(got), _sorted(expected))
        assert report.files < total, predicate


def test_a_filter_the_network_moves_past_a_collective_prunes_files(tmp_path: Path) -> None:
    table = tmp_path / "t"
    frame = _events(1000)
    _write(frame, table, partition_by=["cat"], chunk_rows=100, max_file_bytes=1)  # a file per chunk
    total = len(deltalake.DeltaTable(table).file_uris())
    for predicate, most in [(pl.col("cat") == "b", total // 2), (pl.col("id") < 150, 6)]:
        ctx = Context()
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        scan = actors.read_delta(ctx, a, table)
        sink = actors.collect(ctx, c, into="polars")
        Network(
            ctx, [scan, actors.shuffle(ctx, a, b, "id"), actors.filter(ctx, b, c, predicate), sink]
        ).run()
        assert_frame_equal(_sorted(sink.result()), _sorted(frame.filter(predicate)), check_column_order=False)
        assert scan.result().files <= most < total, predicate


def test_overwrite_replaces_the_rows(tmp_path: Path) -> None:
    table = tmp_path / "t"
    _write(_events(100), table)
    _write(_events(10, start=1000), table, mode="overwrite")
    got, _ = _read(table)
    assert_frame_equal(_sorted(got), _events(10, start=1000))
    with pytest.raises(FileExistsError, match="already exists"):
        _write(_events(1), table, mode="error")


@pytest.mark.parametrize("partition_by", [None, ["t"]])
def test_timestamps_are_stored_as_polars_stores_them(tmp_path: Path, partition_by: list[str] | None) -> None:
    """Microseconds, and UTC for a zone (nested too): nanoseconds made a table Polars cannot
    read, and another zone failed at the commit, once every file was written."""
    moment = dt.datetime(2024, 3, 31, 0, 30, 0, 123456)  # Paris changes to summer time at 1:00 UTC
    frame = pl.DataFrame({"t": [moment, moment + dt.timedelta(hours=1), None], "x": [1, 2, 3]})
    frame = frame.with_columns(
        pl.col("t").cast(pl.Datetime("ns")).alias("ns"),
        pl.col("t").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Paris"),
        pl.struct(pl.col("t").dt.replace_time_zone("UTC").dt.convert_time_zone("Asia/Tokyo").alias("z")).alias("s"),
        pl.concat_list(pl.col("t").dt.replace_time_zone("UTC")).alias("l"),
    )
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    _write(frame, ours, chunk_rows=2, partition_by=partition_by)
    frame.write_delta(str(theirs), delta_write_options={"partition_by": partition_by} if partition_by else None)
    got, want = _read(ours)[0], pl.read_delta(str(theirs))
    assert got.schema == want.select(got.columns).schema
    assert_frame_equal(got.sort("x"), want.select(got.columns).sort("x"))
    assert got.schema["t"] == pl.Datetime("us", "UTC") and got.schema["ns"] == pl.Datetime("us")


def test_mode_error_refuses_a_table_that_exists_before_a_file_is_written(tmp_path: Path) -> None:
    table = tmp_path / "t"
    _write(_events(100), table)
    before = sorted(p.relative_to(table) for p in table.rglob("*"))
    frame = _events(100)
    sent = [0, 0]

    async def write(ctx: Context) -> Any:
        @define_actor
        async def many_chunks(ctx: Context, ch_out: Any) -> None:
            for seq in range(200):
                await ch_out.send(ctx, Message(seq, ctx.backend.from_polars(frame)))
                sent[ctx.rank] += 1
            await ch_out.drain(ctx)

        ch = ctx.create_channel()
        await Network(ctx, [many_chunks(ctx, ch), actors.write_delta(ctx, ch, table, mode="error")]).run_async()

    with pytest.raises(FileExistsError, match="already exists; pass mode='append'"):
        run(2, write)
    assert max(sent) < 200  # refused at the start, not once the whole stream was written
    assert deltalake.DeltaTable(table).version() == 0
    assert sorted(p.relative_to(table) for p in table.rglob("*")) == before


def test_a_failed_run_commits_nothing_and_leaves_no_file(tmp_path: Path) -> None:
    table = tmp_path / "t"
    _write(_events(100), table, partition_by=["cat"])
    before = sorted(p.relative_to(table) for p in table.rglob("*"))
    frame = _events(600, start=100).with_columns(  # new partition values: folders of its own
        pl.when(pl.col("id") % 2 == 0).then(pl.lit("new")).otherwise(pl.col("cat")).alias("cat")
    )

    @define_actor
    async def fails_midway(ctx: Context, ch_out: Any) -> None:
        for seq in range(6):
            if seq == 3:
                raise RuntimeError("injected after three chunks")
            await ch_out.send(ctx, Message(seq, ctx.backend.from_polars(frame.slice(seq * 100, 100))))

    for target in (table, tmp_path / "new" / "t"):  # a table there, and none
        ctx = Context()
        ch = ctx.create_channel()
        with pytest.raises(RuntimeError, match="injected after three chunks"):
            Network(ctx, [fails_midway(ctx, ch), actors.write_delta(ctx, ch, target, partition_by=["cat"])]).run()
    assert deltalake.DeltaTable(table).version() == 0
    assert sorted(p.relative_to(table) for p in table.rglob("*")) == before  # no folder either
    assert not (tmp_path / "new" / "t").exists()


async def test_a_cancelled_write_leaves_no_folder_behind(tmp_path: Path) -> None:
    target = tmp_path / "t"
    frame = _events(300).with_columns(pl.format("new-{}", pl.col("cat")).alias("cat"))
    sent = asyncio.Event()

    @define_actor
    async def then_waits(ctx: Context, ch_out: Any) -> None:
        for seq in range(3):
            await ch_out.send(ctx, Message(seq, ctx.backend.from_polars(frame.slice(seq * 100, 100))))
        sent.set()
        await asyncio.Event().wait()  # until cancelled

    ctx = Context()
    ch = ctx.create_channel(capacity=1)
    writer = actors.write_delta(ctx, ch, target, partition_by=["cat"])
    run = asyncio.create_task(Network(ctx, [then_waits(ctx, ch), writer]).run_async())
    await sent.wait()  # the writer has taken all but the last chunk: its folders are made
    await until(lambda: len(list(target.glob("cat=*"))) == 3)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert not target.exists()


def test_two_ranks_write_one_commit_and_read_their_shares(tmp_path: Path) -> None:
    table = tmp_path / "t"
    frame = _events(800)

    async def write(ctx: Context) -> Any:
        ch = ctx.create_channel()
        part = frame.filter(pl.col("id") % 2 == ctx.rank)
        source = actors.from_polars(ctx, ch, part, chunk_rows=100)
        writer = actors.write_delta(ctx, ch, table, partition_by=["cat"])
        await Network(ctx, [source, writer]).run_async()
        return writer.result()

    run(2, write)
    assert deltalake.DeltaTable(table).version() == 0

    async def read(ctx: Context) -> pl.DataFrame:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch, into="polars")
        await Network(ctx, [actors.read_delta(ctx, ch, table), sink]).run_async()
        result: pl.DataFrame = sink.result()
        return result

    parts = run(2, read)
    assert all(p.height > 0 for p in parts)
    assert_frame_equal(_sorted(pl.concat(parts)), _sorted(frame), check_column_order=False)


def test_not_a_delta_table_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileReadError, match=f"cannot read the Delta table `{tmp_path}"):
        _read(tmp_path)


def test_delta_on_s3_round_trips(s3: S3Bucket) -> None:
    uri = s3.uri("delta/t")
    frame = _events(400)
    _write(frame, uri, partition_by=["cat"], storage_options=s3.storage_options)
    _write(_events(50, start=400), uri, partition_by=["cat"], storage_options=s3.storage_options)
    options = {k.upper(): v for k, v in s3.polars_options.items()}
    expected = pl.read_delta(uri, storage_options=options)
    assert expected.height == 450
    got, report = _read(uri, storage_options=s3.storage_options, filters=pl.col("cat") == "a")
    assert_frame_equal(_sorted(got), _sorted(expected.filter(pl.col("cat") == "a")))
    assert report.files == 2  # the two commits' files of partition `a`
    assert not [k for k in s3.objects() if "/." in k]


def test_a_timestamp_partition_is_committed_as_delta_writes_it(tmp_path: Path) -> None:
    """A naive timestamp key went into the log as its folder's ISO text
    (``2024-01-02T12:30:00``), which Delta readers refuse: the failed commit left a version
    that made the table unreadable, older versions too. The log now holds Delta's form."""
    import pyarrow as pa

    target = tmp_path / "t"
    first = pa.table({"k": [dt.datetime(2024, 1, 1)], "v": [0]})
    deltalake.write_deltalake(str(target), first, partition_by=["k"])
    more = pl.DataFrame({"k": [dt.datetime(2024, 1, 2, 12, 30), dt.datetime(2024, 1, 3, 0, 0, 0, 5)],
                         "v": [1, 2]})  # fmt: skip
    _write(more, target, mode="append", partition_by=["k"])
    want = pl.concat([pl.DataFrame(first), more], how="vertical_relaxed")
    assert_frame_equal(pl.read_delta(str(target)).sort("v"), want.sort("v"), check_dtypes=False)
    got, _ = _read(target)
    assert_frame_equal(got.select(want.columns).sort("v"), want.sort("v"), check_dtypes=False)


@pytest.mark.parametrize("kind", ["bool", "date", "utc"])
def test_read_delta_types_the_partition_values_of_any_writer(tmp_path: Path, kind: str) -> None:
    """Polars 2 casts text to neither booleans, dates nor timestamps: a table deltalake
    partitioned by one could not be read."""
    import pyarrow as pa

    keys = {
        "bool": pa.array([True, False, None]),
        "date": pa.array([dt.date(2024, 1, 1), dt.date(2024, 2, 1), None]),
        "utc": pa.array([dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 11), None],
                        pa.timestamp("us", "UTC")),
    }
    target = str(tmp_path / "t")
    deltalake.write_deltalake(target, pa.table({"k": keys[kind], "v": [1, 2, 3]}), partition_by=["k"])
    want = pl.read_delta(target)
    got, _ = _read(target)
    assert_frame_equal(got.select(want.columns).sort("v"), want.sort("v"))
    kept, _ = _read(target, filters=pl.col("k").is_not_null())
    assert kept.height == 2
