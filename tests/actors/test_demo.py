"""The demo job runs end to end (small data) and agrees with Polars, from the CLI and as a module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors.demo import lineitem, polars_reference, run_demo
from streamnet._cli import main


def test_demo_matches_polars_and_prints_statistics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_demo(rows=60_000, data_dir=str(tmp_path))
    out = capsys.readouterr().out
    assert "same answer as Polars: yes" in out
    assert "read_parquet#0" in out and "groupby_agg#0" in out and "sort#0" in out
    assert result.height == 3
    assert (
        result["count_order"].sum()
        == polars_reference(lineitem(60_000, tmp_path))["count_order"].sum()
    )


def test_generated_data_is_cached(tmp_path: Path) -> None:
    first = lineitem(1000, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert lineitem(1000, tmp_path) == first
    assert first.stat().st_mtime_ns == stamp


def test_cli_demo_and_help(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--rows", "5000", "--data-dir", str(tmp_path)]) == 0
    assert "same answer as Polars: yes" in capsys.readouterr().out
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


@pytest.mark.timeout(60)
def test_the_demo_runs_as_a_module(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    path = os.environ.get("PYTHONPATH")
    done = subprocess.run(
        [sys.executable, "-m", "actors.demo", "--rows", "5000", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=root,
        # The caller's PYTHONPATH stays after the root: it may shadow Polars (compat run).
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), path]))},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "same answer as Polars: yes" in done.stdout
