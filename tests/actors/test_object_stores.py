"""Sources and sinks on an object store: moto's S3 server on localhost (see s3_server).

Each result is compared with Polars reading the same objects (its own S3 client),
or the same data kept locally."""

from __future__ import annotations

import socket
import threading
import uuid
from typing import Any

import numpy as np
import polars as pl
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal
from ranks import run
from s3_server import S3Bucket, s3, s3_server, serving

import actors
from streamnet import (
    Context,
    FileReadError,
    Message,
    Network,
    RemoteRankError,
    SchemaError,
    define_actor,
)

__all__ = ["s3", "s3_server"]  # fixtures, imported for pytest


def _frame(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "k": np.arange(n),
            "v": rng.normal(size=n),
            "s": [None if x == "" else x for x in rng.choice(["red", "green", ""], size=n)],
        }
    )


def _put_parquet(s3: S3Bucket, key: str, frame: pl.DataFrame, row_group_size: int) -> str:
    with s3.filesystem.open_output_stream(f"{s3.name}/{key}") as out:
        pq.write_table(frame.to_arrow(), out, row_group_size=row_group_size)
    return s3.uri(key)


def _scan(source: Any, **kwargs: Any) -> tuple[pl.DataFrame, actors.ParquetScanReport]:
    ctx = Context()
    ch = ctx.create_channel()
    scan = actors.read_parquet(ctx, ch, source, **kwargs)
    sink = actors.collect(ctx, ch, into="polars")
    Network(ctx, [scan, sink]).run()
    return sink.result(), scan.result()


@pytest.mark.parametrize("reader", ["polars", "pyarrow"])
def test_read_parquet_from_s3_equals_polars_with_pushdown(s3: S3Bucket, reader: str) -> None:
    """By URI and storage_options, Polars' object-store reader reads the row groups; with
    a pyarrow filesystem, pyarrow does: both give Polars' rows."""
    for i in range(3):
        _put_parquet(s3, f"data/part-{i}.parquet", _frame(1000, seed=i).with_columns(
            pl.col("k") + 1000 * i), row_group_size=100)  # fmt: skip
    predicate = (pl.col("k") >= 1250) & (pl.col("k") < 1420) & (pl.col("v") > -1.5)
    where: dict[str, Any] = (
        {"source": s3.uri("data/"), "storage_options": s3.storage_options}
        if reader == "polars"
        else {"source": f"{s3.name}/data/", "filesystem": s3.filesystem}
    )
    got, report = _scan(where.pop("source"), columns=["k", "s"], filters=predicate, **where)
    expected = (
        pl.scan_parquet(s3.uri("data/*.parquet"), storage_options=s3.polars_options)
        .filter(predicate)
        .select("k", "s")
        .collect()
    )
    assert_frame_equal(got, expected)
    assert report.files == 3
    assert report.row_groups_total == 30
    assert report.row_groups_read == 3  # statistics pruned the other 27


def _collect_csv(source: Any, **kwargs: Any) -> pl.DataFrame:
    ctx = Context()
    ch = ctx.create_channel()
    sink = actors.collect(ctx, ch, into="polars")
    Network(ctx, [actors.read_csv(ctx, ch, source, **kwargs), sink]).run()
    result: pl.DataFrame = sink.result()
    return result


def _csv_bytes(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode()


def test_read_csv_from_s3_equals_polars(s3: S3Bucket) -> None:
    frame = _frame(3000)
    s3.put("csv/a.csv", _csv_bytes(frame.head(1000)))
    s3.put("csv/b.csv", _csv_bytes(frame.tail(2000)))
    got = _collect_csv(s3.uri("csv/"), storage_options=s3.storage_options, block_size=4096)
    expected = pl.concat(pl.read_csv(s3.get(f"csv/{name}.csv")) for name in "ab")
    assert_frame_equal(got, expected)


def test_read_csv_from_s3_on_two_ranks_reads_byte_ranges(s3: S3Bucket) -> None:
    """One object, two ranks: each reads the rows that start in its half of the bytes."""
    frame = _frame(2000)
    uri = s3.put("one.csv", _csv_bytes(frame))

    async def job(ctx: Context) -> pl.DataFrame:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch, into="polars")
        source = actors.read_csv(ctx, ch, uri, storage_options=s3.storage_options, block_size=2048)
        await Network(ctx, [source, sink]).run_async()
        result: pl.DataFrame = sink.result()
        return result

    first, second = run(2, job)
    assert first.height > 0 and second.height > 0
    expected = pl.read_csv(s3.get("one.csv"))
    assert_frame_equal(pl.concat([first, second]), expected)


