"""W4: TPC-H Q1 over a generated lineitem Parquet file: streamnet beside Polars and DuckDB.

streamnet runs the demo's pipeline (scan -> date filter -> derived columns ->
groupby_agg -> sort); Polars and DuckDB run the same query on the same file.
Results are checked equal before timing counts. Scale factor 1 is 6M rows.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
from polars.testing import assert_frame_equal

from streamnet import Context
from streamnet._demo import build_network, lineitem, polars_reference

ROWS_PER_SCALE_FACTOR = 6_000_000

DUCKDB_Q1 = """
SELECT l_returnflag, l_linestatus,
       sum(l_quantity) AS sum_qty,
       sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       avg(l_quantity) AS avg_qty,
       avg(l_extendedprice) AS avg_price,
       avg(l_discount) AS avg_disc,
       count(*) AS count_order
FROM read_parquet('{path}')
WHERE l_shipdate <= DATE '1998-09-02'
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus
"""


def run_streamnet(path: Path) -> pl.DataFrame:
    with Context() as ctx:
        network, sink = build_network(ctx, path)
        network.run(progress=False)
    result: pl.DataFrame = sink.result()
    return result


def run_duckdb(path: Path) -> pl.DataFrame:
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    frame = pl.DataFrame(con.sql(DUCKDB_Q1.format(path=path)).to_arrow_table())
    con.close()
    return frame


ENGINES: dict[str, Callable[[Path], pl.DataFrame]] = {
    "streamnet": run_streamnet,
    "polars streaming": polars_reference,
    "duckdb": run_duckdb,
}


@dataclass
class Q1Result:
    engine: str
    seconds: float


def run(
    *, scale_factor: float = 1.0, repeats: int = 3, data_dir: str = ".cache/bench"
) -> tuple[int, list[Q1Result]]:
    rows = int(ROWS_PER_SCALE_FACTOR * scale_factor)
    path = lineitem(rows, data_dir)
    reference = polars_reference(path)
    results = []
    for name, fn in ENGINES.items():
        got = fn(path)
        assert_frame_equal(
            got, reference, check_dtypes=False, check_exact=False, rel_tol=1e-9
        )  # every engine, the same answer
        times = []
        for _ in range(repeats):
            gc.collect()
            start = time.perf_counter()
            fn(path)
            times.append(time.perf_counter() - start)
        results.append(Q1Result(name, min(times)))
    return rows, results


def report(rows: int, results: list[Q1Result]) -> str:
    best = min(r.seconds for r in results)
    lines = [
        f"TPC-H Q1 over {rows:,} lineitem rows from Parquet; target: streamnet within 1.5x of the fastest",
        "",
        "| engine | seconds | M rows/s | ratio to fastest |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.engine} | {r.seconds:.2f} | {rows / r.seconds / 1e6:.0f} | {r.seconds / best:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
