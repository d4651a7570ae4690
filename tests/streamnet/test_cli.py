from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from streamnet._cli import main

JOB = textwrap.dedent(
    """
    import sys
    import polars as pl
    import actors
    from streamnet import Context, Network

    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    net = Network(ctx, [
        actors.from_polars(ctx, a, pl.DataFrame({"x": [1, 2]})),
        actors.filter(ctx, a, b, pl.col("x") > int(sys.argv[1])),
        actors.collect(ctx, b),
    ], name="my job")
    net.run()
    raise SystemExit("the network must not run while being drawn")
    """
)


def test_graph_writes_the_picture_of_a_job_without_running_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.py"
    job.write_text(JOB)
    assert (
        main(["graph", "-o", str(tmp_path / "net.svg"), "--engine", "python", str(job), "1"]) == 0
    )
    svg = (tmp_path / "net.svg").read_text()
    assert "filter#0" in svg and "collect#0" in svg
    assert "network `my job` (3 actors)" in capsys.readouterr().out
    assert main(["graph", "--output", str(tmp_path / "net.dot"), str(job), "1"]) == 0
    assert (tmp_path / "net.dot").read_text().startswith('digraph "my job"')


def test_graph_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.py` does not exist"):
        main(["graph", str(tmp_path / "nope.py")])
    idle = tmp_path / "idle.py"
    idle.write_text("x = 1\n")
    with pytest.raises(RuntimeError, match="finished without running a network"):
        main(["graph", str(idle)])


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "graph", "bench"):
        assert command in out


def test_bench_quick_runs_from_the_checkout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "hop", "--quick"]) == 0
