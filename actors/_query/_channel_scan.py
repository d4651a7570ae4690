"""A Polars `LazyFrame` over a channel (`scan_channel`): Polars code that reads a stream.

The LazyFrame is a scan of Polars' IO-plugin kind (``register_io_source``), so that
Polars optimises a query over it as over any source: the columns the query reads
and its predicate are pushed into the scan. Its scan function is recorded here,
and the translator (`actors._query._plan`) recognises it in the optimised plan:
there the scan becomes the channel's stream, checked against the declared schema,
then the pushed projection, predicate and slice as plan steps. Polars itself never
runs it: collecting the LazyFrame with Polars raises, naming the channel.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
from polars.io.plugins import register_io_source

from streamnet import (
    Channel,
    Context,
    SchemaError,
    TableChunk,
    arrow_schema,
    define_actor,
    describe_schema,
    polars_types,
)

if TYPE_CHECKING:
    from streamnet import IntoSchema

__all__ = ["ChannelSource", "channel_source", "check_stream_schema", "scan_channel"]


@dataclass(frozen=True, eq=False)
class ChannelSource:
    """What a `scan_channel` LazyFrame reads: the channel, and the schema of its chunks."""

    channel: Channel[TableChunk]
    schema: pl.Schema

    def describe(self) -> str:
        return f"channel `{self.channel.name}`"

    def __call__(self, *_: Any) -> Iterator[pl.DataFrame]:
        """Polars' call to read the source: a query over a channel runs only as a network."""
        raise RuntimeError(
            f"scan_channel: this LazyFrame reads the stream of {self.describe()}, which only a "
            "network can give; run the query with `actors.from_polars_query` or "
            "`actors.collect_query_async` on the Context that made the channel, not with "
            "Polars' `collect`"
        )


_SOURCES: weakref.WeakKeyDictionary[Callable[..., Any], ChannelSource] = weakref.WeakKeyDictionary()
"""The scan functions of `scan_channel` LazyFrames, as Polars' plan holds them, to their
sources: kept as long as a plan holds the function."""


def scan_channel(ch: Channel[TableChunk], schema: IntoSchema) -> pl.LazyFrame:
    """A Polars LazyFrame whose rows are the stream of ``ch``, for `from_polars_query`.

    Polars code written against the LazyFrame (filters, joins, group-bys...)
    reads the chunks that hand-written actors send into ``ch``: in the network
    `from_polars_query` builds, the scan becomes ``ch`` itself, the columns the
    query needs and its predicate, which Polars' optimiser pushes into the
    scan, applied to each chunk as plan steps. On several ranks, each rank's
    ``ch`` holds its share of the rows, as every stream does. A query may read
    the LazyFrame more than once (a self-join): the stream is then fanned out.

    Parameters
    ----------
    ch
        The channel the query reads; nothing else may read it.
    schema
        The names and types of its chunks' columns (Polars or Arrow types); a
        chunk with another schema raises `SchemaError` naming the channel.

    Raises
    ------
    TypeError
        ``ch`` is not a channel, or ``schema`` is not a schema.

    Examples
    --------
    >>> from streamnet import Context, Network
    >>> from actors import collect, from_polars, from_polars_query, scan_channel
    >>> ctx = Context()
    >>> produced, out = ctx.create_channel(), ctx.create_channel()
    >>> source = from_polars(ctx, produced, pl.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]}))
    >>> stream = scan_channel(produced, {"k": pl.String, "v": pl.Int64})
    >>> query = stream.group_by("k").agg(pl.col("v").sum()).sort("k")
    >>> sink = collect(ctx, out, into="polars")
    >>> Network(ctx, [source, *from_polars_query(ctx, query, out), sink]).run()
    >>> sink.result().to_dicts()
    [{'k': 'a', 'v': 4}, {'k': 'b', 'v': 2}]
    """
    if not isinstance(ch, Channel):
        raise TypeError(f"scan_channel: `ch` must be a Channel, got {type(ch).__name__}")
    source = ChannelSource(ch, pl.Schema(polars_types(schema, where="scan_channel")))
    lazy_frame = register_io_source(source, schema=source.schema, is_pure=True)
    # The function Polars' plan holds (a wrapper of `source`), as the translator sees it.
    scan = lazy_frame._ldf.visit().view_current_node()  # noqa: SLF001
    _SOURCES[scan.options[0]] = source
    return lazy_frame


def channel_source(scan_function: Any) -> ChannelSource | None:
    """The source of a Python scan in Polars' plan, when it is a `scan_channel`'s; else None."""
    try:
        return _SOURCES.get(scan_function)
    except TypeError:  # not weakly referable: no function of ours
        return None


@define_actor
async def check_stream_schema(
    ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk], source: ChannelSource
) -> None:
    """Forward the stream of a `scan_channel`, each chunk checked to have its declared schema."""
    expected = arrow_schema(source.schema, where="scan_channel")
    want = [(field.name, field.type) for field in expected]
    while (msg := await ch_in.recv(ctx)) is not None:
        got = TableChunk.from_message(msg).schema
        if [(field.name, field.type) for field in got] != want:
            raise SchemaError(
                f"scan_channel: chunk {msg.sequence_number} of {source.describe()} does not have "
                f"the schema the LazyFrame declares, {describe_schema(expected)}; "
                f"got {describe_schema(got)}"
            )
        await ch_out.send(ctx, msg)
    await ch_out.drain(ctx)
