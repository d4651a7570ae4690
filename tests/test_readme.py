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
