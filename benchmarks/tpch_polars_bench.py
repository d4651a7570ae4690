"""W9: the 22 TPC-H queries written in plain Polars, run as networks, beside Polars and DuckDB.

Each query of :mod:`benchmarks.tpch_polars` runs three ways on the same
``tpchgen-cli`` Parquet files (see :mod:`benchmarks.tpch_data`): through
``actors.collect_query`` (Polars optimises the query, the translator builds the
network, one rank), by Polars' streaming engine, and by DuckDB (2 threads) as
the SQL of :mod:`benchmarks.tpch_sql`. DuckDB's answer is the reference: every
engine's answer is checked equal to it (rows as a set, floats to a relative
1e-9, and in the order of the query's sort keys) before its time counts. The
table gives each engine's best time, streamnet's ratio to the best peer, and
the geometric mean of those ratios; the targets are those of the performance
issue (each within 1.5x, the geometric mean within 1.25x).

For the queries furthest from their best peer, the network runs once more and
its per-actor statistics say where the time went: the actors that ran the
longest kernels, with their rows and the time their kernels queued for a thread.

``python -m benchmarks.tpch_polars_bench --scale-factor 1 10`` runs other scale
factors (SF10 needs about 3 GiB of disk for the generated tables).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

import actors
from benchmarks import tpch_sql
from benchmarks._measure import best_time
from benchmarks.tpch_data import tables
from benchmarks.tpch_polars import QUERIES, SORTED_BY
from streamnet import Context, Network

__all__ = ["ENGINES", "Result", "check_same", "profile", "report", "run"]

ENGINES = ("streamnet", "polars streaming", "duckdb")
"""The engines, in the order the table gives them (streamnet: ``collect_query``)."""

TARGET_EACH, TARGET_MEAN = 1.5, 1.25
"""streamnet's targets: each query within 1.5x of the best peer, the geometric mean within 1.25x."""


@dataclass
class Result:
    scale_factor: float
    query: str
    seconds: dict[str, float]
    """Each engine's best time."""
    rows_out: int
    profile: list[str] = field(default_factory=list)
    """Where streamnet's time went (the actors with the longest kernels), if profiled."""

    @property
    def ratio(self) -> float:
        """streamnet's time over the best peer's."""
        return self.seconds["streamnet"] / min(self.seconds["polars streaming"], self.seconds["duckdb"])


def check_same(got: pl.DataFrame, want: pl.DataFrame, sorted_by: Sequence[str], what: str) -> None:
    """``got`` equals ``want``: rows as a set (floats to a relative 1e-9), and the
    ``sorted_by`` columns in the same order row by row (ties may come in any order)."""
    try:
        assert got.columns == want.columns, f"columns {got.columns}, expected {want.columns}"
        got = got.select(pl.col(c).cast(dtype) for c, dtype in want.schema.items())
        close = {"check_exact": False, "rel_tol": 1e-9, "abs_tol": 1e-9}
        if sorted_by:
            assert_frame_equal(got.select(sorted_by), want.select(sorted_by), **close)  # type: ignore[arg-type]
        assert_frame_equal(
            got.sort(got.columns, nulls_last=True), want.sort(want.columns, nulls_last=True),
            **close,  # type: ignore[arg-type]
        )  # fmt: skip
    except AssertionError as exc:
        raise AssertionError(f"{what} differs from DuckDB's answer: {exc}") from exc


def _scans(paths: dict[str, Path]) -> dict[str, pl.LazyFrame]:
    return {name: pl.scan_parquet(path) for name, path in paths.items()}


def _streamnet(query: pl.LazyFrame) -> pl.DataFrame:
    return actors.collect_query(query)


def _polars(query: pl.LazyFrame) -> pl.DataFrame:
    return query.collect(engine="streaming")


