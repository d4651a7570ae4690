"""The README's Python examples run as written and show what they say they show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
PRINTS = re.compile(r"#\s*prints\s+(.+?)\s*$", flags=re.M)
"""A comment ``# prints X`` promises that the example prints the line ``X``."""


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_prints_what_it_promises(
    index: int, capsys: pytest.CaptureFixture[str]
) -> None:
    block = BLOCKS[index]
    exec(compile(block, f"README.md[python block {index}]", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    for promised in PRINTS.findall(block):
        assert promised in printed, f"README block {index} promises {promised!r}; it printed {printed}"


def test_every_readme_example_checks_what_it_shows() -> None:
    """An example without an ``assert`` or a ``# prints`` comment would run unchecked."""
    assert BLOCKS
    unchecked = [i for i, block in enumerate(BLOCKS) if "assert " not in block and not PRINTS.search(block)]
    assert unchecked == []


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
