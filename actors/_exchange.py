"""Moving data between ranks for the collective actors: hash partitioning and exchanges.

An exchange takes this rank's frames, cuts each into partitions as it arrives
(never concatenating the input), keeps the pieces of the partitions this rank
owns and sends the others to their owners, then waits until every rank said it
is done. Partition ``p`` belongs to rank ``p % nranks``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

import polars as pl
import pyarrow as pa

from actors._columns import ColumnCheck
from streamnet import (
    Backend,
    Channel,
    Collective,
    CollectiveTraffic,
    Context,
    TableChunk,
    Tag,
    map_in_threads,
    start_task,
    stop_tasks,
)

__all__ = [
    "ExchangeReport",
    "InputSchema",
    "Partitioner",
    "Partitions",
    "chunks_of",
    "exchange",
    "frames_of",
    "hash_partition",
    "map_in_threads",
    "owner",
    "stop_tasks",
]

Partitioner = Callable[[pl.DataFrame], dict[int, pl.DataFrame]]
"""Cuts a frame into pieces by partition id."""

_DONE = None
_SENDS_IN_FLIGHT = 8  # pieces being sent at once by one exchange


def owner(partition: int, nranks: int) -> int:
    """The rank that owns ``partition`` (round-robin)."""
    return partition % nranks


class InputSchema:
    """The schema of a collective's input stream: this rank's, then every rank's.

    A collective shows it each chunk it receives (``seen``); ``agree`` then
    checks that every rank's input has one schema (a `SchemaError` otherwise)
    and gives it to every rank, also to one whose stream had no chunk at all.
    """

    def __init__(self, channel: Channel[TableChunk]) -> None:
        self.channel = channel.name
        self.local: pa.Schema | None = None

    def seen(self, chunk: TableChunk) -> None:
        """Note ``chunk``'s schema if it is the first chunk (a schema, no data)."""
        if self.local is None:
            self.local = chunk.schema

    async def agree(self, coll: Collective, tag: Tag = ()) -> pl.DataFrame | None:
        """An empty frame with the input's schema on every rank; None if no rank had a chunk.
        ``tag`` tells apart the inputs of one collective."""
        schema = await coll.agree_schema(tag, self.local, channel=self.channel)
        return None if schema is None else empty_frame(schema)


def empty_frame(schema: pa.Schema) -> pl.DataFrame:
    """An empty Polars frame of an Arrow schema."""
    return TableChunk.from_arrow(schema.empty_table()).to_polars()


async def chunks_of(
    ctx: Context,
    ch_in: Channel[TableChunk],
    needed: Sequence[str] = (),
    *,
    where: str = "",
    order: bool = False,
    schema: InputSchema | None = None,
) -> AsyncIterator[tuple[int, pl.DataFrame]]:
    """``(sequence number, frame)`` of a stream, checking once per schema that ``needed`` columns exist.

    With ``order``, each frame gains ``__rank`` and ``__seq`` columns: with the
    row order inside a frame they give the global order of a multi-rank stream
    (rank, then sequence number), which first/last/keep="first" rely on.
    ``schema`` notes the stream's schema.
    """
    check = ColumnCheck(needed, where=where)
    while (msg := await ch_in.recv(ctx)) is not None:
        chunk = TableChunk.from_message(msg)
        check.chunk(chunk)
        if schema is not None:
            schema.seen(chunk)
        frame = chunk.to_polars()
        if order:
            frame = frame.with_columns(
                pl.lit(ctx.rank, pl.Int64).alias("__rank"),
                pl.lit(msg.sequence_number, pl.Int64).alias("__seq"),
            )
        yield msg.sequence_number, frame


async def frames_of(
    ctx: Context,
    ch_in: Channel[TableChunk],
    needed: Sequence[str] = (),
    *,
    where: str = "",
    order: bool = False,
    schema: InputSchema | None = None,
) -> AsyncIterator[pl.DataFrame]:
    """The frames of a stream (see :func:`chunks_of`)."""
    async for _, frame in chunks_of(ctx, ch_in, needed, where=where, order=order, schema=schema):
        yield frame


def hash_partition(
    backend: Backend, df: pl.DataFrame, keys: Sequence[str], partitions: int
) -> dict[int, pl.DataFrame]:
    """Rows of ``df`` by partition, as the backend's `Backend.hash_partition` cuts them.

    Rows with equal keys land in the same partition on every rank; null keys too.
    Empty partitions are left out.
    """
    pieces = backend.hash_partition(TableChunk.from_polars(df), keys, partitions)
    return {partition: piece.to_polars() for partition, piece in pieces.items()}


def _spill_all(ctx: Context, chunks: Sequence[TableChunk]) -> None:
    for chunk in chunks:
        chunk.spill(ctx.spills)


ExchangeReport = CollectiveTraffic
"""Traffic of one exchange on this rank (bytes per peer, peak held, spilled)."""