def profile(query: pl.LazyFrame, top: int = 5) -> list[str]:
    """Run ``query`` as a network once; a line per actor of the ``top`` longest kernels."""
    with Context() as ctx:
        ch, gathered = ctx.create_channel(), ctx.create_channel()
        built = actors.from_polars_query(ctx, query, ch)
        sink = actors.collect(ctx, gathered, into="polars")
        network = Network(ctx, [*built, actors.allgather(ctx, ch, gathered), sink])
        network.run(progress=False)
        stats = network.statistics().to_polars()
    heaviest = stats.sort("kernel_seconds", descending=True).head(top)
    lines = [
        f"`{row['name']}`: kernels {row['kernel_seconds']:.2f} s (queued {row['queued_seconds']:.2f} s), "
        f"busy {row['busy_seconds']:.2f} s of {row['wall_seconds']:.2f} s, "
        f"{row['rows_in']:,} rows in, {row['rows_out']:,} out"
        for row in heaviest.iter_rows(named=True)
    ]
    if built.fallbacks:
        lines.append(f"on rank 0: {'; '.join(built.fallbacks)}")
    return lines


def run(
    *,
    scale_factors: Sequence[float] = (1.0,),
    repeats: int = 3,
    queries: Sequence[str] = tuple(QUERIES),
    data_dir: str = ".cache/bench",
    profiled: int = 3,
) -> list[Result]:
    """Each query at each scale factor on every engine: checked against DuckDB, then timed
    (the best of ``repeats``); the ``profiled`` queries furthest from their best peer at each
    scale factor are profiled (:func:`profile`)."""
    results = []
    for scale_factor in scale_factors:
        paths = tables(scale_factor, data_dir)
        con = tpch_sql.connect(paths, threads=2)
        try:
            done = []
            for name in queries:
                query = QUERIES[name](_scans(paths), scale_factor)
                schema = query.collect_schema()
                duckdb = partial(tpch_sql.answer, con, name, scale_factor, schema=schema)
                reference = duckdb()
                runs = {"streamnet": partial(_streamnet, query), "polars streaming": partial(_polars, query),
                        "duckdb": duckdb}  # fmt: skip
                seconds = {}
                for engine, fn in runs.items():
                    check_same(fn(), reference, SORTED_BY[name], f"{engine}'s {name.upper()}")
                    seconds[engine] = best_time(fn, repeats)
                done.append(Result(scale_factor, name, seconds, reference.height))
            for result in sorted(done, key=lambda r: r.ratio, reverse=True)[:profiled]:
                result.profile = profile(QUERIES[result.query](_scans(paths), scale_factor))
            results.extend(done)
        finally:
            con.close()
    return results


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def report(results: list[Result]) -> str:
    lines = [
        "The 22 TPC-H queries written in plain Polars, run by `collect_query` (one rank) beside "
        "Polars streaming and DuckDB (2 threads) on the same Parquet files; answers checked "
        f"equal to DuckDB's; targets: each within {TARGET_EACH}x of the best peer, geometric "
        f"mean within {TARGET_MEAN}x",
        "",
        "| SF | query | rows out | streamnet s | Polars streaming s | DuckDB s | ratio to best peer |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r.seconds
        lines.append(
            f"| {r.scale_factor:g} | {r.query.upper()} | {r.rows_out:,} | {s['streamnet']:.2f} | "
            f"{s['polars streaming']:.2f} | {s['duckdb']:.2f} | {r.ratio:.2f}x |"
        )
    for scale_factor in dict.fromkeys(r.scale_factor for r in results):
        group = [r for r in results if r.scale_factor == scale_factor]
        mean = geometric_mean([r.ratio for r in group])
        within = sum(r.ratio <= TARGET_EACH for r in group)
        lines += [
            "",
            f"SF {scale_factor:g}: geometric mean {mean:.2f}x (target {TARGET_MEAN}x "
            f"{'met' if mean <= TARGET_MEAN else 'missed'}); {within} of {len(group)} queries "
            f"within {TARGET_EACH}x",
        ]
        for r in group:
            if r.profile:
                lines.append(f"- {r.query.upper()} ({r.ratio:.2f}x), longest kernels: " + "; ".join(r.profile))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tpch_polars_bench", description=__doc__)
    parser.add_argument("--scale-factor", type=float, nargs="+", default=[1.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--queries", nargs="+", default=list(QUERIES), choices=list(QUERIES))
    parser.add_argument("--data-dir", default=".cache/bench")
    args = parser.parse_args(argv)
    print(report(run(scale_factors=args.scale_factor, repeats=args.repeats, queries=args.queries,
                     data_dir=args.data_dir)))  # fmt: skip


if __name__ == "__main__":
    main()