def test_read_parquet_from_s3_on_two_ranks_reads_each_share_once(s3: S3Bucket) -> None:
    frame = _frame(4000)
    _put_parquet(s3, "p/a.parquet", frame.head(1000), row_group_size=250)
    _put_parquet(s3, "p/b.parquet", frame.tail(3000), row_group_size=250)

    async def job(ctx: Context) -> tuple[pl.DataFrame, int]:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch, into="polars")
        scan = actors.read_parquet(ctx, ch, s3.uri("p/"), storage_options=s3.storage_options)
        await Network(ctx, [scan, sink]).run_async()
        result: pl.DataFrame = sink.result()
        return result, scan.result().row_groups_read

    (first, groups0), (second, groups1) = run(2, job)
    assert (groups0, groups1) == (8, 8)
    assert_frame_equal(pl.concat([first, second]), frame)


def test_missing_bucket_names_the_uri(s3: S3Bucket) -> None:
    uri = f"s3://{s3.name}-missing/data/"
    with pytest.raises(FileNotFoundError, match=f"`{uri}`"):
        _scan(uri, storage_options=s3.storage_options)



@pytest.mark.timeout(60)
@pytest.mark.parametrize("reader", ["parquet", "csv", "ndjson"])
def test_refused_credentials_name_the_uri(reader: str) -> None:
    """A store that refuses the credentials fails the source with an error naming the URI
    (a server of its own, which checks them)."""
    read: dict[str, Any] = {
        "parquet": actors.read_parquet, "csv": actors.read_csv, "ndjson": actors.read_ndjson
    }  # fmt: skip
    with serving(authenticate=True) as server:
        uri = f"s3://bucket/data.{reader}"
        ctx = Context()
        ch = ctx.create_channel()
        source = read[reader](ctx, ch, uri, storage_options=server.storage_options)
        with pytest.raises(FileReadError, match=f"`{uri}`.*ACCESS_DENIED"):
            Network(ctx, [source, actors.collect(ctx, ch)]).run()


def test_corrupt_object_names_the_uri(s3: S3Bucket) -> None:
    uri = s3.put("bad/x.parquet", b"not parquet at all")
    with pytest.raises(FileReadError, match=f"cannot read `{uri}` as Parquet"):
        _scan(uri, storage_options=s3.storage_options)


def test_schema_mismatch_across_objects_names_both(s3: S3Bucket) -> None:
    _put_parquet(s3, "m/a.parquet", pl.DataFrame({"x": [1, 2]}), row_group_size=10)
    _put_parquet(s3, "m/b.parquet", pl.DataFrame({"x": ["a"]}), row_group_size=10)
    with pytest.raises(SchemaError, match=r"`s3://.*/m/b\.parquet` does not have the schema of `s3://.*/m/a\.parquet`"):
        _scan(s3.uri("m/"), storage_options=s3.storage_options)


def test_an_explicit_filesystem_reads_paths_in_it(s3: S3Bucket) -> None:
    frame = _frame(500)
    _put_parquet(s3, "fs/a.parquet", frame, row_group_size=100)
    got, _ = _scan(f"{s3.name}/fs/a.parquet", filesystem=s3.filesystem)
    assert_frame_equal(got, frame)


class InjectedFault(RuntimeError):
    """The failure a test injects."""


@define_actor
async def _chunks(ctx: Context, ch_out: Any, *, n: int, fail_at: int | None = None) -> None:
    """``n`` chunks of 100 rows (rank ``r`` numbers its rows from ``r * 1_000_000``); raise
    before chunk ``fail_at`` on rank 0 (after every chunk, before the end, at ``n``)."""
    for seq in range(n + 1):
        if seq == fail_at and ctx.rank == 0:
            raise InjectedFault(f"injected before chunk {seq}")
        if seq < n:
            start = ctx.rank * 1_000_000 + seq * 100
            frame = pl.DataFrame({"x": range(start, start + 100), "y": [f"v{seq}"] * 100})
            await ch_out.send(ctx, Message(seq, ctx.backend.from_polars(frame)))
    await ch_out.drain(ctx)


