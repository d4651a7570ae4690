"""W8: TPC-H Q1, Q3, Q6, Q9 and Q18 written the way a user would, beside Polars and DuckDB.

Each streamnet query is one pipeline as the README teaches: ``read_parquet``
of whole tables (no ``columns=``, no ``filters=``), the joins in the order the
SQL's ``FROM`` clause lists the tables (each table joined once it connects to
those before it), the ``WHERE`` clause as one ``filter`` after the joins (an
``IN (subquery)`` as a semi join there), then ``with_columns`` / ``select``,
``groupby_agg``, ``sort`` or ``top_k``. Nothing is reordered or cut by hand:
what the network optimises (column pruning, filters moved into the scans,
fusion) it finds itself. Polars (streaming engine) and DuckDB (2 threads) run
their own forms of the queries (:mod:`benchmarks.tpch_queries`). Every answer is
checked equal to DuckDB's before its timing counts; the engines then run in
turn, ``repeats`` rounds, and each keeps its best wall time and the process CPU
time of that run.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

import actors
from actors import demo
from benchmarks import tpch_queries, tpch_sql
from benchmarks.tpch_data import TABLES, tables
from streamnet import ActorNode, Context, Network

Tables = dict[str, Path]

QUERIES = ("q1", "q3", "q6", "q9", "q18")
PEERS = ("polars streaming", "duckdb")

Q1_CUTOFF = demo.CUTOFF  # DATE '1998-12-01' - INTERVAL '90' DAY
Q3_DATE = tpch_queries.Q3_DATE
Q6_START, Q6_END = tpch_queries.Q6_START, tpch_queries.Q6_END
Q18_QUANTITY = tpch_queries.Q18_QUANTITY

SQL = {"q1": tpch_sql.SQL["q1"], **tpch_queries.DUCKDB_SQL}


def run_duckdb(query: str, t: Tables) -> pl.DataFrame:
    con = tpch_sql.connect(t)
    frame = pl.DataFrame(con.sql(SQL[query]).to_arrow_table())
    con.close()
    return frame


def polars_q1(t: Tables) -> pl.DataFrame:
    return (
        pl.scan_parquet(t["lineitem"])
        .filter(pl.col("l_shipdate") <= Q1_CUTOFF)
        .group_by("l_returnflag", "l_linestatus")
        .agg(
            pl.col("l_quantity").sum().alias("sum_qty"),
            pl.col("l_extendedprice").sum().alias("sum_base_price"),
            _disc_price().sum().alias("sum_disc_price"),
            (_disc_price() * (1 + pl.col("l_tax"))).sum().alias("sum_charge"),
            pl.col("l_quantity").mean().alias("avg_qty"),
            pl.col("l_extendedprice").mean().alias("avg_price"),
            pl.col("l_discount").mean().alias("avg_disc"),
            pl.len().alias("count_order"),
        )
        .sort("l_returnflag", "l_linestatus")
        .collect(engine="streaming")
    )


# ----------------------------------------------------------------------------- streamnet


def _disc_price() -> pl.Expr:
    return pl.col("l_extendedprice") * (1 - pl.col("l_discount"))


def _run(ctx: Context, nodes: list[ActorNode], out: object) -> pl.DataFrame:
    """Run ``nodes`` with a sink on the channel ``out``; what it gathered."""
    sink = actors.collect(ctx, out, into="polars")  # type: ignore[arg-type]
    Network(ctx, [*nodes, sink]).run(progress=False)
    result: pl.DataFrame = sink.result()
    return result


def streamnet_q1(t: Tables) -> pl.DataFrame:
    with Context() as ctx:
        lineitem, kept, priced, grouped, out = (ctx.create_channel() for _ in range(5))
        nodes: list[ActorNode] = [
            actors.read_parquet(ctx, lineitem, t["lineitem"]),
            actors.filter(ctx, lineitem, kept, pl.col("l_shipdate") <= Q1_CUTOFF),
            actors.with_columns(
                ctx,
                kept,
                priced,
                disc_price=_disc_price(),
                charge=_disc_price() * (1 + pl.col("l_tax")),
            ),
            actors.groupby_agg(ctx, priced, grouped, demo.KEYS, demo.AGGREGATES),
            actors.sort(ctx, grouped, out, demo.KEYS),
        ]
        return _run(ctx, nodes, out)


def streamnet_q3(t: Tables) -> pl.DataFrame:
    with Context() as ctx:
        customer, orders, lineitem, c_o, c_o_l, kept, priced, grouped, top, out = (
            ctx.create_channel() for _ in range(10)
        )
        where = (
            (pl.col("c_mktsegment") == "BUILDING")
            & (pl.col("o_orderdate") < Q3_DATE)
            & (pl.col("l_shipdate") > Q3_DATE)
        )
        nodes: list[ActorNode] = [
            actors.read_parquet(ctx, customer, t["customer"]),
            actors.read_parquet(ctx, orders, t["orders"]),
            actors.join(ctx, customer, orders, c_o, left_on="c_custkey", right_on="o_custkey"),
            actors.read_parquet(ctx, lineitem, t["lineitem"]),
            actors.join(ctx, c_o, lineitem, c_o_l, left_on="o_orderkey", right_on="l_orderkey"),
            actors.filter(ctx, c_o_l, kept, where),
            actors.with_columns(ctx, kept, priced, revenue=_disc_price()),
            actors.groupby_agg(
                ctx,
                priced,
                grouped,
                ["o_orderkey", "o_orderdate", "o_shippriority"],
                [("revenue", "sum", "revenue")],
            ),
            actors.top_k(
                ctx, grouped, top, ["revenue", "o_orderdate"], 10, descending=[True, False]
            ),
            actors.select(
                ctx,
                top,
                out,
                pl.col("o_orderkey").alias("l_orderkey"),
                "revenue",
                "o_orderdate",
                "o_shippriority",
            ),
        ]
        return _run(ctx, nodes, out)


def streamnet_q6(t: Tables) -> pl.DataFrame:
    with Context() as ctx:
        lineitem, kept, priced, out = (ctx.create_channel() for _ in range(4))
        where = (
            (pl.col("l_shipdate") >= Q6_START)
            & (pl.col("l_shipdate") < Q6_END)
            & pl.col("l_discount").is_between(0.05, 0.07)
            & (pl.col("l_quantity") < 24)
        )
        nodes: list[ActorNode] = [
            actors.read_parquet(ctx, lineitem, t["lineitem"]),
            actors.filter(ctx, lineitem, kept, where),
            actors.select(
                ctx, kept, priced, revenue=pl.col("l_extendedprice") * pl.col("l_discount")
            ),
            actors.groupby_agg(ctx, priced, out, [], [("revenue", "sum", "revenue")]),
        ]
        return _run(ctx, nodes, out)


def streamnet_q9(t: Tables) -> pl.DataFrame:
    """``FROM part, supplier, lineitem, partsupp, orders, nation``: ``supplier`` joins
    once ``lineitem`` has (it meets ``part`` only through it)."""
    with Context() as ctx:
        part, lineitem, supplier, partsupp, orders, nation = (
            ctx.create_channel() for _ in range(6)
        )
        p_l, p_l_s, p_l_s_ps, with_o, with_n, kept, profit, grouped, out = (
            ctx.create_channel() for _ in range(9)
        )
        nodes: list[ActorNode] = [
            actors.read_parquet(ctx, part, t["part"]),
            actors.read_parquet(ctx, lineitem, t["lineitem"]),
            actors.join(ctx, part, lineitem, p_l, left_on="p_partkey", right_on="l_partkey"),
            actors.read_parquet(ctx, supplier, t["supplier"]),
            actors.join(ctx, p_l, supplier, p_l_s, left_on="l_suppkey", right_on="s_suppkey"),
            actors.read_parquet(ctx, partsupp, t["partsupp"]),
            actors.join(
                ctx,
                p_l_s,
                partsupp,
                p_l_s_ps,
                left_on=["l_suppkey", "p_partkey"],
                right_on=["ps_suppkey", "ps_partkey"],
            ),
            actors.read_parquet(ctx, orders, t["orders"]),
            actors.join(ctx, p_l_s_ps, orders, with_o, left_on="l_orderkey", right_on="o_orderkey"),
            actors.read_parquet(ctx, nation, t["nation"]),
            actors.join(ctx, with_o, nation, with_n, left_on="s_nationkey", right_on="n_nationkey"),
            actors.filter(ctx, with_n, kept, pl.col("p_name").str.contains("green", literal=True)),
            actors.select(
                ctx,
                kept,
                profit,
                nation=pl.col("n_name"),
                o_year=pl.col("o_orderdate").dt.year(),
                amount=_disc_price() - pl.col("ps_supplycost") * pl.col("l_quantity"),
            ),
            actors.groupby_agg(
                ctx, profit, grouped, ["nation", "o_year"], [("amount", "sum", "sum_profit")]
            ),
            actors.sort(ctx, grouped, out, ["nation", "o_year"], descending=[False, True]),
        ]
        return _run(ctx, nodes, out)


def streamnet_q18(t: Tables) -> pl.DataFrame:
    """The ``IN (subquery)`` is a semi join with the big orders, where ``WHERE`` puts it."""
    with Context() as ctx:
        customer, orders, lineitem, c_o, c_o_l = (ctx.create_channel() for _ in range(5))
        inner_lines, per_order, big, kept, grouped, top, out = (
            ctx.create_channel() for _ in range(7)
        )
        keys = ["c_name", "c_custkey", "o_orderkey", "o_orderdate", "o_totalprice"]
        nodes: list[ActorNode] = [
            actors.read_parquet(ctx, customer, t["customer"]),
            actors.read_parquet(ctx, orders, t["orders"]),
            actors.join(ctx, customer, orders, c_o, left_on="c_custkey", right_on="o_custkey"),
            actors.read_parquet(ctx, lineitem, t["lineitem"]),
            actors.join(ctx, c_o, lineitem, c_o_l, left_on="o_orderkey", right_on="l_orderkey"),
            actors.read_parquet(ctx, inner_lines, t["lineitem"]),
            actors.groupby_agg(
                ctx, inner_lines, per_order, "l_orderkey", [("l_quantity", "sum", "quantity")]
            ),
            actors.filter(ctx, per_order, big, pl.col("quantity") > Q18_QUANTITY),
            actors.join(
                ctx, c_o_l, big, kept, left_on="o_orderkey", right_on="l_orderkey", how="semi"
            ),
            actors.groupby_agg(ctx, kept, grouped, keys, [("l_quantity", "sum", "sum_qty")]),
            actors.top_k(
                ctx, grouped, top, ["o_totalprice", "o_orderdate"], 100, descending=[True, False]
            ),
            actors.select(ctx, top, out, *keys, "sum_qty"),
        ]
        return _run(ctx, nodes, out)


# ----------------------------------------------------------------------------- the workload

ENGINES: dict[str, dict[str, Callable[[Tables], pl.DataFrame]]] = {
    "streamnet": {
        "q1": streamnet_q1, "q3": streamnet_q3, "q6": streamnet_q6, "q9": streamnet_q9,
        "q18": streamnet_q18,
    },
    "polars streaming": {
        "q1": polars_q1, "q3": tpch_queries.polars_q3, "q6": tpch_queries.polars_q6,
        "q9": tpch_queries.polars_q9, "q18": tpch_queries.polars_q18,
    },
    "duckdb": {q: partial(run_duckdb, q) for q in QUERIES},
}  # fmt: skip


@dataclass
class Result:
    query: str
    engine: str
    seconds: float
    """The best wall time of the rounds."""
    cpu_seconds: float
    """The process's CPU time (every thread) in that run."""


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(
    *,
    scale_factor: float = 1.0,
    repeats: int = 3,
    queries: Sequence[str] = QUERIES,
    data_dir: str = ".cache/bench",
) -> tuple[float, int, list[Result]]:
    """Each query on each engine, checked against DuckDB, then timed in ``repeats`` rounds
    of the engines in turn (so that a busy moment of the machine falls on all of them)."""
    t = tables(scale_factor, data_dir)
    assert set(t) == set(TABLES)
    lineitem_rows = pq.ParquetFile(t["lineitem"]).metadata.num_rows
    results: list[Result] = []
    for query in queries:
        reference = ENGINES["duckdb"][query](t)
        for engine, fns in ENGINES.items():
            tpch_queries.check_same(
                fns[query](t), reference, f"{engine}'s {query.upper()}", whose="DuckDB's"
            )
        best: dict[str, tuple[float, float]] = {}
        for _ in range(max(1, repeats)):
            for engine, fns in ENGINES.items():
                timing = _timed(partial(fns[query], t))
                if engine not in best or timing[0] < best[engine][0]:
                    best[engine] = timing
        results.extend(Result(query, e, *best[e]) for e in ENGINES)
    return scale_factor, lineitem_rows, results


