"""streamnet's per-chunk kernels run in a plain Python loop: the baseline for its overhead.

The loop runs the kernels the actors run on one rank (the CPU backend's),
chunk after chunk in the calling thread, with no actors, channels, messages
or thread pool. ``(streamnet time - loop time) / loop time`` is then what the
actor network costs over its kernels; it can be negative, because the network
overlaps one chunk's scan with another's aggregation and the loop does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from streamnet import Agg, TableChunk, backend_for

__all__ = ["groupby_loop", "overhead"]

AggSpec = Agg | tuple[str | None, str] | tuple[str | None, str, str]


def groupby_loop(
    frames: Iterable[pl.DataFrame], keys: Sequence[str], aggs: Sequence[AggSpec]
) -> pl.DataFrame:
    """What ``actors.groupby_agg`` computes on one rank, as a loop over ``frames``.

    The CPU backend's aggregation kernel (`Backend.aggregation`), made for the
    first frame's schema: each frame becomes partials (grouped with Polars'
    streaming engine or, once chunks prove to have about as many groups as
    rows, one per row); at the end the partials are concatenated and finished,
    cast to the result's schema. ``first``/``last`` (which need the stream's
    order columns) are not mirrored.
    """
    items = Agg.normalise(aggs, where="groupby_loop")
    if any(a.follows_order for a in items):
        raise ValueError("groupby_loop mirrors the unordered aggregations only")
    backend = backend_for("cpu")
    kernel = None
    held: list[pl.DataFrame] = []
    for frame in frames:
        chunk = TableChunk.from_polars(frame)
        if kernel is None:
            kernel = backend.aggregation(keys, items, chunk.schema, ordered=False)
        out = kernel.partial(chunk)
        if out.num_rows:
            held.append(out.to_polars())
    if kernel is None:
        raise ValueError("groupby_loop: no chunks")
    if not held:
        return kernel.finish(backend.empty(kernel.partial_schema)).to_polars()
    whole = pl.concat(held, how="vertical", rechunk=False) if len(held) > 1 else held[0]
    return kernel.finish(TableChunk.from_polars(whole)).to_polars()


def overhead(streamnet_seconds: float, loop_seconds: float) -> str:
    """``(streamnet - loop) / loop`` as a signed percentage."""
    return f"{(streamnet_seconds - loop_seconds) / loop_seconds:+.0%}"
