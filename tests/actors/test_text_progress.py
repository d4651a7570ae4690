"""Text sources (CSV, NDJSON) on the progress bar: sized in bytes, their rows estimated."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from bounded import run_ranks_within

import actors
from streamnet import Channel, Context, Network, TableChunk, define_actor


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
@pytest.mark.parametrize("nranks", [1, 2])
def test_text_sources_report_their_bytes_and_the_rows_they_make(
    tmp_path: Path, fmt: str, nranks: int
) -> None:
    """A text source knows its bytes, not its rows: it reports the bytes of its share,
    block by block, so that the total rows are estimated as it reads, and exact at the end."""
    frame = pl.DataFrame({"k": range(20_000), "s": [f"value {i}" for i in range(20_000)]})
    path = tmp_path / f"t.{fmt}"
    frame.write_csv(path) if fmt == "csv" else frame.write_ndjson(path)
    read = actors.read_csv if fmt == "csv" else actors.read_ndjson
    estimates: dict[int, list[int | None]] = {}

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        seen = estimates.setdefault(ctx.rank, [])

        @define_actor
        async def watch(ctx: Context, ch_in: Channel[TableChunk]) -> None:
            while await ch_in.recv(ctx) is not None:
                seen.append(ctx.progress.estimated_total)

        await Network(ctx, [read(ctx, ch, path, block_size=16_384), watch(ctx, ch)]).run_async(
            progress=False
        )
        if nranks == 1:
            assert ctx.progress.bytes_total == path.stat().st_size
        assert ctx.progress.bytes_done == ctx.progress.bytes_total > 0  # its share, all read
        assert ctx.progress.estimated_total == ctx.progress.done

    run_ranks_within(60, nranks, job)
    rows = [estimates[r] for r in range(nranks)]
    assert sum(len(seen) for seen in rows) > 2 * nranks  # several blocks per rank
    # Estimated while reading (a number, not None, from the first chunk on).
    assert all(e is not None and e > 0 for seen in rows for e in seen)
