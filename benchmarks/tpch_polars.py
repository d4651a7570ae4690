"""The 22 TPC-H queries in plain Polars, written from the query text of the TPC-H specification.

Each query takes the eight tables as LazyFrames (``{"lineitem": pl.scan_parquet(...), ...}``)
and returns a LazyFrame, in the style of Polars' own TPC-H benchmark (pdsh): one
chain of joins, filters and aggregations per query, subqueries as frames of their own.
The substitution parameters are the specification's validation values; Q11's fraction
is scaled by the scale factor, as the specification says.

``SORTED_BY`` names the columns each query orders its result by (the test of a result
checks that order, and compares rows as a set where the order has ties).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

import polars as pl

__all__ = ["QUERIES", "SORTED_BY", "query"]

Tables = Mapping[str, pl.LazyFrame]


def _revenue() -> pl.Expr:
    return pl.col("l_extendedprice") * (1 - pl.col("l_discount"))


def q1(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Pricing summary report."""
    return (
        t["lineitem"]
        .filter(pl.col("l_shipdate") <= date(1998, 9, 2))
        .group_by("l_returnflag", "l_linestatus")
        .agg(
            pl.col("l_quantity").sum().alias("sum_qty"),
            pl.col("l_extendedprice").sum().alias("sum_base_price"),
            _revenue().sum().alias("sum_disc_price"),
            (_revenue() * (1 + pl.col("l_tax"))).sum().alias("sum_charge"),
            pl.col("l_quantity").mean().alias("avg_qty"),
            pl.col("l_extendedprice").mean().alias("avg_price"),
            pl.col("l_discount").mean().alias("avg_disc"),
            pl.len().alias("count_order"),
        )
        .sort("l_returnflag", "l_linestatus")
    )


