"""Polars queries as networks: ``from_polars_query`` and its one-line form ``collect_query``."""

from __future__ import annotations

from typing import Any

import polars as pl

from actors._allgather import allgather
from actors._collect import collect
from actors._query._build import QueryNetwork, build
from actors._query._plan import read_plan
from streamnet import Channel, Context, Network, TableChunk

__all__ = ["collect_query", "collect_query_async", "from_polars_query"]


def from_polars_query(
    ctx: Context, lazy_frame: pl.LazyFrame, ch_out: Channel[TableChunk]
) -> QueryNetwork:
    """The actors that compute a Polars query into ``ch_out``, on every rank of ``ctx``.

    Polars optimises the query first (predicate and projection pushdown, common
    subplans, its choice of joins), and the optimised plan is expanded into
    library actors: Parquet scans become ``read_parquet`` with the columns and
    predicate pushed into them, CSV and NDJSON scans ``read_csv`` and
    ``read_ndjson`` with the types Polars gives their columns, a
    `scan_channel` the stream of its channel, in-memory frames sources that
    split their rows between ranks; filters, projections and ``with_columns`` plan steps (which the
    Network fuses); ``group_by().agg()`` a projection, ``groupby_agg`` (sum, count,
    len, mean, min, max, n_unique, std, var, first, last, from partials) and the
    expressions over the aggregates; joins ``join`` (inner, left, right, full,
    semi, anti; a cross join, and a cross join and filter, as a join on a
    constant), broadcasting or shuffling from the sizes it sees (on several
    ranks an inner join reads first, and so broadcasts, the side whose rows are
    guessed fewer from the files' footers); sorts ``sort``,
    a sort and head ``top_k``; ``unique`` ``distinct``; ``concat``; ``explode``
    and ``unpivot`` per chunk; a subplan used twice is computed once (a large scan
    whose two uses meet again at a join is read twice: one side would wait for it
    whole).

    Across ranks, the chunks of ``ch_out`` are the result's rows, each on one
    rank; where the query orders its rows (a sort), rank order then sequence
    order is that order (``allgather`` gathers it so).

    What does not distribute runs on rank 0 through Polars, its inputs gathered
    there: a slice of the whole stream (``head`` without a sort), a stable sort,
    ``with_row_index``, a ``unique`` that keeps order, an expression that reads
    several rows (``x > x.mean()``). A node or expression the translator does not
    know makes Polars run the whole query above it on rank 0, with the parts
    below it that do distribute computed as actors. Each such choice is logged
    on the ``streamnet.query`` logger and listed in ``fallbacks``.

    Not carried over: a join's ``validate=`` (Polars' plan does not show it to
    other engines, so keys that break the promise give rows instead of an
    error), and columns of 128-bit integers (Arrow has no such type: a query
    that makes one, ``UInt64 * Int64`` say, raises `SchemaError` naming it).

    Returns
    -------
    QueryNetwork
        The actors (iterate it, ``[*query, sink]``, to put them in a `Network`),
        and ``fallbacks``: what runs on rank 0 through Polars, and why.

    Raises
    ------
    NotImplementedError
        Polars describes its plan in a version the translator does not know.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars_query
    >>> frame = pl.LazyFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})
    >>> query = frame.filter(pl.col("v") > 1).group_by("k").agg(pl.col("v").sum()).sort("k")
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> sink = collect(ctx, ch, into="polars")
    >>> Network(ctx, [*from_polars_query(ctx, query, ch), sink]).run()
    >>> sink.result().to_dicts()
    [{'k': 'a', 'v': 3}, {'k': 'b', 'v': 2}]
    """
    if not isinstance(lazy_frame, pl.LazyFrame):
        raise TypeError(
            f"from_polars_query: `lazy_frame` must be a polars.LazyFrame, got {type(lazy_frame).__name__}"
        )
    root, _ = read_plan(lazy_frame)
    return build(ctx, root, lazy_frame, ch_out)


async def collect_query_async(ctx: Context, lazy_frame: pl.LazyFrame) -> pl.DataFrame:
    """Run a Polars query as a network on ``ctx``'s ranks; every rank returns the whole result.

    The form for async code, and for ranks that a test starts in one process
    (`streamnet.run_ranks`); see :func:`collect_query`.
    """
    ch, gathered = ctx.create_channel(), ctx.create_channel()
    query = from_polars_query(ctx, lazy_frame, ch)
    sink = collect(ctx, gathered, into="polars")
    network = Network(ctx, [*query, allgather(ctx, ch, gathered), sink], name="polars_query")
    await network.run_async(progress=False)
    result: pl.DataFrame = sink.result()
    return result


def collect_query(lazy_frame: pl.LazyFrame, **context_options: Any) -> pl.DataFrame:
    """Run a Polars query as a network, distributed over the ranks it was started on.

    The one-line form of :func:`from_polars_query`: ``collect_query(lf)`` in a
    script gives what ``lf.collect()`` gives, run by streamnet's actors on a
    Context of its own (``context_options`` go to it). Under
    ``streamnet run -n 4 script.py`` the same line runs on 4 ranks, and every
    rank returns the whole result.

    Examples
    --------
    >>> from actors import collect_query
    >>> frame = pl.LazyFrame({"x": [3, 1, 2]})
    >>> collect_query(frame.sort("x"))["x"].to_list()
    [1, 2, 3]
    """
    with Context(**context_options) as ctx:
        ch, gathered = ctx.create_channel(), ctx.create_channel()
        query = from_polars_query(ctx, lazy_frame, ch)
        sink = collect(ctx, gathered, into="polars")
        network = Network(ctx, [*query, allgather(ctx, ch, gathered), sink], name="polars_query")
        network.run(progress=False)
        result: pl.DataFrame = sink.result()
        return result
