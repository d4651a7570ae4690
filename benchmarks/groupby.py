"""Streaming group-by-sum: streamnet beside Polars streaming, DuckDB and a pyarrow loop.

The data is generated once in memory as an Arrow table (int64 key, float64
value) and every engine streams over the same table. Results are checked equal
(group count, and the sum of the sums) before timing counts.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

import actors
from streamnet import Context, Network

CHUNK_ROWS = 1_000_000


def generate(rows: int, keys: int, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    batches = []
    for start in range(0, rows, 10_000_000):
        n = min(10_000_000, rows - start)
        batches.append(pa.record_batch({"k": rng.integers(0, keys, n), "v": rng.random(n)}))
    return pa.Table.from_batches(batches)


def run_streamnet(table: pa.Table) -> pl.DataFrame:
    with Context() as ctx:
        raw, grouped = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, grouped, into="polars")
        Network(
            ctx,
            [
                actors.from_arrow(ctx, raw, table, chunk_rows=CHUNK_ROWS),
                actors.groupby_agg(ctx, raw, grouped, "k", [("v", "sum", "v")]),
                sink,
            ],
        ).run()
    result: pl.DataFrame = sink.result()
    return result


def run_polars(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.lazy().group_by("k").agg(pl.col("v").sum()).collect(engine="streaming")


def run_duckdb(table: pa.Table) -> pl.DataFrame:
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.register("t", table)
    out = con.sql("SELECT k, sum(v) AS v FROM t GROUP BY k").to_arrow_table()
    con.close()
    frame = pl.from_arrow(out)
    assert isinstance(frame, pl.DataFrame)
    return frame


def run_pyarrow_loop(table: pa.Table) -> pl.DataFrame:
    partials = [
        pa.Table.from_batches([batch]).group_by("k").aggregate([("v", "sum")])
        for batch in table.to_batches(max_chunksize=CHUNK_ROWS)
    ]
    merged = pa.concat_tables(partials).group_by("k").aggregate([("v_sum", "sum")])
    frame = pl.from_arrow(merged.rename_columns(["k", "v"]))
    assert isinstance(frame, pl.DataFrame)
    return frame


ENGINES: dict[str, Callable[[pa.Table], pl.DataFrame]] = {
    "streamnet": run_streamnet,
    "polars streaming": run_polars,
    "duckdb": run_duckdb,
    "pyarrow loop": run_pyarrow_loop,
}


@dataclass
class Result:
    keys: int
    engine: str
    seconds: float


def _check(frame: pl.DataFrame, reference: tuple[int, float] | None) -> tuple[int, float]:
    got = (frame.height, float(frame["v"].sum()))
    if reference is not None and (
        got[0] != reference[0] or abs(got[1] - reference[1]) > 1e-6 * abs(reference[1])
    ):
        raise AssertionError(f"result {got} differs from {reference}")
    return got


def run(
    *, rows: int = 200_000_000, key_counts: tuple[int, ...] = (1_000, 1_000_000), repeats: int = 2
) -> tuple[int, list[Result]]:
    results = []
    for keys in key_counts:
        table = generate(rows, keys)
        reference = None
        for name, fn in ENGINES.items():
            reference = _check(fn(table), reference)
            times = []
            for _ in range(repeats):
                gc.collect()
                start = time.perf_counter()
                fn(table)
                times.append(time.perf_counter() - start)
            results.append(Result(keys, name, min(times)))
        del table
        gc.collect()
    return rows, results


def report(rows: int, results: list[Result]) -> str:
    lines = [
        f"{rows:,} rows (int64 key, float64 value) in memory; target: streamnet within 1.5x of the fastest",
        "",
        "| distinct keys | engine | seconds | M rows/s | ratio to fastest |",
        "|---:|---|---:|---:|---:|",
    ]
    for keys in sorted({r.keys for r in results}):
        group = [r for r in results if r.keys == keys]
        best = min(r.seconds for r in group)
        for r in group:
            lines.append(
                f"| {keys:,} | {r.engine} | {r.seconds:.2f} | {rows / r.seconds / 1e6:.0f} | {r.seconds / best:.2f}x |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