def q2(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Minimum cost supplier."""
    europe = (
        t["part"]
        .join(t["partsupp"], left_on="p_partkey", right_on="ps_partkey")
        .join(t["supplier"], left_on="ps_suppkey", right_on="s_suppkey")
        .join(t["nation"], left_on="s_nationkey", right_on="n_nationkey")
        .join(t["region"], left_on="n_regionkey", right_on="r_regionkey")
        .filter(
            pl.col("p_size") == 15,
            pl.col("p_type").str.ends_with("BRASS"),
            pl.col("r_name") == "EUROPE",
        )
    )
    return (
        europe.group_by("p_partkey")
        .agg(pl.col("ps_supplycost").min())
        .join(europe, on=["p_partkey", "ps_supplycost"])
        .select(
            "s_acctbal", "s_name", "n_name", "p_partkey", "p_mfgr", "s_address", "s_phone",
            "s_comment",
        )
        .sort(["s_acctbal", "n_name", "s_name", "p_partkey"], descending=[True, False, False, False])
        .head(100)
    )


def q3(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Shipping priority."""
    day = date(1995, 3, 15)
    return (
        t["customer"]
        .filter(pl.col("c_mktsegment") == "BUILDING")
        .join(t["orders"], left_on="c_custkey", right_on="o_custkey")
        .join(t["lineitem"], left_on="o_orderkey", right_on="l_orderkey")
        .filter(pl.col("o_orderdate") < day, pl.col("l_shipdate") > day)
        .group_by("o_orderkey", "o_orderdate", "o_shippriority")
        .agg(_revenue().sum().alias("revenue"))
        .select(
            pl.col("o_orderkey").alias("l_orderkey"), "revenue", "o_orderdate", "o_shippriority"
        )
        .sort(["revenue", "o_orderdate"], descending=[True, False])
        .head(10)
    )


def q4(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Order priority checking."""
    late = t["lineitem"].filter(pl.col("l_commitdate") < pl.col("l_receiptdate"))
    return (
        t["orders"]
        .filter(pl.col("o_orderdate").is_between(date(1993, 7, 1), date(1993, 10, 1), closed="left"))
        .join(late, left_on="o_orderkey", right_on="l_orderkey", how="semi")
        .group_by("o_orderpriority")
        .agg(pl.len().alias("order_count"))
        .sort("o_orderpriority")
    )


def q5(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Local supplier volume."""
    return (
        t["region"]
        .join(t["nation"], left_on="r_regionkey", right_on="n_regionkey")
        .join(t["customer"], left_on="n_nationkey", right_on="c_nationkey")
        .join(t["orders"], left_on="c_custkey", right_on="o_custkey")
        .join(t["lineitem"], left_on="o_orderkey", right_on="l_orderkey")
        .join(t["supplier"], left_on=["l_suppkey", "n_nationkey"], right_on=["s_suppkey", "s_nationkey"])
        .filter(
            pl.col("r_name") == "ASIA",
            pl.col("o_orderdate").is_between(date(1994, 1, 1), date(1995, 1, 1), closed="left"),
        )
        .group_by("n_name")
        .agg(_revenue().sum().alias("revenue"))
        .sort("revenue", descending=True)
    )


def q6(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Forecasting revenue change."""
    return (
        t["lineitem"]
        .filter(
            pl.col("l_shipdate").is_between(date(1994, 1, 1), date(1995, 1, 1), closed="left"),
            pl.col("l_discount").is_between(0.05, 0.07),
            pl.col("l_quantity") < 24,
        )
        .select((pl.col("l_extendedprice") * pl.col("l_discount")).sum().alias("revenue"))
    )


def _q7_side(t: Tables, customer_nation: str, supplier_nation: str) -> pl.LazyFrame:
    nation = t["nation"].select("n_nationkey", "n_name")
    return (
        t["customer"]
        .join(nation.filter(pl.col("n_name") == customer_nation), left_on="c_nationkey", right_on="n_nationkey")
        .rename({"n_name": "cust_nation"})
        .join(t["orders"], left_on="c_custkey", right_on="o_custkey")
        .join(t["lineitem"], left_on="o_orderkey", right_on="l_orderkey")
        .join(t["supplier"], left_on="l_suppkey", right_on="s_suppkey")
        .join(nation.filter(pl.col("n_name") == supplier_nation), left_on="s_nationkey", right_on="n_nationkey")
        .rename({"n_name": "supp_nation"})
        .select("supp_nation", "cust_nation", "l_shipdate", "l_extendedprice", "l_discount")
    )  # fmt: skip


def q7(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Volume shipping."""
    return (
        pl.concat([_q7_side(t, "FRANCE", "GERMANY"), _q7_side(t, "GERMANY", "FRANCE")])
        .filter(pl.col("l_shipdate").is_between(date(1995, 1, 1), date(1996, 12, 31)))
        .with_columns(_revenue().alias("volume"), pl.col("l_shipdate").dt.year().alias("l_year"))
        .group_by("supp_nation", "cust_nation", "l_year")
        .agg(pl.col("volume").sum().alias("revenue"))
        .sort("supp_nation", "cust_nation", "l_year")
    )


def q8(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """National market share."""
    return (
        t["part"]
        .filter(pl.col("p_type") == "ECONOMY ANODIZED STEEL")
        .join(t["lineitem"], left_on="p_partkey", right_on="l_partkey")
        .join(t["supplier"], left_on="l_suppkey", right_on="s_suppkey")
        .join(t["orders"], left_on="l_orderkey", right_on="o_orderkey")
        .join(t["customer"], left_on="o_custkey", right_on="c_custkey")
        .join(t["nation"].select("n_nationkey", "n_regionkey"), left_on="c_nationkey", right_on="n_nationkey")
        .join(t["region"].filter(pl.col("r_name") == "AMERICA"), left_on="n_regionkey", right_on="r_regionkey")
        .join(t["nation"].select("n_nationkey", "n_name"), left_on="s_nationkey", right_on="n_nationkey")
        .filter(pl.col("o_orderdate").is_between(date(1995, 1, 1), date(1996, 12, 31)))
        .select(
            pl.col("o_orderdate").dt.year().alias("o_year"),
            _revenue().alias("volume"),
            pl.col("n_name").alias("nation"),
        )
        .group_by("o_year")
        .agg(
            (
                pl.when(pl.col("nation") == "BRAZIL").then(pl.col("volume")).otherwise(0).sum()
                / pl.col("volume").sum()
            ).alias("mkt_share")
        )
        .sort("o_year")
    )  # fmt: skip


def q9(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Product type profit measure."""
    return (
        t["part"]
        .filter(pl.col("p_name").str.contains("green", literal=True))
        .join(t["partsupp"], left_on="p_partkey", right_on="ps_partkey")
        .join(t["supplier"], left_on="ps_suppkey", right_on="s_suppkey")
        .join(t["lineitem"], left_on=["p_partkey", "ps_suppkey"], right_on=["l_partkey", "l_suppkey"])
        .join(t["orders"], left_on="l_orderkey", right_on="o_orderkey")
        .join(t["nation"], left_on="s_nationkey", right_on="n_nationkey")
        .select(
            pl.col("n_name").alias("nation"),
            pl.col("o_orderdate").dt.year().alias("o_year"),
            (_revenue() - pl.col("ps_supplycost") * pl.col("l_quantity")).alias("amount"),
        )
        .group_by("nation", "o_year")
        .agg(pl.col("amount").sum().alias("sum_profit"))
        .sort(["nation", "o_year"], descending=[False, True])
    )  # fmt: skip


def q10(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Returned item reporting."""
    return (
        t["customer"]
        .join(
            t["orders"].filter(
                pl.col("o_orderdate").is_between(date(1993, 10, 1), date(1994, 1, 1), closed="left")
            ),
            left_on="c_custkey",
            right_on="o_custkey",
        )
        .join(t["lineitem"].filter(pl.col("l_returnflag") == "R"), left_on="o_orderkey", right_on="l_orderkey")
        .join(t["nation"], left_on="c_nationkey", right_on="n_nationkey")
        .group_by("c_custkey", "c_name", "c_acctbal", "c_phone", "n_name", "c_address", "c_comment")
        .agg(_revenue().sum().alias("revenue"))
        .select(
            "c_custkey", "c_name", "revenue", "c_acctbal", "n_name", "c_address", "c_phone",
            "c_comment",
        )
        .sort(["revenue", "c_custkey"], descending=[True, False])
        .head(20)
    )  # fmt: skip


def q11(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Important stock identification."""
    german = (
        t["partsupp"]
        .join(t["supplier"], left_on="ps_suppkey", right_on="s_suppkey")
        .join(t["nation"].filter(pl.col("n_name") == "GERMANY"), left_on="s_nationkey", right_on="n_nationkey")
        .with_columns((pl.col("ps_supplycost") * pl.col("ps_availqty")).alias("stock"))
    )  # fmt: skip
    threshold = german.select((pl.col("stock").sum() * (0.0001 / scale)).alias("threshold"))
    return (
        german.group_by("ps_partkey")
        .agg(pl.col("stock").sum().alias("value"))
        .join(threshold, how="cross")
        .filter(pl.col("value") > pl.col("threshold"))
        .select("ps_partkey", "value")
        .sort(["value", "ps_partkey"], descending=[True, False])
    )


def q12(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Shipping modes and order priority."""
    urgent = pl.col("o_orderpriority").is_in(["1-URGENT", "2-HIGH"])
    return (
        t["orders"]
        .join(t["lineitem"], left_on="o_orderkey", right_on="l_orderkey")
        .filter(
            pl.col("l_shipmode").is_in(["MAIL", "SHIP"]),
            pl.col("l_commitdate") < pl.col("l_receiptdate"),
            pl.col("l_shipdate") < pl.col("l_commitdate"),
            pl.col("l_receiptdate").is_between(date(1994, 1, 1), date(1995, 1, 1), closed="left"),
        )
        .group_by("l_shipmode")
        .agg(
            pl.when(urgent).then(1).otherwise(0).sum().alias("high_line_count"),
            pl.when(urgent.not_()).then(1).otherwise(0).sum().alias("low_line_count"),
        )
        .sort("l_shipmode")
    )


def q13(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Customer distribution."""
    orders = t["orders"].filter(pl.col("o_comment").str.contains("special.*requests").not_())
    return (
        t["customer"]
        .join(orders, left_on="c_custkey", right_on="o_custkey", how="left")
        .group_by("c_custkey")
        .agg(pl.col("o_orderkey").count().alias("c_count"))
        .group_by("c_count")
        .agg(pl.len().alias("custdist"))
        .sort(["custdist", "c_count"], descending=[True, True])
    )


def q14(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Promotion effect."""
    return (
        t["lineitem"]
        .filter(pl.col("l_shipdate").is_between(date(1995, 9, 1), date(1995, 10, 1), closed="left"))
        .join(t["part"], left_on="l_partkey", right_on="p_partkey")
        .select(
            (
                100.0
                * pl.when(pl.col("p_type").str.starts_with("PROMO")).then(_revenue()).otherwise(0).sum()
                / _revenue().sum()
            ).alias("promo_revenue")
        )
    )  # fmt: skip


def q15(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Top supplier."""
    revenue = (
        t["lineitem"]
        .filter(pl.col("l_shipdate").is_between(date(1996, 1, 1), date(1996, 4, 1), closed="left"))
        .group_by("l_suppkey")
        .agg(_revenue().sum().alias("total_revenue"))
        .rename({"l_suppkey": "supplier_no"})
    )
    return (
        t["supplier"]
        .join(revenue, left_on="s_suppkey", right_on="supplier_no")
        .filter(pl.col("total_revenue") == pl.col("total_revenue").max())
        .select("s_suppkey", "s_name", "s_address", "s_phone", "total_revenue")
        .sort("s_suppkey")
    )


def q16(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Parts/supplier relationship."""
    complaints = t["supplier"].filter(pl.col("s_comment").str.contains("Customer.*Complaints"))
    return (
        t["partsupp"]
        .join(complaints, left_on="ps_suppkey", right_on="s_suppkey", how="anti")
        .join(t["part"], left_on="ps_partkey", right_on="p_partkey")
        .filter(
            pl.col("p_brand") != "Brand#45",
            pl.col("p_type").str.starts_with("MEDIUM POLISHED").not_(),
            pl.col("p_size").is_in([49, 14, 23, 45, 19, 3, 36, 9]),
        )
        .group_by("p_brand", "p_type", "p_size")
        .agg(pl.col("ps_suppkey").n_unique().alias("supplier_cnt"))
        .sort(["supplier_cnt", "p_brand", "p_type", "p_size"], descending=[True, False, False, False])
    )  # fmt: skip


def q17(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Small-quantity-order revenue."""
    parts = (
        t["part"]
        .filter(pl.col("p_brand") == "Brand#23", pl.col("p_container") == "MED BOX")
        .join(t["lineitem"], left_on="p_partkey", right_on="l_partkey")
    )
    return (
        parts.group_by("p_partkey")
        .agg((0.2 * pl.col("l_quantity").mean()).alias("avg_quantity"))
        .join(parts, on="p_partkey")
        .filter(pl.col("l_quantity") < pl.col("avg_quantity"))
        .select((pl.col("l_extendedprice").sum() / 7.0).alias("avg_yearly"))
    )


def q18(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Large volume customer."""
    large = (
        t["lineitem"]
        .group_by("l_orderkey")
        .agg(pl.col("l_quantity").sum().alias("sum_quantity"))
        .filter(pl.col("sum_quantity") > 300)
    )
    return (
        t["orders"]
        .join(large, left_on="o_orderkey", right_on="l_orderkey", how="semi")
        .join(t["lineitem"], left_on="o_orderkey", right_on="l_orderkey")
        .join(t["customer"], left_on="o_custkey", right_on="c_custkey")
        .group_by("c_name", "o_custkey", "o_orderkey", "o_orderdate", "o_totalprice")
        .agg(pl.col("l_quantity").sum().alias("sum_quantity"))
        .rename({"o_custkey": "c_custkey"})
        .sort(["o_totalprice", "o_orderdate", "o_orderkey"], descending=[True, False, False])
        .head(100)
    )


def q19(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Discounted revenue."""

    def kind(brand: str, containers: list[str], low: int, size: int) -> pl.Expr:
        return (
            (pl.col("p_brand") == brand)
            & pl.col("p_container").is_in(containers)
            & pl.col("l_quantity").is_between(low, low + 10)
            & pl.col("p_size").is_between(1, size)
        )

    return (
        t["part"]
        .join(t["lineitem"], left_on="p_partkey", right_on="l_partkey")
        .filter(
            pl.col("l_shipmode").is_in(["AIR", "AIR REG"]),
            pl.col("l_shipinstruct") == "DELIVER IN PERSON",
            kind("Brand#12", ["SM CASE", "SM BOX", "SM PACK", "SM PKG"], 1, 5)
            | kind("Brand#23", ["MED BAG", "MED BOX", "MED PKG", "MED PACK"], 10, 10)
            | kind("Brand#34", ["LG CASE", "LG BOX", "LG PACK", "LG PKG"], 20, 15),
        )
        .select(_revenue().sum().alias("revenue"))
    )


def q20(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Potential part promotion."""
    shipped = (
        t["lineitem"]
        .filter(pl.col("l_shipdate").is_between(date(1994, 1, 1), date(1995, 1, 1), closed="left"))
        .group_by("l_partkey", "l_suppkey")
        .agg((pl.col("l_quantity").sum() * 0.5).alias("half_quantity"))
    )
    forest = t["part"].filter(pl.col("p_name").str.starts_with("forest")).select("p_partkey").unique()
    excess = (
        t["partsupp"]
        .join(forest, left_on="ps_partkey", right_on="p_partkey", how="semi")
        .join(shipped, left_on=["ps_partkey", "ps_suppkey"], right_on=["l_partkey", "l_suppkey"])
        .filter(pl.col("ps_availqty") > pl.col("half_quantity"))
    )
    return (
        t["supplier"]
        .join(t["nation"].filter(pl.col("n_name") == "CANADA"), left_on="s_nationkey", right_on="n_nationkey")
        .join(excess, left_on="s_suppkey", right_on="ps_suppkey", how="semi")
        .select("s_name", "s_address")
        .sort("s_name")
    )  # fmt: skip


def q21(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Suppliers who kept orders waiting."""
    lineitem = t["lineitem"].select("l_orderkey", "l_suppkey", "l_receiptdate", "l_commitdate")
    suppliers = lineitem.group_by("l_orderkey").agg(pl.col("l_suppkey").n_unique().alias("suppliers"))
    late = lineitem.filter(pl.col("l_receiptdate") > pl.col("l_commitdate"))
    late_suppliers = late.group_by("l_orderkey").agg(pl.col("l_suppkey").n_unique().alias("late_suppliers"))
    return (
        late.join(suppliers.filter(pl.col("suppliers") > 1), on="l_orderkey")
        .join(late_suppliers.filter(pl.col("late_suppliers") == 1), on="l_orderkey")
        .join(t["supplier"], left_on="l_suppkey", right_on="s_suppkey")
        .join(t["nation"].filter(pl.col("n_name") == "SAUDI ARABIA"), left_on="s_nationkey", right_on="n_nationkey")
        .join(t["orders"].filter(pl.col("o_orderstatus") == "F"), left_on="l_orderkey", right_on="o_orderkey")
        .group_by("s_name")
        .agg(pl.len().alias("numwait"))
        .sort(["numwait", "s_name"], descending=[True, False])
        .head(100)
    )  # fmt: skip


def q22(t: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Global sales opportunity."""
    codes = ["13", "31", "23", "29", "30", "18", "17"]
    customers = t["customer"].with_columns(pl.col("c_phone").str.slice(0, 2).alias("cntrycode")).filter(
        pl.col("cntrycode").is_in(codes)
    )
    average = customers.filter(pl.col("c_acctbal") > 0.0).select(
        pl.col("c_acctbal").mean().alias("avg_acctbal")
    )
    return (
        customers.join(t["orders"], left_on="c_custkey", right_on="o_custkey", how="anti")
        .join(average, how="cross")
        .filter(pl.col("c_acctbal") > pl.col("avg_acctbal"))
        .group_by("cntrycode")
        .agg(pl.len().alias("numcust"), pl.col("c_acctbal").sum().alias("totacctbal"))
        .sort("cntrycode")
    )


QUERIES: dict[str, Callable[[Tables, float], pl.LazyFrame]] = {
    f"q{n}": fn
    for n, fn in enumerate(
        [q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11, q12, q13, q14, q15, q16, q17, q18, q19,
         q20, q21, q22],
        start=1,
    )
}  # fmt: skip
"""The queries by name, ``"q1"`` to ``"q22"``."""

SORTED_BY: dict[str, list[str]] = {
    "q1": ["l_returnflag", "l_linestatus"],
    "q2": ["s_acctbal", "n_name", "s_name", "p_partkey"],
    "q3": ["revenue", "o_orderdate"],
    "q4": ["o_orderpriority"],
    "q5": ["revenue"],
    "q6": [],
    "q7": ["supp_nation", "cust_nation", "l_year"],
    "q8": ["o_year"],
    "q9": ["nation", "o_year"],
    "q10": ["revenue", "c_custkey"],
    "q11": ["value", "ps_partkey"],
    "q12": ["l_shipmode"],
    "q13": ["custdist", "c_count"],
    "q14": [],
    "q15": ["s_suppkey"],
    "q16": ["supplier_cnt", "p_brand", "p_type", "p_size"],
    "q17": [],
    "q18": ["o_totalprice", "o_orderdate", "o_orderkey"],
    "q19": [],
    "q20": ["s_name"],
    "q21": ["numwait", "s_name"],
    "q22": ["cntrycode"],
}


def query(name: str, tables: Tables, scale: float = 1.0) -> pl.LazyFrame:
    """Query ``name`` (``"q1"``...) over ``tables`` at scale factor ``scale``."""
    return QUERIES[name](tables, scale)