def _write_job(uri: str, s3: S3Bucket, *, n: int, fail_at: int | None = None, **kwargs: Any) -> Any:
    async def job(ctx: Context) -> Any:
        ch = ctx.create_channel()
        sink = actors.write_parquet(ctx, ch, uri, storage_options=s3.storage_options, **kwargs)
        await Network(ctx, [_chunks(ctx, ch, n=n, fail_at=fail_at), sink]).run_async()
        return sink.result()

    return job


def _expected(nranks: int, n: int) -> pl.DataFrame:
    return pl.concat(
        pl.DataFrame({"x": range(r * 1_000_000 + s * 100, r * 1_000_000 + s * 100 + 100),
                      "y": [f"v{s}"] * 100})
        for r in range(nranks) for s in range(n)
    )  # fmt: skip


@pytest.mark.parametrize(("nranks", "partitioned"), [(1, False), (1, True), (2, False), (2, True)])
def test_write_parquet_to_s3_round_trips(s3: S3Bucket, nranks: int, partitioned: bool) -> None:
    uri = s3.uri("out/t.parquet")
    reports = run(nranks, _write_job(uri, s3, n=4, partitioned=partitioned))
    keys = s3.objects()
    assert not [k for k in keys if "/." in k or k.startswith(".")], keys  # nothing staged is left
    source = uri if not (partitioned or nranks > 1) else uri + "/*.parquet"
    back = pl.read_parquet(source, storage_options=s3.polars_options)
    assert_frame_equal(back, _expected(nranks, 4))
    assert sorted(f for report in reports for f in report.files) == [
        s3.uri(k) for k in keys if k.endswith(".parquet")
    ]
    if partitioned or nranks > 1:
        assert "out/t.parquet/_SUCCESS" in keys
    # and streamnet reads it back with pushdown
    got, report = _scan(uri, filters=pl.col("x") < 150, storage_options=s3.storage_options)
    assert report.row_groups_read < report.row_groups_total
    assert_frame_equal(got, _expected(nranks, 4).filter(pl.col("x") < 150))


@pytest.mark.parametrize("fail_at", [0, 2, 4])
@pytest.mark.parametrize(("nranks", "partitioned"), [(1, False), (1, True), (2, False), (2, True)])
def test_a_failed_write_to_s3_leaves_no_object(
    s3: S3Bucket, nranks: int, partitioned: bool, fail_at: int
) -> None:
    s3.put("keep.txt", b"here before")
    uri = s3.uri("out/t.parquet")
    with pytest.raises((InjectedFault, RemoteRankError)):
        run(nranks, _write_job(uri, s3, n=4, fail_at=fail_at, partitioned=partitioned))
    assert s3.objects() == ["keep.txt"]


def test_overwrite_on_s3_replaces_the_objects(s3: S3Bucket) -> None:
    uri = s3.uri("out/")
    run(1, _write_job(uri, s3, n=4, partitioned=True))
    run(1, _write_job(uri, s3, n=2, partitioned=True, mode="overwrite"))
    assert s3.objects() == ["out/_SUCCESS", "out/part-00000000.parquet", "out/part-00000001.parquet"]
    with pytest.raises(FileExistsError, match=f"`{uri}` already exists"):
        run(1, _write_job(uri, s3, n=1, partitioned=True))


def test_write_csv_to_s3_on_two_ranks_round_trips(s3: S3Bucket) -> None:
    uri = s3.uri("csv-out/")

    async def job(ctx: Context) -> Any:
        ch = ctx.create_channel()
        sink = actors.write_csv(ctx, ch, uri, storage_options=s3.storage_options)
        await Network(ctx, [_chunks(ctx, ch, n=3), sink]).run_async()
        return sink.result()

    run(2, job)
    assert s3.objects() == [
        "csv-out/_SUCCESS", "csv-out/part-r00000.csv", "csv-out/part-r00001.csv"
    ]
    back = pl.concat(pl.read_csv(s3.get(f"csv-out/part-r0000{r}.csv")) for r in range(2))
    assert_frame_equal(back, _expected(2, 3))
    assert_frame_equal(_collect_csv(uri, storage_options=s3.storage_options), _expected(2, 3))


