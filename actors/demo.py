"""The demo ETL job: a TPC-H Q1-shaped pipeline over generated data.

Run it with ``streamnet demo`` (or ``make demo``), on several ranks with
``streamnet run -n 2 -m streamnet demo``, or as ``python -m actors.demo``. It
generates a ``lineitem`` table once (cached as Parquet), runs scan -> filter ->
derive -> group-by -> sort, checks the answer against Polars and prints what each
actor did.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console

import actors
from streamnet import ActorNode, ChunkWriter, Context, Network, TableChunk, backend_for

__all__ = ["build_network", "lineitem", "main", "polars_reference", "run_demo"]

DEFAULT_ROWS = 3_000_000
ROW_GROUP_ROWS = 250_000
CUTOFF = dt.date(1998, 9, 2)

KEYS = ["l_returnflag", "l_linestatus"]
AGGREGATES = [
    ("l_quantity", "sum", "sum_qty"),
    ("l_extendedprice", "sum", "sum_base_price"),
    ("disc_price", "sum", "sum_disc_price"),
    ("charge", "sum", "sum_charge"),
    ("l_quantity", "mean", "avg_qty"),
    ("l_extendedprice", "mean", "avg_price"),
    ("l_discount", "mean", "avg_disc"),
    (None, "len", "count_order"),
]


def lineitem(rows: int, data_dir: str | os.PathLike[str] | None = None, seed: int = 42) -> Path:
    """A TPC-H-like ``lineitem`` Parquet file of ``rows`` rows, generated once and cached."""
    folder = Path(data_dir) if data_dir is not None else Path(".cache") / "streamnet-demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"lineitem-{rows}-{seed}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    start = np.datetime64("1992-01-02")
    partial = path.with_suffix(".tmp")
    backend = backend_for()
    writer: ChunkWriter | None = None
    try:
        for offset in range(0, rows, ROW_GROUP_ROWS):
            n = min(ROW_GROUP_ROWS, rows - offset)
            ship = start + rng.integers(0, 2526, n).astype("timedelta64[D]")
            returnflag = np.where(
                ship > np.datetime64("1995-06-17"), "N", rng.choice(np.array(["A", "R"]), n)
            )
            quantity = rng.integers(1, 51, n).astype(np.float64)
            frame = pl.DataFrame(
                {
                    "l_orderkey": np.arange(offset, offset + n, dtype=np.int64) // 4 + 1,
                    "l_partkey": rng.integers(1, 200_001, n),
                    "l_quantity": quantity,
                    "l_extendedprice": np.round(quantity * rng.uniform(900.0, 2100.0, n), 2),
                    "l_discount": rng.integers(0, 11, n) / 100.0,
                    "l_tax": rng.integers(0, 9, n) / 100.0,
                    "l_returnflag": returnflag,
                    "l_linestatus": np.where(ship > np.datetime64("1995-06-17"), "O", "F"),
                    "l_shipdate": pl.Series(ship, dtype=pl.Date),
                    "l_shipmode": rng.choice(
                        np.array(["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"]), n
                    ),
                }
            )
            chunk = TableChunk.from_polars(frame, backend=backend)
            if writer is None:
                writer = backend.parquet_writer(partial, chunk.schema, compression="zstd")
            writer.write(chunk, row_group_rows=ROW_GROUP_ROWS)
    finally:
        if writer is not None:
            writer.close()
        backend.close()
    partial.rename(path)
    return path


def polars_reference(path: Path) -> pl.DataFrame:
    """The same query in Polars' streaming engine, to check the pipeline's answer."""
    return (
        pl.scan_parquet(path)
        .filter(pl.col("l_shipdate") <= CUTOFF)
        .group_by(KEYS)
        .agg(
            pl.col("l_quantity").sum().alias("sum_qty"),
            pl.col("l_extendedprice").sum().alias("sum_base_price"),
            (pl.col("l_extendedprice") * (1 - pl.col("l_discount"))).sum().alias("sum_disc_price"),
            (pl.col("l_extendedprice") * (1 - pl.col("l_discount")) * (1 + pl.col("l_tax")))
            .sum()
            .alias("sum_charge"),
            pl.col("l_quantity").mean().alias("avg_qty"),
            pl.col("l_extendedprice").mean().alias("avg_price"),
            pl.col("l_discount").mean().alias("avg_disc"),
            pl.len().alias("count_order"),
        )
        .sort(KEYS)
        .collect(engine="streaming")
    )


def build_network(ctx: Context, path: Path) -> tuple[Network, ActorNode]:
    """scan Parquet -> filter on a date -> derive columns -> group and aggregate -> sort.

    On several ranks each scans its share of the row groups, and the sorted
    result is gathered so that every rank's sink holds all of it, in order.
    """
    scanned, kept, derived, grouped, ordered, gathered = (
        ctx.create_channel(TableChunk, name=name)
        for name in ("scanned", "kept", "derived", "grouped", "sorted", "gathered")
    )
    columns = [
        "l_quantity", "l_extendedprice", "l_discount", "l_tax",
        "l_returnflag", "l_linestatus", "l_shipdate",
    ]  # fmt: skip
    gather = [actors.allgather(ctx, ordered, gathered)] if ctx.nranks > 1 else []
    sink = actors.collect(ctx, gathered if gather else ordered, into="polars")
    network = Network(
        ctx,
        [
            actors.read_parquet(ctx, scanned, path, columns=columns),
            actors.filter(ctx, scanned, kept, pl.col("l_shipdate") <= CUTOFF),
            actors.with_columns(
                ctx,
                kept,
                derived,
                disc_price=pl.col("l_extendedprice") * (1 - pl.col("l_discount")),
                charge=pl.col("l_extendedprice")
                * (1 - pl.col("l_discount"))
                * (1 + pl.col("l_tax")),
            ),
            actors.groupby_agg(ctx, derived, grouped, KEYS, AGGREGATES),
            actors.sort(ctx, grouped, ordered, KEYS),
            *gather,
            sink,
        ],
        name="demo",
    )
    return network, sink


def run_demo(*, rows: int | None = None, data_dir: str | None = None) -> pl.DataFrame:
    """Generate (or reuse) the data, run the pipeline, print the result and statistics.

    Under ``streamnet run -n N`` every rank runs it: rank 0 generates the data
    while the others wait, the ranks share the scan, and rank 0 prints.
    """
    rows = rows or DEFAULT_ROWS
    started = time.perf_counter()
    with Context() as ctx:
        path = lineitem(rows, data_dir) if ctx.rank == 0 else None
        if ctx.nranks > 1:  # the others wait for rank 0's data, and learn where it is
            path = asyncio.run(ctx.communicator.allgather(("demo", "data"), path))[0]
        assert path is not None
        prepared = time.perf_counter() - started
        network, sink = build_network(ctx, path)
        start = time.perf_counter()
        network.run()
        elapsed = time.perf_counter() - start
    result: pl.DataFrame = sink.result()
    if ctx.rank != 0:
        return result
    ranks = f" on {ctx.nranks} ranks" if ctx.nranks > 1 else ""
    reference = polars_reference(path)
    same = result.equals(reference) or _close(result, reference)
    with pl.Config(tbl_cols=-1, tbl_width_chars=200, float_precision=2, thousands_separator=","):
        print(
            f"TPC-H Q1 over {rows:,} generated lineitem rows in `{path}` (data ready in {prepared:.1f} s)"
        )
        print(result)
    print(f"\npipeline{ranks}: {elapsed:.2f} s; same answer as Polars: {'yes' if same else 'NO'}\n")
    # Piped output has no width of its own: do not squeeze the table into 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(network.statistics())
    if not same:
        raise SystemExit("the demo's result differs from Polars'")
    return result


def _close(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    from polars.testing import assert_frame_equal

    try:
        assert_frame_equal(a, b, check_exact=False, rel_tol=1e-9)
    except AssertionError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m actors.demo [--rows N] [--data-dir DIR]``: run the demo."""
    parser = argparse.ArgumentParser(prog="python -m actors.demo", description=__doc__)
    parser.add_argument("--rows", type=int, default=None, help="rows of generated data")
    parser.add_argument("--data-dir", default=None, help="where generated data is cached")
    args = parser.parse_args(argv)
    run_demo(rows=args.rows, data_dir=args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
