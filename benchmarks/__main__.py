"""Run the benchmarks side by side with their peers and print the tables (``make bench``)."""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


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


def versions() -> str:
    """Versions of the engines the workloads compare (those installed)."""
    from importlib import metadata

    found = []
    for name in ("polars", "pyarrow", "duckdb", "pandas", "dask", "tpchgen-cli"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


# name: (heading, module in benchmarks/, sizes of a full run, sizes of a --quick run)
WORKLOADS: dict[str, tuple[str, str, dict[str, Any], dict[str, Any]]] = {
    "hop": (
        "W0: per-hop cost through pass-through actors", "hop",
        {"messages": 40_000, "repeats": 9}, {"messages": 2_000, "repeats": 2},
    ),
    "hop-steady": (
        "W0 steady: per-hop cost of raw channels beside asyncio.Queue", "hop_steady",
        {"messages": 10_000, "repeats": 7}, {"messages": 1_000, "repeats": 1},
    ),
    "imports": (
        "W-import: `import streamnet, actors` in a fresh interpreter beside `import polars`",
        "imports", {"repeats": 9}, {"repeats": 2},
    ),
    "scan": (
        "W-scan: Parquet scan -> filter -> project -> collect", "scan",
        {"rows": 20_000_000, "repeats": 3}, {"rows": 2_000_000, "repeats": 1},
    ),
    "scan-s3": (
        "W-scan-s3: Parquet scan from a local S3 server beside Polars' scan_parquet", "scan_s3",
        {"rows": 5_000_000, "objects": 4, "repeats": 3},
        {"rows": 500_000, "objects": 2, "repeats": 1},
    ),
    "groupby": (
        "W1: streaming group-by-sum", "groupby",
        {"rows": 200_000_000, "repeats": 2}, {"rows": 2_000_000, "repeats": 1},
    ),
    "shuffle": (
        "W2: hash shuffle across 2 ranks (MPI) beside Dask's P2P shuffle", "shuffle",
        {"sizes": (2 * 2**30, 8 * 2**30), "repeats": 3},
        {"sizes": (64 * 2**20,), "chunk_rows": 2**18, "repeats": 1},
    ),
    "join": (
        "W3: join of a table with a stream", "join",
        {"table_rows": 10_000_000, "stream_rows": 100_000_000, "repeats": 2},
        {"table_rows": 100_000, "stream_rows": 1_000_000, "repeats": 1},
    ),
    "tpch": (
        "W4: TPC-H Q1 from Parquet", "tpch_q1",
        {"scale_factors": (1.0, 10.0), "repeats": 3}, {"scale_factors": (0.05,), "repeats": 1},
    ),
    "tpch-queries": (
        "W5: TPC-H Q3, Q6, Q9, Q18 from Parquet", "tpch_queries",
        {"scale_factor": 1.0, "repeats": 3}, {"scale_factor": 0.1, "repeats": 1},
    ),
    "tpch-naive": (
        "W8: TPC-H Q1, Q3, Q6, Q9, Q18 written as a user would", "tpch_naive",
        {"scale_factor": 1.0, "repeats": 3}, {"scale_factor": 0.1, "repeats": 1},
    ),
    "tpch-naive-sf10": (
        "W8 at SF 10: TPC-H Q1, Q3, Q6, Q9, Q18 written as a user would", "tpch_naive",
        {"scale_factor": 10.0, "repeats": 1}, {"scale_factor": 0.1, "repeats": 1},
    ),
    "tpch-polars": (
        "W9: the 22 TPC-H queries in plain Polars, run as networks by collect_query",
        "tpch_polars_bench",
        {"scale_factors": (1.0,), "repeats": 3}, {"scale_factors": (0.1,), "repeats": 1},
    ),
    "tpch-polars-sf10": (
        "W9 at SF 10: the 22 TPC-H queries in plain Polars, run as networks by collect_query",
        "tpch_polars_bench",
        {"scale_factors": (10.0,), "repeats": 1}, {"scale_factors": (0.1,), "repeats": 1},
    ),
    "memory": (
        "W7: group-by, sort and join larger than memory, under one budget", "memory",
        {"rows": 60_000_000, "keys": 20_000_000, "budget": 2 * 2**30},
        {"rows": 400_000, "keys": 100_000, "budget": 64 * 2**20},
    ),
    "memory-4x": (
        "W7 at four times the budget: the data 4.5 times a 2 GiB budget", "memory",
        {
            "rows": 240_000_000, "keys": 80_000_000, "budget": 2 * 2**30, "quarter": False,
            "engines": ("streamnet", "duckdb"),
        },
        {"rows": 400_000, "keys": 100_000, "budget": 16 * 2**20, "quarter": False},
    ),
    "kernel-memory": (
        "W7k: working memory of the backend's kernels, measured beside its factors",
        "kernel_memory", {"rows": 1_000_000}, {"rows": 20_000, "kinds": ("sort", "join")},
    ),
    "actors": (
        "W6: persistent actor round trip and throughput", "actors_latency",
        {"round_trips": 20_000, "messages": 200_000}, {"round_trips": 2_000, "messages": 20_000},
    ),
    "device-actors": (
        "W10: device actors: ring round trip, one-way throughput, a chain of 8, runtime requests",
        "device_actors",
        {"round_trips": 20_000, "messages": 1_000_000}, {"round_trips": 200, "messages": 4_000},
    ),
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "workloads",
        nargs="*",
        default=[],
        metavar="WORKLOAD",
        help=f"workloads to run (default: all): {', '.join(WORKLOADS)}",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--output",
        metavar="FILE",
        default=None,
        help="also write the tables (Markdown) to FILE, headed by the machine, versions and command",
    )
    args = parser.parse_args(argv)
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from: {', '.join(WORKLOADS)}")
    written: list[str] = []

    def emit(text: str) -> None:
        print(text, flush=True)
        written.append(text)
        if args.output:  # rewritten after each workload: a long run keeps what it finished
            Path(args.output).write_text("\n".join(written) + "\n")

    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    emit(f"Machine: {machine()}  \nVersions: {versions()}  \nCommand: `{command}`\n")
    for name in args.workloads or list(WORKLOADS):
        title, module_name, full, quick = WORKLOADS[name]
        module = importlib.import_module(f"benchmarks.{module_name}")
        started = time.perf_counter()
        outcome = module.run(**(quick if args.quick else full))
        table = module.report(*outcome) if isinstance(outcome, tuple) else module.report(outcome)
        emit(
            f"## {title}\n\n{table}\n\n_(whole workload: {time.perf_counter() - started:.0f} s)_\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
