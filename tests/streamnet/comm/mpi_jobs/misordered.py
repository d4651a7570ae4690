"""Rank 0 makes an extra Context before the shared one: the ranks' epochs disagree."""

import polars as pl

import actors
from streamnet import Context, Network

first = Context()
ctx = Context() if first.rank == 0 else first  # rank 0's network runs in a later epoch
a, b = ctx.create_channel(), ctx.create_channel()
frame = pl.DataFrame({"k": range(10)})
Network(
    ctx, [actors.from_polars(ctx, a, frame), actors.shuffle(ctx, a, b, "k"), actors.collect(ctx, b)]
).run()
print("finished although the ranks disagree", flush=True)
