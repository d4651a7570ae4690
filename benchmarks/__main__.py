"""Run the benchmarks side by side with their peers and print the tables (``make bench``)."""

from __future__ import annotations

import argparse
import os
import platform
import sys


def machine() -> str:
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory = f", {mem:.0f} GiB memory"
    except (ValueError, OSError, AttributeError):
        memory = ""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores{memory}, "
        f"Python {platform.python_version()}, {platform.system()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "workloads",
        nargs="*",
        default=["hop", "scan", "groupby", "join", "tpch", "actors"],
        help="workloads to run: hop, scan, groupby, join, tpch, actors",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args(argv)
    import polars as pl
    import pyarrow as pa

    print(f"machine: {machine()}")
    print(f"versions: polars {pl.__version__}, pyarrow {pa.__version__}\n")
    for name in args.workloads:
        if name == "hop":
            from benchmarks import hop

            print("## W0: per-hop cost through pass-through actors\n")
            results = hop.run(
                messages=2_000 if args.quick else 40_000, repeats=2 if args.quick else 9
            )
            print(hop.report(results))
            print()
        elif name == "scan":
            from benchmarks import scan

            print("## W-scan: Parquet scan -> filter -> project -> collect\n")
            rows = 2_000_000 if args.quick else 20_000_000
            print(scan.report(*scan.run(rows=rows, repeats=1 if args.quick else 3)))
            print()
        elif name == "groupby":
            from benchmarks import groupby

            print("## W1: streaming group-by-sum\n")
            rows = 2_000_000 if args.quick else 200_000_000
            print(groupby.report(*groupby.run(rows=rows, repeats=1 if args.quick else 2)))
            print()
        elif name == "join":
            from benchmarks import join

            print("## W3: join of a table with a stream\n")
            sizes = (100_000, 1_000_000) if args.quick else (10_000_000, 100_000_000)
            print(
                join.report(
                    *join.run(
                        table_rows=sizes[0], stream_rows=sizes[1], repeats=1 if args.quick else 2
                    )
                )
            )
            print()
        elif name == "tpch":
            from benchmarks import tpch_q1

            print("## W4: TPC-H Q1 from Parquet\n")
            sf = 0.05 if args.quick else 1.0
            print(tpch_q1.report(*tpch_q1.run(scale_factor=sf, repeats=1 if args.quick else 3)))
            print()
        elif name == "actors":
            from benchmarks import actors_latency

            print("## W6: persistent actor round trip and throughput\n")
            sizes = (2_000, 20_000) if args.quick else (20_000, 200_000)
            print(
                actors_latency.report(actors_latency.run(round_trips=sizes[0], messages=sizes[1]))
            )
            print()
        else:
            parser.error(
                f"unknown workload {name!r}; choose from: hop, scan, groupby, join, actors"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
