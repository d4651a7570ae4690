"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {})


def test_readme_has_examples() -> None:
    assert BLOCKS


def test_ci_runs_the_readmes_test_command_which_ends_with_the_polars_compat_run() -> None:
    """What a reader runs is what CI runs: `make test`, the Polars 1.44 part included."""
    root = README.parent
    setup = re.search(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    assert setup is not None
    commands = [line.split("#")[0].strip() for line in setup.group(1).splitlines()]
    assert "make test" in commands
    ci = [
        line
        for line in (root / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == ["make test"]
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", (root / "Makefile").read_text(), flags=re.M)
    assert recipe is not None
    assert "test-polars-compat" in recipe.group(1).splitlines()[-1]
