"""W5: TPC-H Q3, Q6, Q9 and Q18 from Parquet: streamnet beside Polars, DuckDB and chunked pandas.

The tables come from ``tpchgen-cli`` (see :mod:`benchmarks.tpch_data`).
Polars (streaming engine) and DuckDB (2 threads) run the queries as TPC-H
writes them and plan them themselves. streamnet has no planner: each query is
a network of library actors (``read_parquet`` with projection and predicate,
``filter``, ``select``, ``join``, ``groupby_agg``, ``top_k``, ``sort``,
``collect``), written as a user would, the large ``lineitem`` table streaming
through joins against the smaller tables. pandas reads ``lineitem`` row group by
row group, joins each against the smaller tables read whole, aggregates each
chunk and combines the partials. Every engine's answer is checked equal to
Polars' (floats to a relative 1e-9) before its timing counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow.parquet as pq
from polars.testing import assert_frame_equal

import actors
from benchmarks._measure import best_time, mib, peak_memory
from benchmarks.tpch_data import ROW_GROUP_ROWS, TABLES, tables
from benchmarks.tpch_sql import SQL, connect
from streamnet import ActorNode, Channel, Context, Network, TableChunk

Tables = dict[str, Path]
Stream = Channel[TableChunk]

QUERIES = ("q3", "q6", "q9", "q18")

Q3_DATE = dt.date(1995, 3, 15)
Q6_START, Q6_END = dt.date(1994, 1, 1), dt.date(1995, 1, 1)
Q18_QUANTITY = 300

# ----------------------------------------------------------------------------- Polars
# The queries as Polars' own TPC-H benchmark (pdsh) writes them, run by its streaming engine.


def _scan(t: Tables, name: str) -> pl.LazyFrame:
    return pl.scan_parquet(t[name])


def _revenue() -> pl.Expr:
    return pl.col("l_extendedprice") * (1 - pl.col("l_discount"))


def polars_q3(t: Tables) -> pl.DataFrame:
    return (
        _scan(t, "customer")
        .filter(pl.col("c_mktsegment") == "BUILDING")
        .join(_scan(t, "orders"), left_on="c_custkey", right_on="o_custkey")
        .join(_scan(t, "lineitem"), left_on="o_orderkey", right_on="l_orderkey")
        .filter(pl.col("o_orderdate") < Q3_DATE, pl.col("l_shipdate") > Q3_DATE)
        .group_by("o_orderkey", "o_orderdate", "o_shippriority")
        .agg(_revenue().sum().alias("revenue"))
        .select(
            pl.col("o_orderkey").alias("l_orderkey"), "revenue", "o_orderdate", "o_shippriority"
        )
        .sort(["revenue", "o_orderdate"], descending=[True, False])
        .head(10)
        .collect(engine="streaming")
    )


def _q6_predicate() -> pl.Expr:
    return (
        pl.col("l_shipdate").is_between(Q6_START, Q6_END, closed="left")
        & pl.col("l_discount").is_between(0.05, 0.07)
        & (pl.col("l_quantity") < 24)
    )


def polars_q6(t: Tables) -> pl.DataFrame:
    return (
        _scan(t, "lineitem")
        .filter(_q6_predicate())
        .select((pl.col("l_extendedprice") * pl.col("l_discount")).sum().alias("revenue"))
        .collect(engine="streaming")
    )


def _q9_amount() -> pl.Expr:
    return (_revenue() - pl.col("ps_supplycost") * pl.col("l_quantity")).alias("amount")


def polars_q9(t: Tables) -> pl.DataFrame:
    return (
        _scan(t, "part")
        .join(_scan(t, "partsupp"), left_on="p_partkey", right_on="ps_partkey")
        .join(_scan(t, "supplier"), left_on="ps_suppkey", right_on="s_suppkey")
        .join(
            _scan(t, "lineitem"),
            left_on=["p_partkey", "ps_suppkey"],
            right_on=["l_partkey", "l_suppkey"],
        )
        .join(_scan(t, "orders"), left_on="l_orderkey", right_on="o_orderkey")
        .join(_scan(t, "nation"), left_on="s_nationkey", right_on="n_nationkey")
        .filter(pl.col("p_name").str.contains("green", literal=True))
        .select(
            pl.col("n_name").alias("nation"),
            pl.col("o_orderdate").dt.year().alias("o_year"),
            _q9_amount(),
        )
        .group_by("nation", "o_year")
        .agg(pl.col("amount").sum().alias("sum_profit"))
        .sort(["nation", "o_year"], descending=[False, True])
        .collect(engine="streaming")
    )


def polars_q18(t: Tables) -> pl.DataFrame:
    lineitem = _scan(t, "lineitem")
    big = (
        lineitem.group_by("l_orderkey")
        .agg(pl.col("l_quantity").sum().alias("sum_quantity"))
        .filter(pl.col("sum_quantity") > Q18_QUANTITY)
    )
    return (
        _scan(t, "orders")
        .join(big, left_on="o_orderkey", right_on="l_orderkey", how="semi")
        .join(lineitem, left_on="o_orderkey", right_on="l_orderkey")
        .join(_scan(t, "customer"), left_on="o_custkey", right_on="c_custkey")
        .group_by("c_name", "o_custkey", "o_orderkey", "o_orderdate", "o_totalprice")
        .agg(pl.col("l_quantity").sum().alias("sum_qty"))
        .select(
            "c_name",
            pl.col("o_custkey").alias("c_custkey"),
            "o_orderkey",
            "o_orderdate",
            "o_totalprice",
            "sum_qty",
        )
        .sort(["o_totalprice", "o_orderdate"], descending=[True, False])
        .head(100)
        .collect(engine="streaming")
    )


# ----------------------------------------------------------------------------- DuckDB
# The queries' SQL text from the TPC-H specification (substitution parameters: the defaults).

DUCKDB_SQL = {
    **{name: SQL[name] for name in ("q3", "q6", "q9")},
    # W5's own Q18: its pipelines name the sum `sum_qty` (`tpch_sql` names it `sum_quantity`
    # and breaks ties by order key)
    "q18": """
        SELECT c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice, sum(l_quantity) AS sum_qty
        FROM customer, orders, lineitem
        WHERE o_orderkey IN (SELECT l_orderkey FROM lineitem GROUP BY l_orderkey
                             HAVING sum(l_quantity) > 300)
          AND c_custkey = o_custkey AND o_orderkey = l_orderkey
        GROUP BY c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice
        ORDER BY o_totalprice DESC, o_orderdate
        LIMIT 100""",
}


def run_duckdb(query: str, t: Tables) -> pl.DataFrame:
    con = connect(t)
    frame = pl.DataFrame(con.sql(DUCKDB_SQL[query]).to_arrow_table())
    con.close()
    return frame


# ----------------------------------------------------------------------------- streamnet


class _Pipeline:
    """Builds a network one actor at a time: each step makes its output channel."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.nodes: list[ActorNode] = []

    def channel(self) -> Stream:
        return self.ctx.create_channel(TableChunk)

    def scan(self, path: Path, columns: Sequence[str], filters: pl.Expr | None = None) -> Stream:
        out = self.channel()
        self.nodes.append(
            actors.read_parquet(self.ctx, out, path, columns=list(columns), filters=filters)
        )
        return out

    def join(self, left: Stream, right: Stream, **kwargs: Any) -> Stream:
        """``left`` (streamed) joined with ``right`` (read first), with :func:`actors.join`'s options."""
        out = self.channel()
        self.nodes.append(actors.join(self.ctx, left, right, out, **kwargs))
        return out

    def fanout(self, ch_in: Stream, count: int) -> list[Stream]:
        """``count`` copies of the stream ``ch_in``."""
        outs = [self.channel() for _ in range(count)]
        self.nodes.append(actors.fanout(self.ctx, ch_in, outs))
        return outs

    def step(
        self, actor: Callable[..., ActorNode], ch_in: Stream, *args: Any, **kwargs: Any
    ) -> Stream:
        """``actor(ctx, ch_in, ch_out, *args, **kwargs)``, for one-input actors."""
        out = self.channel()
        self.nodes.append(actor(self.ctx, ch_in, out, *args, **kwargs))
        return out

    def collect(self, ch: Stream) -> pl.DataFrame:
        """Run the network with a sink on ``ch``; what the sink gathered."""
        sink = actors.collect(self.ctx, ch, into="polars")
        Network(self.ctx, [*self.nodes, sink]).run(progress=False)
        result: pl.DataFrame = sink.result()
        return result


