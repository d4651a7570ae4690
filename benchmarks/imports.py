"""W-import: what ``import streamnet, actors`` costs a fresh interpreter, beside ``import polars``.

Each statement runs in a fresh interpreter ``repeats`` times, with its modules'
bytecode compiled once beforehand (as an installed package has it, whatever
``PYTHONDONTWRITEBYTECODE`` says); a run reports the time the import statement
took, measured inside the interpreter, and the peak resident memory of the
process after it. The table keeps the median of each.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

STATEMENTS = {
    "polars": "import polars",
    "streamnet + actors": "import streamnet, actors",
}
"""What a table row imports: Polars alone is the floor streamnet builds on."""

TARGET_SECONDS = 0.25
TARGET_MIB = 100

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, resource, time
started = time.perf_counter()
{statement}
seconds = time.perf_counter() - started
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


def _once(statement: str, env: dict[str, str]) -> tuple[float, float]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(statement=statement)],
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
    # The first import of each writes its modules' bytecode where it can; later ones read it.
    env = _environment(bytecode=True)
    for statement in STATEMENTS.values():
        _once(statement, env)
    results = []
    for name, statement in STATEMENTS.items():
        runs = [_once(statement, env) for _ in range(repeats)]
        results.append(
            ImportResult(
                name,
                statement,
                statistics.median(s for s, _ in runs),
                statistics.median(m for _, m in runs),
            )
        )
    return results


def report(results: list[ImportResult]) -> str:
    lines = [
        f"median of fresh interpreters; target: `import streamnet, actors` under "
        f"{TARGET_SECONDS} s and {TARGET_MIB} MiB",
        "",
        "| import | seconds | peak MiB | target |",
        "|---|---:|---:|:---:|",
    ]
    for r in results:
        target = ""
        if r.name == "streamnet + actors":
            met = r.seconds < TARGET_SECONDS and r.peak_mib < TARGET_MIB
            target = "met" if met else "missed"
        lines.append(f"| `{r.statement}` | {r.seconds:.3f} | {r.peak_mib:.0f} | {target} |")
    return "\n".join(lines)
