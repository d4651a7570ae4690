"""Join of a 10M-row table with a 100M-row stream: streamnet beside Polars and DuckDB.

The stream (int64 key over twice the table's key range, float64 value) and the
table (unique int64 keys, float64 payload) are generated in memory. Every engine
computes the inner join and reduces it to (rows, sum of v * w), so the join,
not the collection of ~50M result rows, is what is timed. Results are checked
equal before timing counts.
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


def generate(table_rows: int, stream_rows: int, seed: int = 11) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    table = pa.table({"k": rng.permutation(table_rows), "w": rng.random(table_rows)})
    batches = []
    for start in range(0, stream_rows, 10_000_000):
        n = min(10_000_000, stream_rows - start)
        batches.append(
            pa.record_batch({"k": rng.integers(0, 2 * table_rows, n), "v": rng.random(n)})
        )
    return table, pa.Table.from_batches(batches)


def _reduce(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.len().alias("rows"), (pl.col("v") * pl.col("w")).sum().alias("vw"))


def run_streamnet(table: pa.Table, stream: pa.Table) -> tuple[int, float]:
    with Context() as ctx:
        left, right, joined, reduced = (ctx.create_channel() for _ in range(4))
        sink = actors.collect(ctx, reduced, into="polars")
        Network(
            ctx,
            [
                actors.from_arrow(ctx, left, stream, chunk_rows=CHUNK_ROWS),
                actors.from_arrow(ctx, right, table, chunk_rows=CHUNK_ROWS),
                actors.join(ctx, left, right, joined, on="k"),
                actors.map_chunks(ctx, joined, reduced, _reduce, kind="polars"),
                sink,
            ],
        ).run()
    out: pl.DataFrame = sink.result()
    return int(out["rows"].sum()), float(out["vw"].sum())


def run_polars(table: pa.Table, stream: pa.Table) -> tuple[int, float]:
    left, right = pl.DataFrame(stream), pl.DataFrame(table)
    out = _reduce_lazy(left.lazy().join(right.lazy(), on="k")).collect(engine="streaming")
    return int(out["rows"][0]), float(out["vw"][0])


def _reduce_lazy(query: pl.LazyFrame) -> pl.LazyFrame:
    return query.select(pl.len().alias("rows"), (pl.col("v") * pl.col("w")).sum().alias("vw"))


def run_duckdb(table: pa.Table, stream: pa.Table) -> tuple[int, float]:
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.register("l", stream)
    con.register("r", table)
    rows, vw = con.execute("SELECT count(*), sum(l.v * r.w) FROM l JOIN r USING (k)").fetchone()  # type: ignore[misc]
    con.close()
    return int(rows), float(vw)


ENGINES: dict[str, Callable[[pa.Table, pa.Table], tuple[int, float]]] = {
    "streamnet": run_streamnet,
    "polars streaming": run_polars,
    "duckdb": run_duckdb,
}


@dataclass
class Result:
    engine: str
    seconds: float


def run(
    *, table_rows: int = 10_000_000, stream_rows: int = 100_000_000, repeats: int = 2
) -> tuple[int, int, int, list[Result]]:
    table, stream = generate(table_rows, stream_rows)
    reference = None
    results = []
    for name, fn in ENGINES.items():
        got = fn(table, stream)
        if reference is None:
            reference = got
        elif got[0] != reference[0] or abs(got[1] - reference[1]) > 1e-6 * abs(reference[1]):
            raise AssertionError(f"{name} gave {got}, expected {reference}")
        times = []
        for _ in range(repeats):
            gc.collect()
            start = time.perf_counter()
            fn(table, stream)
            times.append(time.perf_counter() - start)
        results.append(Result(name, min(times)))
    assert reference is not None
    return table_rows, stream_rows, reference[0], results


def report(table_rows: int, stream_rows: int, matches: int, results: list[Result]) -> str:
    best = min(r.seconds for r in results)
    lines = [
        f"{table_rows:,}-row table joined with a {stream_rows:,}-row stream, {matches:,} rows out; "
        "target: streamnet within 2x of the fastest",
        "",
        "| engine | seconds | M stream rows/s | ratio to fastest |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.engine} | {r.seconds:.2f} | {stream_rows / r.seconds / 1e6:.0f} | {r.seconds / best:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
