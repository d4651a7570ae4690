"""W1: streaming group-by-sum: streamnet beside Polars, DuckDB, pyarrow, pandas and Dask.

The data is generated once in memory as an Arrow table (int64 key, float64
value) and every engine streams over the same table in chunks of 1M rows where
it takes chunks: a pyarrow loop and chunked pandas aggregate each chunk and
combine the partials; Dask (threaded scheduler, 2 workers) gets one partition
per chunk. Results are checked equal (group count, and the sum of the sums)
before timing counts. streamnet's own kernels, run in a plain loop over the
same chunks, give its overhead (see :mod:`benchmarks._kernels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

import actors
from benchmarks._kernels import groupby_loop, overhead
from benchmarks._measure import best_time
from streamnet import Context, Network, TableChunk

CHUNK_ROWS = 1_000_000
LOOP = "streamnet kernels, plain loop"


def generate(rows: int, keys: int, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    batches = []
    for start in range(0, rows, 10_000_000):
        n = min(10_000_000, rows - start)
        batches.append(pa.record_batch({"k": rng.integers(0, keys, n), "v": rng.random(n)}))
    return pa.Table.from_batches(batches)


def run_streamnet(table: pa.Table) -> pl.DataFrame:
    with Context() as ctx:
        raw, grouped = ctx.create_channel(TableChunk), ctx.create_channel(TableChunk)
        sink = actors.collect(ctx, grouped, into="polars")
        Network(
            ctx,
            [
                actors.from_arrow(ctx, raw, table, chunk_rows=CHUNK_ROWS),
                actors.groupby_agg(ctx, raw, grouped, "k", [("v", "sum", "v")]),
                sink,
            ],
        ).run(progress=False)
    result: pl.DataFrame = sink.result()
    return result


def run_kernel_loop(table: pa.Table) -> pl.DataFrame:
    """``from_arrow``'s zero-copy slices and ``groupby_agg``'s kernels, in a plain loop."""

    def chunks() -> list[pl.DataFrame]:
        frames = []
        for offset in range(0, table.num_rows, CHUNK_ROWS):
            frame = pl.from_arrow(table.slice(offset, CHUNK_ROWS))
            assert isinstance(frame, pl.DataFrame)
            frames.append(frame)
        return frames

    return groupby_loop(iter(chunks()), ["k"], [("v", "sum", "v")])


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


def run_pandas(table: pa.Table) -> pl.DataFrame:
    """Chunked pandas: each 1M-row batch to pandas, summed per key; the partial sums summed."""
    partials = [
        batch.to_pandas().groupby("k", sort=False)["v"].sum()
        for batch in table.to_batches(max_chunksize=CHUNK_ROWS)
    ]
    merged = pd.concat(partials).groupby(level=0, sort=False).sum()
    return pl.DataFrame({"k": merged.index.to_numpy(), "v": merged.to_numpy()})


class _Batches:
    """The table's 1M-row batches, made into pandas by index (a Dask partition each).

    Its Dask token is its identity: tokenizing the batches themselves would hash
    all the data before the graph could run.
    """

    def __init__(self, table: pa.Table) -> None:
        self.batches = table.to_batches(max_chunksize=CHUNK_ROWS)

    def __call__(self, index: int) -> pd.DataFrame:
        frame: pd.DataFrame = self.batches[index].to_pandas()
        return frame

    def __dask_tokenize__(self) -> tuple[str, int]:
        return ("w1-batches", id(self))


def run_dask(table: pa.Table) -> pl.DataFrame:
    """Dask: one partition per 1M-row batch (made into pandas in the task), threaded scheduler."""
    import dask.dataframe as dd

    batches = _Batches(table)
    meta = pd.DataFrame({"k": pd.Series(dtype="int64"), "v": pd.Series(dtype="float64")})
    frame = dd.from_map(  # type: ignore[no-untyped-call]
        batches, range(len(batches.batches)), meta=meta, enforce_metadata=False
    )
    sums = frame.groupby("k", sort=False)["v"].sum().compute(scheduler="threads", num_workers=2)
    return pl.DataFrame({"k": sums.index.to_numpy(), "v": sums.to_numpy()})


ENGINES: dict[str, Callable[[pa.Table], pl.DataFrame]] = {
    "streamnet": run_streamnet,
    "polars streaming": run_polars,
    "duckdb": run_duckdb,
    "pyarrow loop": run_pyarrow_loop,
    "pandas (chunked)": run_pandas,
    "dask (threads, 2 workers)": run_dask,
    LOOP: run_kernel_loop,
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
            results.append(Result(keys, name, best_time(partial(fn, table), repeats)))
        del table
    return rows, results


def report(rows: int, results: list[Result]) -> str:
    lines = [
        f"{rows:,} rows (int64 key, float64 value) in memory; target: streamnet within 1.5x of the fastest",
        "",
        "| distinct keys | engine | seconds | M rows/s | ratio to fastest |",
        "|---:|---|---:|---:|---:|",
    ]
    overheads = []
    for keys in sorted({r.keys for r in results}):
        group = [r for r in results if r.keys == keys]
        best = min(r.seconds for r in group)
        for r in group:
            lines.append(
                f"| {keys:,} | {r.engine} | {r.seconds:.2f} | {rows / r.seconds / 1e6:.0f} | "
                f"{r.seconds / best:.2f}x |"
            )
        by_engine = {r.engine: r.seconds for r in group}
        if "streamnet" in by_engine and LOOP in by_engine:
            overheads.append(f"{keys:,} keys: {overhead(by_engine['streamnet'], by_engine[LOOP])}")
    if overheads:
        lines += ["", "streamnet over its kernels in a plain loop: " + "; ".join(overheads)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
