"""The demo job behind ``streamnet demo``."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from channels import Channel, Message
from streamnet._actor import define_actor
from streamnet._context import Context
from streamnet._network import Network
from streamnet._table_chunk import TableChunk


def _generate(rows: int, chunk_rows: int, seed: int = 0) -> list[pa.Table]:
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, rows, chunk_rows):
        n = min(chunk_rows, rows - start)
        chunks.append(
            pa.table(
                {
                    "flag": rng.choice(np.array(["A", "N", "R"]), n),
                    "quantity": rng.integers(1, 51, n),
                    "price": rng.uniform(900.0, 105_000.0, n).round(2),
                    "discount": rng.integers(0, 11, n) / 100,
                }
            )
        )
    return chunks


@define_actor
async def _source(ctx: Context, ch_out: Channel[TableChunk], chunks: list[pa.Table]) -> None:
    for seq, table in enumerate(chunks):
        await ch_out.send(ctx, Message(seq, TableChunk.from_arrow(table)))
    await ch_out.drain(ctx)


@define_actor
async def _discounted(
    ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk]
) -> None:
    def kernel(table: pa.Table) -> pa.Table:
        keep = table.filter(pc.greater(table["discount"], 0.04))
        revenue = pc.multiply(keep["price"], pc.subtract(1, keep["discount"]))
        return keep.append_column("revenue", revenue)

    while (msg := await ch_in.recv(ctx)) is not None:
        out = await ctx.to_thread(kernel, TableChunk.from_message(msg).to_arrow())
        await ch_out.send(ctx, Message(msg.sequence_number, TableChunk.from_arrow(out)))
    await ch_out.drain(ctx)


@define_actor
async def _aggregate(ctx: Context, ch_in: Channel[TableChunk], result: list[pa.Table]) -> None:
    partials = []
    while (msg := await ch_in.recv(ctx)) is not None:
        table = TableChunk.from_message(msg).to_arrow()
        partials.append(
            await ctx.to_thread(
                lambda t: t.group_by("flag").aggregate([("revenue", "sum"), ("quantity", "sum")]),
                table,
            )
        )
    merged = (
        pa.concat_tables(partials)
        .group_by("flag")
        .aggregate([("revenue_sum", "sum"), ("quantity_sum", "sum")])
    )
    result.append(merged.sort_by("flag"))


def run_demo(*, rows: int | None = None, data_dir: str | None = None) -> None:
    """Generate data, run the pipeline, print the result and per-actor statistics."""
    rows = rows or 2_000_000
    chunks = _generate(rows, 100_000)
    result: list[pa.Table] = []
    with Context() as ctx:
        raw: Channel[TableChunk] = ctx.create_channel(TableChunk, name="raw")
        kept: Channel[TableChunk] = ctx.create_channel(TableChunk, name="discounted")
        network = Network(
            ctx,
            [_source(ctx, raw, chunks), _discounted(ctx, raw, kept), _aggregate(ctx, kept, result)],
            name="demo",
        )
        start = time.perf_counter()
        network.run()
        elapsed = time.perf_counter() - start
    print(f"revenue by flag over {rows:,} rows ({elapsed:.2f} s):")
    print(TableChunk.from_arrow(result[0]).to_polars())
    print()
    print(network.statistics())
