"""The demo job runs end to end (small data) and agrees with Polars."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamnet.__main__ import main
from streamnet._demo import lineitem, polars_reference, run_demo


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
