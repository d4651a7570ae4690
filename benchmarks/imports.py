"""W-import: what ``import streamnet, actors`` costs a fresh interpreter, beside ``import polars``.

Each statement runs in a fresh interpreter ``repeats`` times, with its modules'
bytecode compiled once beforehand (as an installed package has it, whatever
``PYTHONDONTWRITEBYTECODE`` says); a run reports the time the import statement
took, measured inside the interpreter, and the peak resident memory of the
process after it. The table keeps the median of each.

The first query a process runs pays for what loads on first use (pyarrow, the
thread pool, Polars' engine): a filtered, joined and grouped query over a small
Parquet file, timed from after the imports, through ``collect_query`` and
through Polars' own ``collect``, each in fresh interpreters.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

STATEMENTS = {
    "polars": "import polars",
    "streamnet + actors": "import streamnet, actors",
}
"""What a table row imports: Polars alone is the floor streamnet builds on."""

FIRST_QUERY = """
import datetime, os, sys, time
import polars as pl
{imports}
path = sys.argv[1]
query = (
    pl.scan_parquet(path)
    .filter((pl.col("x") > 0.25) & (pl.col("d") >= datetime.date(2024, 1, 2)))
    .join(pl.LazyFrame({{"k": list(range(100)), "name": [str(i) for i in range(100)]}}), on="k")
    .group_by("name").agg(pl.col("x").sum())
)
started = time.perf_counter()
{collect}
seconds = time.perf_counter() - started
"""
FIRST_QUERIES = {
    "first query, streamnet": ("import actors", "actors.collect_query(query)"),
    "first query, Polars": ("", "query.collect()"),
}
"""A process's first query: the same Polars query run by each (see the module's text)."""

TARGET_SECONDS = 0.25
TARGET_MIB = 100

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import time
started = time.perf_counter()
{statement}
seconds = time.perf_counter() - started
"""
_REPORT = """
import json, resource
print(json.dumps([seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))
"""


@dataclass(frozen=True)
class ImportResult:
    name: str
    statement: str
    seconds: float
    peak_mib: float


def _environment(*, bytecode: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _once(script: str, env: dict[str, str], *args: str) -> tuple[float, float]:
    """Run ``script`` (which sets ``seconds``) in a fresh interpreter: its seconds and the
    process's peak resident MiB."""
    done = subprocess.run(
        [sys.executable, "-c", script + _REPORT, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seconds, mib = json.loads(done.stdout.strip().splitlines()[-1])
    return float(seconds), float(mib)


def run(*, repeats: int = 9) -> list[ImportResult]:
    env = _environment(bytecode=True)
    results = [
        _measured(name, statement, _PROBE.format(statement=statement), env, repeats)
        for name, statement in STATEMENTS.items()
    ]
    with tempfile.TemporaryDirectory() as where:
        path = os.path.join(where, "first.parquet")
        _first_query_data(path)
        for name, (imports, collect) in FIRST_QUERIES.items():
            script = FIRST_QUERY.format(imports=imports, collect=collect)
            results.append(_measured(name, collect, script, env, repeats, path))
    return results


def _measured(
    name: str, what: str, script: str, env: dict[str, str], repeats: int, *args: str
) -> ImportResult:
    """The medians of ``repeats`` runs of ``script``, after one that writes its modules'
    bytecode where it can (later runs read it)."""
    _once(script, env, *args)
    runs = [_once(script, env, *args) for _ in range(repeats)]
    return ImportResult(
        name, what, statistics.median(s for s, _ in runs), statistics.median(m for _, m in runs)
    )


def _first_query_data(path: str) -> None:
    import datetime

    import polars as pl

    rows = 200_000
    pl.DataFrame(
        {
            "k": [i % 100 for i in range(rows)],
            "x": [(i % 1000) / 1000 for i in range(rows)],
            "d": [datetime.date(2024, 1, 1 + i % 28) for i in range(rows)],
        }
    ).write_parquet(path, row_group_size=50_000)


def report(results: list[ImportResult]) -> str:
    lines = [
        f"median of fresh interpreters; target: `import streamnet, actors` under "
        f"{TARGET_SECONDS} s and {TARGET_MIB} MiB",
        "",
        "| what | seconds | peak MiB | target |",
        "|---|---:|---:|:---:|",
    ]
    for r in results:
        target = ""
        if r.name == "streamnet + actors":
            met = r.seconds < TARGET_SECONDS and r.peak_mib < TARGET_MIB
            target = "met" if met else "missed"
        what = f"`{r.statement}`" if r.name in STATEMENTS else f"{r.name} (`{r.statement}`)"
        lines.append(f"| {what} | {r.seconds:.3f} | {r.peak_mib:.0f} | {target} |")
    return "\n".join(lines)