class Partitions:
    """The pieces of the partitions this rank owns, kept as TableChunks (spillable)."""

    def __init__(self, owned: Sequence[int], max_buffered_bytes: int | None) -> None:
        self.pieces: dict[int, list[TableChunk]] = {p: [] for p in owned}
        self.max_buffered_bytes = max_buffered_bytes
        self.buffered = 0
        self.report = ExchangeReport()
        self._leaving: set[TableChunk] = set()  # chosen to spill: no longer counted as held

    async def add(self, ctx: Context, partition: int, piece: TableChunk) -> None:
        """Hold ``piece``; beyond the bound, spill the largest pieces (in a thread)."""
        self.pieces[partition].append(piece)
        self.buffered += piece.nbytes
        if self.buffered > self.report.peak_buffered_bytes:
            self.report.peak_buffered_bytes = self.buffered
        if self.max_buffered_bytes is not None and self.buffered > self.max_buffered_bytes:
            victims = self._choose_victims()
            await ctx.to_thread(_spill_all, ctx, victims)

    def _choose_victims(self) -> list[TableChunk]:
        """The largest in-memory pieces whose spilling brings the buffer within its bound.

        They are counted as spilled at once, so that concurrent adds choose others.
        """
        assert self.max_buffered_bytes is not None
        resident = sorted(
            (
                c
                for cs in self.pieces.values()
                for c in cs
                if not c.is_spilled and c not in self._leaving
            ),
            key=lambda c: c.nbytes,
            reverse=True,
        )
        victims = []
        for chunk in resident:
            if self.buffered <= self.max_buffered_bytes:
                break
            victims.append(chunk)
            self._leaving.add(chunk)
            self.buffered -= chunk.nbytes
            self.report.spilled_bytes += chunk.nbytes
        return victims

    def take(self, partition: int) -> pl.DataFrame | None:
        """The whole partition as one frame (loading spilled pieces), or None if it is empty.

        Pieces are concatenated as they are, never cast: they share one schema.
        """
        chunks = self.pieces.pop(partition, [])
        frames = [c.to_polars() for c in chunks if c.num_rows]
        for chunk in chunks:
            if chunk in self._leaving:
                self._leaving.discard(chunk)
            else:
                self.buffered -= chunk.nbytes
        if not frames:
            return None
        return pl.concat(frames, how="vertical", rechunk=False) if len(frames) > 1 else frames[0]


async def exchange(
    ctx: Context,
    coll: Collective,
    frames: AsyncIterator[pl.DataFrame],
    partitioner: Partitioner,
    partitions: int,
    phase: str,
    *,
    owner_of: Callable[[int, int], int] = owner,
    max_buffered_bytes: int | None = None,
) -> Partitions:
    """Cut ``frames`` with ``partitioner`` and gather each owned partition from every rank.

    ``phase`` tells apart several exchanges of one collective (the two sides of
    a join); ``owner_of(partition, nranks)`` says which rank holds a partition.
    Memory: input is partitioned frame by frame; owned pieces are held until
    every rank is done, spilled beyond ``max_buffered_bytes``.
    """
    owned = [p for p in range(partitions) if owner_of(p, coll.nranks) == coll.rank]
    held = Partitions(owned, max_buffered_bytes)

    async def receive(peer: int) -> None:
        while (item := await coll.recv(peer, phase)) is not _DONE:
            partition, table = item
            chunk = TableChunk.from_arrow(table)
            held.report.bytes_received[peer] = (
                held.report.bytes_received.get(peer, 0) + chunk.nbytes
            )
            await held.add(ctx, partition, chunk)

    receivers = [start_task(receive(peer)) for peer in coll.peers]
    sending: set[asyncio.Future[None]] = set()

    async def send(dest: int, partition: int, piece: pl.DataFrame) -> None:
        table = await ctx.to_thread(piece.to_arrow)
        held.report.bytes_sent[dest] = held.report.bytes_sent.get(dest, 0) + table.nbytes
        await coll.send(dest, phase, (partition, table))

    try:
        async for frame in frames:
            if partitions == 1 and coll.nranks == 1:  # nothing to cut or send
                await held.add(ctx, 0, TableChunk.from_polars(frame))
                continue
            pieces = await ctx.to_thread(partitioner, frame)
            for partition, piece in pieces.items():
                dest = owner_of(partition, coll.nranks)
                if dest == coll.rank:
                    await held.add(ctx, partition, TableChunk.from_polars(piece))
                else:
                    # Pieces go out while the next frame is cut; at most a few frames'
                    # worth are in flight, so memory stays bounded.
                    while len(sending) >= _SENDS_IN_FLIGHT:
                        done, _ = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
                        sending.difference_update(done)
                        for task in done:
                            task.result()
                    sending.add(start_task(send(dest, partition, piece)))
        if sending:  # every piece is out before the end marker
            await asyncio.gather(*sending)
            sending.clear()
        for peer in coll.peers:
            await coll.send(peer, phase, _DONE)
        await asyncio.gather(*receivers)
    finally:
        await stop_tasks(ctx, (*receivers, *sending))
    return held