def ratios(results: list[Result]) -> dict[str, float]:
    """Per query, streamnet's time over the best peer's."""
    out = {}
    for query in dict.fromkeys(r.query for r in results):
        group = {r.engine: r.seconds for r in results if r.query == query}
        out[query] = group["streamnet"] / min(group[p] for p in PEERS)
    return out


def report(scale_factor: float, lineitem_rows: int, results: list[Result]) -> str:
    lines = [
        f"TPC-H scale factor {scale_factor:g} ({lineitem_rows:,} lineitem rows) from Parquet, "
        "each query one pipeline as a user writes it; answers checked equal to DuckDB",
        "",
        "| query | engine | seconds | CPU seconds | ratio to best peer |",
        "|---|---|---:|---:|---:|",
    ]
    for query in dict.fromkeys(r.query for r in results):
        group = [r for r in results if r.query == query]
        peer = min(r.seconds for r in group if r.engine in PEERS)
        for r in group:
            lines.append(
                f"| {query.upper()} | {r.engine} | {r.seconds:.2f} | {r.cpu_seconds:.2f} | "
                f"{r.seconds / peer:.2f}x |"
            )
    found = ratios(results)
    geomean = math.exp(sum(math.log(v) for v in found.values()) / len(found))
    lines.append("")
    lines.append(f"streamnet's geometric mean ratio to the best peer: {geomean:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