def streamnet_q3(t: Tables) -> pl.DataFrame:
    with Context() as ctx:
        p = _Pipeline(ctx)
        customers = p.scan(t["customer"], ["c_custkey"], pl.col("c_mktsegment") == "BUILDING")
        orders = p.scan(
            t["orders"],
            ["o_orderkey", "o_custkey", "o_orderdate", "o_shippriority"],
            pl.col("o_orderdate") < Q3_DATE,
        )
        their_orders = p.join(
            orders, customers, left_on="o_custkey", right_on="c_custkey", how="semi"
        )
        lines = p.scan(
            t["lineitem"],
            ["l_orderkey", "l_extendedprice", "l_discount"],
            pl.col("l_shipdate") > Q3_DATE,
        )
        joined = p.join(lines, their_orders, left_on="l_orderkey", right_on="o_orderkey")
        priced = p.step(
            actors.select,
            joined,
            "l_orderkey",
            "o_orderdate",
            "o_shippriority",
            revenue=_revenue(),
        )
        grouped = p.step(
            actors.groupby_agg,
            priced,
            ["l_orderkey", "o_orderdate", "o_shippriority"],
            [("revenue", "sum", "revenue")],
        )
        top = p.step(
            actors.top_k, grouped, ["revenue", "o_orderdate"], 10, descending=[True, False]
        )
        out = p.step(actors.select, top, "l_orderkey", "revenue", "o_orderdate", "o_shippriority")
        return p.collect(out)


