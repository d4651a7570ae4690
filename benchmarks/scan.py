"""Scan -> filter -> project -> collect over a Parquet file of 20M rows.

streamnet (``read_parquet`` with the predicate and projection pushed into the
scan, and also as separate ``filter``/``select`` actors) beside Polars'
streaming engine and ``pyarrow.dataset``, in the same process run. The results
are checked equal before any timing counts.
"""

from __future__ import annotations

import datetime as dt
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

import actors
from actors.demo import lineitem
from streamnet import Context, Network

CUTOFF = dt.date(1995, 3, 15)
COLUMNS = ["l_orderkey", "l_extendedprice", "l_discount"]
PREDICATE = (pl.col("l_shipdate") < CUTOFF) & (pl.col("l_discount") >= 0.05)
ARROW_PREDICATE = (ds.field("l_shipdate") < pa.scalar(CUTOFF, pa.date32())) & (
    ds.field("l_discount") >= 0.05
)


def run_streamnet_pushdown(path: Path) -> pa.Table:
    with Context() as ctx:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch)
        Network(
            ctx, [actors.read_parquet(ctx, ch, path, columns=COLUMNS, filters=PREDICATE), sink]
        ).run()
    table: pa.Table = sink.result()
    return table


def run_streamnet_actors(path: Path) -> pa.Table:
    with Context() as ctx:
        scanned, kept, out = (ctx.create_channel() for _ in range(3))
        sink = actors.collect(ctx, out)
        Network(
            ctx,
            [
                actors.read_parquet(ctx, scanned, path, columns=[*COLUMNS, "l_shipdate"]),
                actors.filter(ctx, scanned, kept, PREDICATE),
                actors.select(ctx, kept, out, *COLUMNS),
                sink,
            ],
        ).run()
    table: pa.Table = sink.result()
    return table


def run_polars(path: Path) -> pa.Table:
    return (
        pl.scan_parquet(path)
        .filter(PREDICATE)
        .select(COLUMNS)
        .collect(engine="streaming")
        .to_arrow()
    )


def run_pyarrow(path: Path) -> pa.Table:
    return ds.dataset(path, format="parquet").to_table(columns=COLUMNS, filter=ARROW_PREDICATE)


ENGINES: dict[str, Callable[[Path], pa.Table]] = {
    "streamnet (pushdown)": run_streamnet_pushdown,
    "streamnet (filter+select actors)": run_streamnet_actors,
    "polars streaming": run_polars,
    "pyarrow.dataset": run_pyarrow,
}


def _fingerprint(table: pa.Table) -> tuple[int, float, int]:
    return (
        table.num_rows,
        round(pc.sum(table["l_extendedprice"]).as_py(), 2),
        pc.sum(table["l_orderkey"]).as_py(),
    )


@dataclass
class ScanResult:
    engine: str
    seconds: float
    rows_out: int


def run(
    *, rows: int = 20_000_000, repeats: int = 3, data_dir: str = ".cache/bench"
) -> tuple[int, list[ScanResult]]:
    path = lineitem(rows, data_dir)
    reference = None
    results = []
    for name, fn in ENGINES.items():
        out = fn(path)  # warm-up, and the correctness check
        fingerprint = _fingerprint(out)
        if reference is None:
            reference = fingerprint
        elif fingerprint != reference:
            raise AssertionError(f"{name} gave {fingerprint}, expected {reference}")
        del out
        times = []
        for _ in range(repeats):
            gc.collect()
            start = time.perf_counter()
            out = fn(path)
            times.append(time.perf_counter() - start)
            del out
        results.append(ScanResult(name, min(times), reference[0]))
    return rows, results


def report(rows: int, results: list[ScanResult]) -> str:
    peers = [r for r in results if not r.engine.startswith("streamnet")]
    best = min(r.seconds for r in peers)
    lines = [
        f"{rows:,} rows; {results[0].rows_out:,} rows out; target: streamnet within 1.25x of the faster peer",
        "",
        "| engine | seconds | M rows/s scanned | ratio to best peer |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.engine} | {r.seconds:.2f} | {rows / r.seconds / 1e6:.1f} | {r.seconds / best:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
