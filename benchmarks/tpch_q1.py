"""W4: TPC-H Q1 over a generated lineitem Parquet file: streamnet beside Polars, DuckDB, pandas and Dask.

streamnet runs the demo's pipeline (scan -> date filter -> derived columns ->
groupby_agg -> sort); Polars and DuckDB run the same query on the same file;
chunked pandas reads it row group by row group and combines per-chunk partial
aggregates; Dask reads one partition per row group and runs on its threaded
scheduler with 2 workers. Results are checked equal before timing counts.
Scale factor 1 is 6M rows, 10 is 60M; the file is read in row groups of
250,000 rows, and no engine holds it whole. streamnet's kernels run in a plain
loop over the same row groups give its overhead (see :mod:`benchmarks._kernels`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow.parquet as pq
from polars.testing import assert_frame_equal

from actors.demo import (
    AGGREGATES,
    CUTOFF,
    KEYS,
    ROW_GROUP_ROWS,
    build_network,
    lineitem,
    polars_reference,
)
from benchmarks import tpch_sql
from benchmarks._kernels import groupby_loop, overhead
from benchmarks._measure import best_time, mib, peak_memory
from streamnet import Context

ROWS_PER_SCALE_FACTOR = 6_000_000
COLUMNS = [
    "l_quantity", "l_extendedprice", "l_discount", "l_tax",
    "l_returnflag", "l_linestatus", "l_shipdate",
]  # fmt: skip
LOOP = "streamnet kernels, plain loop"


def run_streamnet(path: Path) -> pl.DataFrame:
    with Context() as ctx:
        network, sink = build_network(ctx, path)
        network.run(progress=False)
    result: pl.DataFrame = sink.result()
    return result


def run_kernel_loop(path: Path) -> pl.DataFrame:
    """The demo pipeline's per-chunk Polars calls, row group after row group, in a plain loop.

    ``read_parquet`` decodes one row group with a row-group-aligned slice of
    ``scan_parquet``; ``filter`` and ``with_columns`` apply their expressions;
    ``groupby_agg`` aggregates partials and finishes them; ``sort`` sorts.
    """
    metadata = pq.ParquetFile(path).metadata

    def chunks() -> Iterator[pl.DataFrame]:
        offset = 0
        for index in range(metadata.num_row_groups):
            rows = metadata.row_group(index).num_rows
            frame = pl.scan_parquet(path).slice(offset, rows).select(COLUMNS).collect()
            offset += rows
            frame = frame.filter(pl.col("l_shipdate") <= CUTOFF)
            yield frame.with_columns(
                disc_price=pl.col("l_extendedprice") * (1 - pl.col("l_discount")),
                charge=pl.col("l_extendedprice")
                * (1 - pl.col("l_discount"))
                * (1 + pl.col("l_tax")),
            )

    return groupby_loop(chunks(), KEYS, AGGREGATES).sort(KEYS)


def run_duckdb(path: Path) -> pl.DataFrame:
    con = tpch_sql.connect({"lineitem": path})
    frame = pl.DataFrame(con.sql(tpch_sql.SQL["q1"]).to_arrow_table())
    con.close()
    return frame


def _finish_pandas(sums: pd.DataFrame) -> pl.DataFrame:
    """Q1's columns from per-group sums and counts (means are sums over counts)."""
    out = pd.DataFrame(
        {
            "sum_qty": sums["l_quantity"],
            "sum_base_price": sums["l_extendedprice"],
            "sum_disc_price": sums["disc_price"],
            "sum_charge": sums["charge"],
            "avg_qty": sums["l_quantity"] / sums["count_order"],
            "avg_price": sums["l_extendedprice"] / sums["count_order"],
            "avg_disc": sums["l_discount"] / sums["count_order"],
            "count_order": sums["count_order"],
        }
    )
    return pl.from_pandas(out.sort_index().reset_index())


_SUMMED = ["l_quantity", "l_extendedprice", "disc_price", "charge", "l_discount"]


def _derive(frame: pd.DataFrame) -> pd.DataFrame:
    disc_price = frame["l_extendedprice"] * (1 - frame["l_discount"])
    return frame.assign(
        disc_price=disc_price, charge=disc_price * (1 + frame["l_tax"]), count_order=1
    )