def streamnet_q6(t: Tables) -> pl.DataFrame:
    with Context() as ctx:
        p = _Pipeline(ctx)
        lines = p.scan(t["lineitem"], ["l_extendedprice", "l_discount"], _q6_predicate())
        products = p.step(
            actors.select, lines, revenue=pl.col("l_extendedprice") * pl.col("l_discount")
        )
        total = p.step(actors.groupby_agg, products, [], [("revenue", "sum", "revenue")])
        return p.collect(total)


def streamnet_q9(t: Tables) -> pl.DataFrame:
    """``lineitem`` is cut to the green parts' lines first (a semi join on the part key,
    whose small right side is ready at once), so the joins after it see 5% of it.

    A join reads its right side before its left and holds the left meanwhile
    (spilling beyond 64 MiB); joining ``lineitem`` straight to the green
    ``partsupp`` rows instead held most of ``lineitem`` while those were made.
    """
    with Context() as ctx:
        p = _Pipeline(ctx)
        green = p.scan(
            t["part"], ["p_partkey"], pl.col("p_name").str.contains("green", literal=True)
        )
        green_for_lines, green_for_supplies = p.fanout(green, 2)
        lines = p.scan(
            t["lineitem"],
            ["l_orderkey", "l_partkey", "l_suppkey", "l_quantity", "l_extendedprice", "l_discount"],
        )
        green_lines = p.join(
            lines, green_for_lines, left_on="l_partkey", right_on="p_partkey", how="semi"
        )
        supplies = p.scan(t["partsupp"], ["ps_partkey", "ps_suppkey", "ps_supplycost"])
        green_supplies = p.join(
            supplies, green_for_supplies, left_on="ps_partkey", right_on="p_partkey", how="semi"
        )
        costed = p.join(
            green_lines,
            green_supplies,
            left_on=["l_partkey", "l_suppkey"],
            right_on=["ps_partkey", "ps_suppkey"],
        )
        suppliers = p.scan(t["supplier"], ["s_suppkey", "s_nationkey"])
        nations = p.scan(t["nation"], ["n_nationkey", "n_name"])
        supplier_nation = p.join(suppliers, nations, left_on="s_nationkey", right_on="n_nationkey")
        located = p.join(costed, supplier_nation, left_on="l_suppkey", right_on="s_suppkey")
        orders = p.scan(t["orders"], ["o_orderkey", "o_orderdate"])
        dated = p.join(located, orders, left_on="l_orderkey", right_on="o_orderkey")
        profit = p.step(
            actors.select,
            dated,
            nation=pl.col("n_name"),
            o_year=pl.col("o_orderdate").dt.year(),
            amount=_q9_amount(),
        )
        grouped = p.step(
            actors.groupby_agg, profit, ["nation", "o_year"], [("amount", "sum", "sum_profit")]
        )
        out = p.step(actors.sort, grouped, ["nation", "o_year"], descending=[False, True])
        return p.collect(out)


