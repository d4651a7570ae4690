"""streamnet's per-chunk kernels run in a plain Python loop: the baseline for its overhead.

The loop makes the same Polars calls the actors make on one rank, chunk after
chunk in the calling thread, with no actors, channels, messages, TableChunks
or thread pool. ``(streamnet time - loop time) / loop time`` is then what the
actor network costs over its kernels; it can be negative, because the network
overlaps one chunk's scan with another's aggregation and the loop does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from actors._groupby import AggSpec, _final_group, _partials, _row_partials, normalise_aggs

__all__ = ["groupby_loop", "overhead"]


def groupby_loop(
    frames: Iterable[pl.DataFrame], keys: Sequence[str], aggs: Sequence[AggSpec]
) -> pl.DataFrame:
    """What ``actors.groupby_agg`` computes on one rank, as a loop over ``frames``.

    Per chunk: select the needed columns, aggregate them into partials with
    Polars' streaming engine (or, once chunks prove to have about as many
    groups as rows, turn each row into a partial of its own); at the end:
    concatenate the partials and finish the groups, cast to the result's schema.
    ``first``/``last``/``n_unique`` (which take other paths) are not mirrored.
    """
    key_cols = list(keys)
    items = normalise_aggs(aggs)
    if any(a.how in ("first", "last", "n_unique") for a in items):
        raise ValueError("groupby_loop mirrors the partial-aggregate path only")
    columns = sorted({a.column for a in items if a.column is not None})
    needed = [*key_cols, *[c for c in columns if c not in key_cols]]
    partials, row_partials = _partials(items), _row_partials(items)
    grouping = True
    held: list[pl.DataFrame] = []
    empty: pl.DataFrame | None = None
    for frame in frames:
        frame = frame.select(needed)
        if empty is None:
            empty = frame.head(0)
        if grouping:
            out = frame.lazy().group_by(key_cols).agg(partials).collect(engine="streaming")
            if frame.height >= 10_000 and out.height > frame.height // 2:
                grouping = False
        else:
            out = frame.select(*[pl.col(k) for k in key_cols], *row_partials)
        if out.height:
            held.append(out)
    if empty is None:
        raise ValueError("groupby_loop: no chunks")
    schema = empty.group_by(key_cols).agg([a.polars() for a in items]).schema
    if not held:
        return pl.DataFrame(schema=schema)
    whole = pl.concat(held, how="vertical_relaxed", rechunk=False) if len(held) > 1 else held[0]
    return _final_group(whole, key_cols, items, schema)


def overhead(streamnet_seconds: float, loop_seconds: float) -> str:
    """``(streamnet - loop) / loop`` as a signed percentage."""
    return f"{(streamnet_seconds - loop_seconds) / loop_seconds:+.0%}"
