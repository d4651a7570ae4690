from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

import actors
from streamnet import Context, Network


def _network(ctx: Context) -> Network:
    ch = ctx.create_channel()
    table = pa.table({"x": range(1000)})
    return Network(
        ctx, [actors.from_arrow(ctx, ch, table, chunk_rows=100), actors.collect(ctx, ch)]
    )


def test_progress_bar_appears_when_forced(capsys: pytest.CaptureFixture[str]) -> None:
    ctx = Context()
    _network(ctx).run(progress=True)
    err = capsys.readouterr().err
    assert "rows" in err
    assert "1.00k/1.00k" in err
    assert "100%" in err


def test_no_progress_bar_when_disabled_or_redirected(capsys: pytest.CaptureFixture[str]) -> None:
    _network(Context()).run(progress=False)
    _network(Context()).run()  # stderr is not a terminal here
    assert capsys.readouterr().err == ""


def test_sources_report_rows_against_their_totals(tmp_path: Path) -> None:
    ctx = Context()
    _network(ctx).run(progress=False)
    assert (ctx.progress.done, ctx.progress.total) == (1000, 1000)

    path = tmp_path / "t.parquet"
    pl.DataFrame({"k": range(10_000)}).write_parquet(path, row_group_size=1000)
    ctx = Context()
    ch = ctx.create_channel()
    Network(
        ctx,
        [actors.read_parquet(ctx, ch, path, filters=pl.col("k") >= 7500), actors.collect(ctx, ch)],
    ).run(progress=False)
    # Only the three row groups that can match are expected and read.
    assert (ctx.progress.done, ctx.progress.total) == (3000, 3000)

