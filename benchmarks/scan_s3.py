"""Scan -> filter -> project -> collect from an S3 server on this machine (moto's).

The same Parquet data (``lineitem``, cut into several objects) is uploaded to a
local S3 server; streamnet's ``read_parquet`` of the ``s3://`` URI (listing,
footers, row groups by range requests through ``pyarrow.fs``, the predicate and
projection pushed into the scan) runs beside Polars' ``scan_parquet`` of the
same URIs (its own object-store client), in the same process run; streamnet
reads the row groups with Polars' reader when the options translate to it
(S3 by URI), and with pyarrow through an explicit ``filesystem=``. The results
are checked equal before any timing counts. The server is moto's, a Python
server in a process of its own: it bounds both engines, so the figures compare
the clients' use of a store (requests in flight, bytes fetched), not a real
store's bandwidth.
"""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

import actors
from actors.demo import lineitem
from benchmarks.scan import COLUMNS, PREDICATE, _fingerprint
from streamnet import Context, Network

SERVER = (
    "import logging, sys\n"
    "from moto.server import ThreadedMotoServer\n"
    "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"
    "s = ThreadedMotoServer(ip_address='127.0.0.1', port=int(sys.argv[1]), verbose=False)\n"
    "s.start(); print('ready', flush=True); sys.stdin.read(); s.stop()\n"
)


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free localhost port, in a child process; its endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("the S3 server did not start (is moto[server] installed?)")
        yield f"127.0.0.1:{port}"
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        child.stdout.close()


@dataclass
class S3ScanResult:
    engine: str
    seconds: float
    rows_out: int


def _engines(
    uri: str, options: dict[str, Any], polars_options: dict[str, str]
) -> dict[str, Callable[[], pa.Table]]:
    def streamnet_pushdown() -> pa.Table:
        with Context() as ctx:
            ch = ctx.create_channel()
            sink = actors.collect(ctx, ch)
            scan = actors.read_parquet(ctx, ch, uri, columns=COLUMNS, filters=PREDICATE,
                                       storage_options=options)  # fmt: skip
            Network(ctx, [scan, sink]).run()
        table: pa.Table = sink.result()
        return table

    def streamnet_pyarrow() -> pa.Table:
        with Context() as ctx:
            ch = ctx.create_channel()
            sink = actors.collect(ctx, ch)
            fs = pafs.S3FileSystem(**options)
            scan = actors.read_parquet(ctx, ch, uri.removeprefix("s3://"), columns=COLUMNS,
                                       filters=PREDICATE, filesystem=fs)  # fmt: skip
            Network(ctx, [scan, sink]).run()
        table: pa.Table = sink.result()
        return table

    def polars_streaming() -> pa.Table:
        return (
            pl.scan_parquet(uri + "*.parquet", storage_options=polars_options)
            .filter(PREDICATE)
            .select(COLUMNS)
            .collect(engine="streaming")
            .to_arrow()
        )

    return {
        "streamnet (pushdown)": streamnet_pushdown,
        "streamnet (pyarrow filesystem)": streamnet_pyarrow,
        "polars streaming": polars_streaming,
    }


ENGINES = ["streamnet (pushdown)", "streamnet (pyarrow filesystem)", "polars streaming"]


def run(
    *, rows: int = 5_000_000, objects: int = 4, repeats: int = 3, data_dir: str = ".cache/bench"
) -> tuple[int, int, list[S3ScanResult]]:
    local = pq.read_table(lineitem(rows, data_dir))
    results = []
    with s3_server() as endpoint:
        options = {"endpoint_override": endpoint, "scheme": "http", "access_key": "bench",
                   "secret_key": "bench", "region": "us-east-1"}  # fmt: skip
        polars_options = {"aws_endpoint_url": f"http://{endpoint}", "aws_access_key_id": "bench",
                          "aws_secret_access_key": "bench", "aws_region": "us-east-1",
                          "aws_allow_http": "true"}  # fmt: skip
        fs = pafs.S3FileSystem(**options, allow_bucket_creation=True)
        fs.create_dir("bench")
        nbytes = 0
        step = -(-local.num_rows // objects)
        for i in range(objects):
            with fs.open_output_stream(f"bench/lineitem/part-{i}.parquet") as out:
                pq.write_table(local.slice(i * step, step), out, row_group_size=250_000)
            nbytes += fs.get_file_info(f"bench/lineitem/part-{i}.parquet").size
        engines = _engines("s3://bench/lineitem/", options, polars_options)
        reference = None
        for name in ENGINES:
            fn = engines[name]
            fingerprint = _fingerprint(fn())  # warm-up, and the correctness check
            if reference is None:
                reference = fingerprint
            elif fingerprint != reference:
                raise AssertionError(f"{name} gave {fingerprint}, expected {reference}")
            times = []
            for _ in range(repeats):
                gc.collect()
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            results.append(S3ScanResult(name, min(times), reference[0]))
    return rows, nbytes, results


def report(rows: int, nbytes: int, results: list[S3ScanResult]) -> str:
    best = min(r.seconds for r in results if not r.engine.startswith("streamnet"))
    lines = [
        f"{rows:,} rows in objects of {nbytes / 1e6:,.0f} MB in all on a local moto S3 server; "
        f"{results[0].rows_out:,} rows out",
        "",
        "| engine | seconds | M rows/s scanned | MB/s of objects | ratio to Polars |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.engine} | {r.seconds:.2f} | {rows / r.seconds / 1e6:.1f} | "
            f"{nbytes / r.seconds / 1e6:.0f} | {r.seconds / best:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
