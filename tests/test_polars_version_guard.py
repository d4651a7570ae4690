"""The Polars-compatibility run can never silently test the venv's Polars instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _collect_with(expected: str) -> subprocess.CompletedProcess[str]:
    """Collect a small test module in a fresh pytest, expecting Polars ``expected``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--co",
            "-p",
            "no:cacheprovider",
            "tests/test_exports.py",
        ],
        cwd=ROOT,
        env={**os.environ, "STREAMNET_EXPECT_POLARS": expected},
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.timeout(120)
def test_a_run_expecting_another_polars_fails_at_start_naming_both() -> None:
    done = _collect_with("0.0.1")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert (
        f"STREAMNET_EXPECT_POLARS is 0.0.1, but the tests import polars {pl.__version__}"
        in done.stderr
    )


@pytest.mark.timeout(120)
def test_a_run_expecting_the_polars_it_imports_goes_on() -> None:
    done = _collect_with(pl.__version__)
    assert done.returncode == pytest.ExitCode.OK, done.stdout + done.stderr
