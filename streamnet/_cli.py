"""The ``streamnet`` command line (``streamnet ...`` and ``python -m streamnet ...``).

The demo job lives in the actor library, above the runtime: ``streamnet demo``
loads it by name when it runs (`DEMO`), so the runtime never imports `actors`.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

DEMO = "actors.demo"
"""The module of the demo job ``streamnet demo`` runs (its ``run_demo``)."""

DESCRIPTION = """\
Streaming dataframe pipelines built as actor networks.

commands:
  demo     run the demo ETL pipeline (TPC-H Q1 shape) on generated data
  graph    write a picture of a job's network (SVG or DOT) without running it
  run      run a job script on N ranks (MPI): streamnet run -n 2 job.py [args]
  bench    run the benchmarks beside their peers and print the tables
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamnet",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the demo ETL pipeline on locally generated data (CPU backend)",
        description="Generate (once) a TPC-H-like lineitem table as Parquet, run scan -> filter "
        "-> derive -> group-by -> sort, print the result, a check against Polars and statistics.",
    )
    demo.add_argument("--rows", type=int, default=None, help="rows of generated data (default: 3M)")
    demo.add_argument(
        "--data-dir", default=None, help="where generated data is cached (default: .cache/)"
    )
    graph = commands.add_parser(
        "graph",
        help="write a picture of a job's network without running it",
        description="Run JOB as a script until it starts its first network, then write that "
        "network's picture instead of running it. Options come before JOB; what follows JOB "
        "is passed to it.",
    )
    graph.add_argument("job", help="the job script (it builds a Network and calls run())")
    graph.add_argument(
        "-o", "--output", default=None, help="file to write, .svg or .dot (default: JOB.svg)"
    )
    graph.add_argument(
        "--engine", choices=["auto", "graphviz", "python"], default="auto",
        help="who draws the SVG: Graphviz if installed (auto), or the built-in layout",
    )  # fmt: skip
    graph.add_argument("job_args", nargs=argparse.REMAINDER, help="arguments passed to the job")
    run = commands.add_parser(
        "run",
        help="run a job on N ranks through mpiexec",
        description="Start N processes of JOB through mpiexec; in each, Context() joins the "
        "others as one rank. The same job runs on one rank under plain `python JOB`. "
        "Use `-m MODULE` to run a module (e.g. `-m streamnet demo`). The exit status is "
        "non-zero if any rank failed.",
    )
    run.add_argument("-n", "--nranks", type=int, default=2, help="number of ranks (default: 2)")
    run.add_argument("-m", dest="module", default=None, help="run a module instead of a script")
    run.add_argument(
        "job", nargs=argparse.REMAINDER, help="the job script and its arguments (or the module's)"
    )
    bench = commands.add_parser(
        "bench",
        help="run the benchmarks beside their peers (from a source checkout)",
        description="Run benchmarks/ (hop, scan, groupby, join) and print ratio tables.",
    )
    bench.add_argument("workloads", nargs="*", help="workloads to run (default: all)")
    bench.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``streamnet`` / ``python -m streamnet``."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo = importlib.import_module(DEMO)  # the actor library, loaded only for the demo
        demo.run_demo(rows=args.rows, data_dir=args.data_dir)
        return 0
    if args.command == "graph":
        from streamnet.network._capture import capture_network

        network = capture_network(args.job, args.job_args)
        output = Path(args.output) if args.output else Path(args.job).with_suffix(".svg")
        network.save_picture(output, engine=args.engine)
        print(
            f"wrote the picture of network `{network.name}` ({len(network.actors)} actors) to {output}"
        )
        return 0
    if args.command == "run":
        from channels import StreamnetError
        from streamnet.engines._launcher import run_job

        try:
            job = ["-m", args.module, *args.job] if args.module else args.job
            return run_job(args.nranks, job)
        except (StreamnetError, FileNotFoundError, ValueError) as exc:
            print(exc, file=sys.stderr)
            return 2
    if args.command == "bench":
        root = Path(__file__).resolve().parents[1]
        if not (root / "benchmarks" / "__main__.py").is_file():
            print("streamnet bench: the benchmarks live in the source repository; run it from a clone",
                  file=sys.stderr)  # fmt: skip
            return 2
        command = [sys.executable, "-m", "benchmarks", *args.workloads]
        if args.quick:
            command.append("--quick")
        return subprocess.call(command, cwd=root)
    parser.print_help()
    return 2