def streamnet_q18(t: Tables) -> pl.DataFrame:
    """One pass over ``lineitem``: an order's quantity summed for the ``IN`` test is also
    the ``sum(l_quantity)`` the query reports, so the big orders carry it along."""
    with Context() as ctx:
        p = _Pipeline(ctx)
        lines = p.scan(t["lineitem"], ["l_orderkey", "l_quantity"])
        per_order = p.step(
            actors.groupby_agg, lines, "l_orderkey", [("l_quantity", "sum", "sum_qty")]
        )
        big = p.step(actors.filter, per_order, pl.col("sum_qty") > Q18_QUANTITY)
        orders = p.scan(t["orders"], ["o_orderkey", "o_custkey", "o_orderdate", "o_totalprice"])
        big_orders = p.join(big, orders, left_on="l_orderkey", right_on="o_orderkey")
        customers = p.scan(t["customer"], ["c_custkey", "c_name"])
        named = p.join(big_orders, customers, left_on="o_custkey", right_on="c_custkey")
        top = p.step(
            actors.top_k, named, ["o_totalprice", "o_orderdate"], 100, descending=[True, False]
        )
        out = p.step(
            actors.select,
            top,
            "c_name",
            pl.col("o_custkey").alias("c_custkey"),
            pl.col("l_orderkey").alias("o_orderkey"),
            "o_orderdate",
            "o_totalprice",
            "sum_qty",
        )
        return p.collect(out)


# ----------------------------------------------------------------------------- pandas


