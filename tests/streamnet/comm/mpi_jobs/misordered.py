"""Rank 0 makes an extra Context before the shared one: the ranks' epochs disagree.

Each rank reports the error it raised in one write: the ranks share the output pipe,
and a traceback, written piece by piece, interleaves with the other ranks' (a short
write to a pipe is never split)."""

import os
import sys

import polars as pl

import actors
from streamnet import Context, Network

first = Context()
ctx = Context() if first.rank == 0 else first  # rank 0's network runs in a later epoch
a, b = ctx.create_channel(), ctx.create_channel()
frame = pl.DataFrame({"k": range(10)})
try:
    Network(
        ctx,
        [actors.from_polars(ctx, a, frame), actors.shuffle(ctx, a, b, "k"), actors.collect(ctx, b)],
    ).run()
except Exception as exc:
    os.write(2, f"rank {first.rank} raised {type(exc).__name__}: {exc}\n".encode()[:4000])
    sys.exit(1)
print("finished although the ranks disagree", flush=True)
