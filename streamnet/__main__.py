"""The ``streamnet`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``streamnet`` / ``python -m streamnet``."""
    parser = argparse.ArgumentParser(
        prog="streamnet",
        description="Streaming dataframe pipelines built as actor networks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="run the demo ETL pipeline on locally generated data (CPU backend)"
    )
    demo.add_argument(
        "--rows", type=int, default=None, help="rows of generated data (default: a few million)"
    )
    demo.add_argument(
        "--data-dir", default=None, help="where generated data is cached (default: .cache/)"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from streamnet._demo import run_demo

        run_demo(rows=args.rows, data_dir=args.data_dir)
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
