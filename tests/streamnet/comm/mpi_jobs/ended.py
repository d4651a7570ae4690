"""Rank 0's script ends while rank 1 runs one more shuffle: ``ended.py first|second``.

``first``: rank 0 runs no network at all; ``second``: both ranks run one shuffle
together (all its messages arrive), then rank 1 alone runs another. Rank 1 must
fail naming rank 0, not wait for it for ever.
"""

import sys

import polars as pl

import actors
from streamnet import Context, Network

MODE = sys.argv[1]
frame = pl.DataFrame({"k": range(10)})


def shuffled(ctx: Context) -> int:
    a, b = ctx.create_channel(), ctx.create_channel()
    out = actors.collect(ctx, b, into="polars")
    Network(ctx, [actors.from_polars(ctx, a, frame), actors.shuffle(ctx, a, b, "k"), out]).run()
    return int(out.result().height)


with Context() as ctx:
    if MODE == "second":
        print(f"rank {ctx.rank}: first shuffle gave {shuffled(ctx)} rows", flush=True)
    if ctx.rank == 1:
        shuffled(ctx)
        print("rank 1 finished without rank 0", flush=True)
    print(f"rank {ctx.rank} done", flush=True)