def run_pandas(path: Path) -> pl.DataFrame:
    """Chunked pandas: per row group, filter, derive, sum per group; then sum the partial sums."""
    partials = []
    cutoff = pd.Timestamp(CUTOFF)
    for batch in pq.ParquetFile(path).iter_batches(batch_size=ROW_GROUP_ROWS, columns=COLUMNS):
        frame = batch.to_pandas(date_as_object=False)
        frame = _derive(frame[frame["l_shipdate"] <= cutoff])
        partials.append(frame.groupby(KEYS)[[*_SUMMED, "count_order"]].sum())
    return _finish_pandas(pd.concat(partials).groupby(level=KEYS).sum())


def run_dask(path: Path) -> pl.DataFrame:
    """Dask: a partition per row group, the threaded scheduler with 2 workers."""
    import dask.dataframe as dd

    frame = dd.read_parquet(path, columns=COLUMNS, split_row_groups=True)
    frame = frame[frame["l_shipdate"] <= CUTOFF]
    frame = frame.map_partitions(_derive)
    with warnings.catch_warnings():
        # Dask's Parquet reader calls reset_index(inplace=True), which pandas 3.1 deprecates.
        warnings.filterwarnings("ignore", message="The inplace keyword in DataFrame.reset_index")
        sums = (
            frame.groupby(KEYS)[[*_SUMMED, "count_order"]]
            .sum()
            .compute(scheduler="threads", num_workers=2)
        )
    return _finish_pandas(sums)


ENGINES: dict[str, Callable[[Path], pl.DataFrame]] = {
    "streamnet": run_streamnet,
    "polars streaming": polars_reference,
    "duckdb": run_duckdb,
    "pandas (chunked)": run_pandas,
    "dask (threads, 2 workers)": run_dask,
    LOOP: run_kernel_loop,
}


@dataclass
class Q1Result:
    scale_factor: float
    rows: int
    engine: str
    seconds: float
    peak_bytes: int | None = None


def run(
    *,
    scale_factors: Sequence[float] = (1.0,),
    repeats: int = 3,
    data_dir: str = ".cache/bench",
    memory: bool = True,
) -> list[Q1Result]:
    """Q1 at each scale factor on every engine: checked against Polars, then timed.

    With ``memory``, each engine also runs once more in a fresh process to
    measure its peak memory (:func:`benchmarks._measure.peak_memory`).
    """
    results = []
    for scale_factor in scale_factors:
        rows = int(ROWS_PER_SCALE_FACTOR * scale_factor)
        path = lineitem(rows, data_dir)
        reference = polars_reference(path)
        for name, fn in ENGINES.items():
            got = fn(path)
            try:  # every engine, the same answer
                assert_frame_equal(
                    got, reference, check_dtypes=False, check_exact=False, rel_tol=1e-9
                )
            except AssertionError as exc:
                raise AssertionError(f"{name}'s Q1 differs from Polars': {exc}") from exc
            seconds = best_time(partial(fn, path), repeats)
            peak = peak_memory(fn, path) if memory else None
            results.append(Q1Result(scale_factor, rows, name, seconds, peak))
    return results


def report(results: list[Q1Result]) -> str:
    lines = [
        "TPC-H Q1 over lineitem from Parquet; target: streamnet within 1.5x of the fastest",
        "",
        "| scale factor | rows | engine | seconds | M rows/s | peak memory MiB | ratio to fastest |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    overheads = []
    for scale_factor in dict.fromkeys(r.scale_factor for r in results):
        group = [r for r in results if r.scale_factor == scale_factor]
        best = min(r.seconds for r in group)
        for r in group:
            lines.append(
                f"| {scale_factor:g} | {r.rows:,} | {r.engine} | {r.seconds:.2f} | "
                f"{r.rows / r.seconds / 1e6:.0f} | {mib(r.peak_bytes)} | {r.seconds / best:.2f}x |"
            )
        by_engine = {r.engine: r.seconds for r in group}
        if "streamnet" in by_engine and LOOP in by_engine:
            overheads.append(
                f"SF {scale_factor:g}: {overhead(by_engine['streamnet'], by_engine[LOOP])}"
            )
    if overheads:
        lines += ["", "streamnet over its kernels in a plain loop: " + "; ".join(overheads)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
