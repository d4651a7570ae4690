"""The public API's types, as a user's type checker sees them: mypy checks the files here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mypy_infers_the_stated_types() -> None:
    """``check_*.py`` state with ``assert_type`` what mypy infers (node results, channel
    payloads, overloads); a wrong type, or a type error, fails here."""
    files = sorted(str(path.relative_to(ROOT)) for path in HERE.glob("check_*.py"))
    assert files
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
