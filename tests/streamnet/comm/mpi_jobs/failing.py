"""A shuffle in which one rank fails part way: ``failing.py raise|exit|early``.

``raise``: rank 1 raises in an actor; ``exit``: rank 1 dies at once (os._exit);
``early``: rank 1 raises before it builds any network.
"""

import asyncio
import os
import sys
from typing import Any

import polars as pl

import actors
from streamnet import Channel, Context, Message, Network, TableChunk, define_actor

MODE = sys.argv[1]


@define_actor
async def chunks_then_fail(ctx: Context, ch_out: Channel[Any]) -> None:
    for seq in range(1000):
        if ctx.rank == 1 and seq == 5:
            if MODE == "exit":
                os._exit(3)
            raise ValueError(f"bad record on rank {ctx.rank}")
        frame = pl.DataFrame({"k": [seq % 5], "v": [seq]})
        await ch_out.send(ctx, Message(seq, TableChunk.from_polars(frame)))
        await asyncio.sleep(0.01)  # a stream in progress: the peers are mid-shuffle when it fails


with Context() as ctx:
    if MODE == "early" and ctx.rank == 1:
        raise RuntimeError("could not open the input on rank 1")
    a, b = ctx.create_channel(), ctx.create_channel()
    Network(
        ctx, [chunks_then_fail(ctx, a), actors.shuffle(ctx, a, b, "k"), actors.collect(ctx, b)]
    ).run()
    print("finished without the failure", flush=True)