def _pandas_read(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(path, columns=list(columns)).to_pandas(date_as_object=False)
    return frame


def _pandas_chunks(path: Path, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
    """The file's rows, one row group's worth at a time."""
    for batch in pq.ParquetFile(path).iter_batches(
        batch_size=ROW_GROUP_ROWS, columns=list(columns)
    ):
        yield batch.to_pandas(date_as_object=False)


def _from_pandas(frame: pd.DataFrame) -> pl.DataFrame:
    out = pl.from_pandas(frame.reset_index(drop=True))
    return out.with_columns(pl.col(pl.Datetime).cast(pl.Date))


def pandas_q3(t: Tables) -> pl.DataFrame:
    cutoff = pd.Timestamp(Q3_DATE)
    customers = _pandas_read(t["customer"], ["c_custkey", "c_mktsegment"])
    customers = customers[customers["c_mktsegment"] == "BUILDING"]
    orders = _pandas_read(t["orders"], ["o_orderkey", "o_custkey", "o_orderdate", "o_shippriority"])
    orders = orders[
        (orders["o_orderdate"] < cutoff) & orders["o_custkey"].isin(customers["c_custkey"])
    ]
    orders = orders.drop(columns="o_custkey")
    keys = ["l_orderkey", "o_orderdate", "o_shippriority"]
    partials = []
    for chunk in _pandas_chunks(
        t["lineitem"], ["l_orderkey", "l_extendedprice", "l_discount", "l_shipdate"]
    ):
        chunk = chunk[chunk["l_shipdate"] > cutoff]
        joined = chunk.merge(orders, left_on="l_orderkey", right_on="o_orderkey")
        joined["revenue"] = joined["l_extendedprice"] * (1 - joined["l_discount"])
        partials.append(joined.groupby(keys, as_index=False)["revenue"].sum())
    grouped = pd.concat(partials).groupby(keys, as_index=False)["revenue"].sum()
    top = grouped.sort_values(["revenue", "o_orderdate"], ascending=[False, True]).head(10)
    return _from_pandas(top[["l_orderkey", "revenue", "o_orderdate", "o_shippriority"]])


def pandas_q6(t: Tables) -> pl.DataFrame:
    start, end = pd.Timestamp(Q6_START), pd.Timestamp(Q6_END)
    revenue = 0.0
    for chunk in _pandas_chunks(
        t["lineitem"], ["l_shipdate", "l_discount", "l_quantity", "l_extendedprice"]
    ):
        kept = chunk[
            (chunk["l_shipdate"] >= start)
            & (chunk["l_shipdate"] < end)
            & chunk["l_discount"].between(0.05, 0.07)
            & (chunk["l_quantity"] < 24)
        ]
        revenue += float((kept["l_extendedprice"] * kept["l_discount"]).sum())
    return pl.DataFrame({"revenue": [revenue]})


def pandas_q9(t: Tables) -> pl.DataFrame:
    parts = _pandas_read(t["part"], ["p_partkey", "p_name"])
    green = parts.loc[parts["p_name"].str.contains("green", regex=False), "p_partkey"]
    supplies = _pandas_read(t["partsupp"], ["ps_partkey", "ps_suppkey", "ps_supplycost"])
    supplies = supplies[supplies["ps_partkey"].isin(green)]
    suppliers = _pandas_read(t["supplier"], ["s_suppkey", "s_nationkey"]).merge(
        _pandas_read(t["nation"], ["n_nationkey", "n_name"]),
        left_on="s_nationkey",
        right_on="n_nationkey",
    )
    orders = _pandas_read(t["orders"], ["o_orderkey", "o_orderdate"])
    partials = []
    for chunk in _pandas_chunks(
        t["lineitem"],
        ["l_orderkey", "l_partkey", "l_suppkey", "l_quantity", "l_extendedprice", "l_discount"],
    ):
        joined = (
            chunk.merge(
                supplies, left_on=["l_partkey", "l_suppkey"], right_on=["ps_partkey", "ps_suppkey"]
            )
            .merge(suppliers, left_on="l_suppkey", right_on="s_suppkey")
            .merge(orders, left_on="l_orderkey", right_on="o_orderkey")
        )
        profit = pd.DataFrame(
            {
                "nation": joined["n_name"],
                "o_year": joined["o_orderdate"].dt.year,
                "amount": joined["l_extendedprice"] * (1 - joined["l_discount"])
                - joined["ps_supplycost"] * joined["l_quantity"],
            }
        )
        partials.append(profit.groupby(["nation", "o_year"], as_index=False)["amount"].sum())
    grouped = pd.concat(partials).groupby(["nation", "o_year"], as_index=False)["amount"].sum()
    grouped = grouped.rename(columns={"amount": "sum_profit"})
    return _from_pandas(grouped.sort_values(["nation", "o_year"], ascending=[True, False]))


def pandas_q18(t: Tables) -> pl.DataFrame:
    """One pass over ``lineitem``, as in :func:`streamnet_q18`."""
    partials = [
        chunk.groupby("l_orderkey", as_index=False)["l_quantity"].sum()
        for chunk in _pandas_chunks(t["lineitem"], ["l_orderkey", "l_quantity"])
    ]
    per_order = pd.concat(partials).groupby("l_orderkey", as_index=False)["l_quantity"].sum()
    big = per_order[per_order["l_quantity"] > Q18_QUANTITY].rename(
        columns={"l_orderkey": "o_orderkey", "l_quantity": "sum_qty"}
    )
    orders = _pandas_read(t["orders"], ["o_orderkey", "o_custkey", "o_orderdate", "o_totalprice"])
    customers = _pandas_read(t["customer"], ["c_custkey", "c_name"])
    joined = big.merge(orders, on="o_orderkey").merge(
        customers, left_on="o_custkey", right_on="c_custkey"
    )
    top = joined.sort_values(["o_totalprice", "o_orderdate"], ascending=[False, True]).head(100)
    return _from_pandas(
        top[["c_name", "c_custkey", "o_orderkey", "o_orderdate", "o_totalprice", "sum_qty"]]
    )


# ----------------------------------------------------------------------------- the workload

ENGINES: dict[str, dict[str, Callable[[Tables], pl.DataFrame]]] = {
    "streamnet": {
        "q3": streamnet_q3, "q6": streamnet_q6, "q9": streamnet_q9, "q18": streamnet_q18,
    },
    "polars streaming": {"q3": polars_q3, "q6": polars_q6, "q9": polars_q9, "q18": polars_q18},
    "duckdb": {q: partial(run_duckdb, q) for q in QUERIES},
    "pandas (chunked)": {"q3": pandas_q3, "q6": pandas_q6, "q9": pandas_q9, "q18": pandas_q18},
}  # fmt: skip


def check_same(got: pl.DataFrame, want: pl.DataFrame, what: str, *, whose: str = "Polars'") -> None:
    """``got`` equals ``want`` (``whose`` answer): same columns and rows in order, floats to
    a relative 1e-9."""
    try:
        assert_frame_equal(
            got, want, check_dtypes=False, check_exact=False, rel_tol=1e-9, abs_tol=1e-6
        )
    except AssertionError as exc:
        raise AssertionError(f"{what} differs from {whose} answer: {exc}") from exc


@dataclass
class Result:
    query: str
    engine: str
    seconds: float
    peak_bytes: int | None
    rows_out: int


def run(
    *,
    scale_factor: float = 1.0,
    repeats: int = 3,
    queries: Sequence[str] = QUERIES,
    data_dir: str = ".cache/bench",
    memory: bool = True,
) -> tuple[float, int, list[Result]]:
    """Each query on each engine: checked against Polars, then timed ``repeats`` times.

    With ``memory``, each also runs once more in a fresh process to measure its
    peak memory (:func:`benchmarks._measure.peak_memory`).
    """
    t = tables(scale_factor, data_dir)
    assert set(t) == set(TABLES)
    lineitem_rows = pq.ParquetFile(t["lineitem"]).metadata.num_rows
    results = []
    for query in queries:
        reference = ENGINES["polars streaming"][query](t)
        for engine, fns in ENGINES.items():
            fn = fns[query]
            check_same(fn(t), reference, f"{engine}'s {query.upper()}")
            seconds = best_time(partial(fn, t), repeats)
            peak = peak_memory(fn, t) if memory else None
            results.append(Result(query, engine, seconds, peak, reference.height))
    return scale_factor, lineitem_rows, results


def report(scale_factor: float, lineitem_rows: int, results: list[Result]) -> str:
    lines = [
        f"TPC-H scale factor {scale_factor:g} ({lineitem_rows:,} lineitem rows) from Parquet; "
        "answers checked equal across engines",
        "",
        "| query | engine | seconds | M lineitem rows/s | peak memory MiB | ratio to fastest |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for query in dict.fromkeys(r.query for r in results):
        group = [r for r in results if r.query == query]
        best = min(r.seconds for r in group)
        for r in group:
            lines.append(
                f"| {query.upper()} | {r.engine} | {r.seconds:.2f} | "
                f"{lineitem_rows / r.seconds / 1e6:.0f} | {mib(r.peak_bytes)} | "
                f"{r.seconds / best:.2f}x |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(*run()))