def test_sources_count_bytes_read_in_the_statistics(s3: S3Bucket) -> None:
    frame = _frame(1000)
    uri = _put_parquet(s3, "b/a.parquet", frame, row_group_size=100)
    csv_uri = s3.put("b/a.csv", _csv_bytes(frame))
    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    scan = actors.read_parquet(ctx, a, uri, columns=["k"], filters=pl.col("k") < 250,
                               storage_options=s3.storage_options)  # fmt: skip
    text = actors.read_csv(ctx, b, csv_uri, storage_options=s3.storage_options)
    net = Network(ctx, [scan, text, actors.collect(ctx, a), actors.collect(ctx, b)])
    net.run()
    read = {a.name: a.bytes_read for a in net.statistics().actors}
    with s3.filesystem.open_input_file(f"{s3.name}/b/a.parquet") as file:
        footer = pq.read_metadata(file)
    k = footer.schema.names.index("k")
    assert read[scan.name] == sum(footer.row_group(g).column(k).total_compressed_size for g in range(3))
    assert read[text.name] == len(_csv_bytes(frame))


def _memory_parquet(root: str, frame: pl.DataFrame, files: int) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    step = -(-frame.height // files)
    for i in range(files):
        with fs.open(f"{root}/part-{i}.parquet", "wb") as out:
            pq.write_table(frame.slice(i * step, step).to_arrow(), out, row_group_size=100)


def test_a_scheme_pyarrow_lacks_is_read_through_fsspec() -> None:
    root = f"memory://fsspec-{uuid.uuid4().hex}"
    frame = _frame(600)
    _memory_parquet(root.removeprefix("memory://"), frame, files=2)
    got, report = _scan(root, filters=pl.col("k") >= 450)
    assert_frame_equal(got, frame.filter(pl.col("k") >= 450))
    assert report.row_groups_read == 2


@pytest.mark.timeout(60)
def test_several_row_group_reads_are_in_flight_at_once() -> None:
    """Each read of a scan task waits at a barrier until another one is in flight: a scan
    that read one task at a time would break the barrier (after its timeout) and fail."""
    import fsspec

    root = f"inflight-{uuid.uuid4().hex}"
    frame = _frame(800)
    _memory_parquet(root, frame, files=2)
    together = threading.Barrier(2, timeout=20)
    opened = {"n": 0}
    lock = threading.Lock()

    class Handler(pafs.FSSpecHandler):  # type: ignore[misc]
        def open_input_file(self, path: str) -> Any:
            with lock:
                opened["n"] += 1
                # Planning opens each file for its footer, and the first again to check the
                # plan's schema: the first two opens after those are scan tasks.
                first_tasks = 3 < opened["n"] <= 5
            if first_tasks:
                together.wait()  # BrokenBarrierError (the read fails) if none comes
            return super().open_input_file(path)

    fs = pafs.PyFileSystem(Handler(fsspec.filesystem("memory")))
    ctx = Context(num_threads=4)
    ch = ctx.create_channel()
    scan = actors.read_parquet(ctx, ch, f"/{root}", filesystem=fs, prefetch=4)
    sink = actors.collect(ctx, ch, into="polars")
    Network(ctx, [scan, sink]).run()
    assert not together.broken  # two reads met there: they were in flight at once
    assert_frame_equal(sink.result(), frame)


def test_an_unreachable_store_names_the_uri() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {
        "endpoint_override": f"127.0.0.1:{port}", "scheme": "http", "access_key": "k",
        "secret_key": "s", "region": "us-east-1", "connect_timeout": 1, "request_timeout": 1,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=1),
    }  # fmt: skip
    with pytest.raises(FileReadError, match="cannot (list|look up) `s3://bucket/data/`"):
        _scan("s3://bucket/data/", storage_options=options)
