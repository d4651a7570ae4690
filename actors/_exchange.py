"""Moving data between ranks for the collective actors: hash partitioning and exchanges.

An exchange takes this rank's frames, cuts each into partitions as it arrives
(never concatenating the input), keeps the pieces of the partitions this rank
owns and sends the others to their owners, then waits until every rank said it
is done. Partition ``p`` belongs to rank ``p % nranks``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from actors._columns import ColumnCheck
from streamnet import Channel, Collective, CollectiveTraffic, Context, TableChunk, start_task

__all__ = [
    "ExchangeReport",
    "InputSchema",
    "Partitioner",
    "Partitions",
    "canonical_keys",
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

SEED = 0x5EED
_DONE = None
_SENDS_IN_FLIGHT = 8  # pieces being sent at once by one exchange


async def stop_tasks(ctx: Context, tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until they ended, at most the Context's ``cancel_grace``.

    So that nothing they run (a kernel, a spill) outlives the collective that
    started them, and the run's spill release after it. A kernel that outlives
    its cancellation lets its task end after that long too (`Context.to_thread`).
    The caller's own cancellation meanwhile (it often comes right after the
    failure that brought it here) does not cut the wait short: it is raised after.
    """
    left = {task for task in tasks if not task.done()}
    for task in left:
        task.cancel()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.cancel_grace
    cancelled: asyncio.CancelledError | None = None
    while left and (remaining := deadline - loop.time()) > 0:
        try:
            _, left = await asyncio.wait(left, timeout=remaining)
        except asyncio.CancelledError as exc:
            cancelled = exc
            left = {task for task in left if not task.done()}
    if cancelled is not None:
        raise cancelled


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

    async def agree(self, coll: Collective, *parts: str) -> pl.DataFrame | None:
        """An empty frame with the input's schema on every rank; None if no rank had a chunk."""
        schema = await coll.agree_schema(self.local, *parts, channel=self.channel)
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


async def map_in_threads(
    ctx: Context,
    frames: AsyncIterator[pl.DataFrame],
    fn: Callable[[pl.DataFrame], pl.DataFrame],
    *,
    depth: int,
) -> AsyncIterator[pl.DataFrame]:
    """``fn`` over ``frames`` in the thread pool, up to ``depth`` at once, results in order."""
    pending: deque[asyncio.Future[pl.DataFrame]] = deque()
    try:
        async for frame in frames:
            pending.append(start_task(ctx.to_thread(fn, frame)))
            if len(pending) >= depth:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        await stop_tasks(ctx, pending)


def canonical_keys(df: pl.DataFrame, keys: Sequence[str]) -> list[pl.Expr]:
    """Key expressions cast so that equal values hash alike whatever their width (Int32/Int64...)."""
    exprs = []
    for key in keys:
        dtype = df.schema[key]
        expr = pl.col(key)
        if dtype.is_signed_integer():
            expr = expr.cast(pl.Int64)
        elif dtype.is_unsigned_integer():
            expr = expr.cast(pl.UInt64)
        elif dtype.is_float():
            expr = expr.cast(pl.Float64)
        elif isinstance(dtype, pl.Categorical | pl.Enum):
            expr = expr.cast(pl.String)
        exprs.append(expr)
    return exprs


def hash_partition(
    df: pl.DataFrame, keys: Sequence[str], partitions: int
) -> dict[int, pl.DataFrame]:
    """Rows of ``df`` by partition: a seeded hash of the key columns modulo ``partitions``.

    Rows with equal keys land in the same partition on every rank; null keys too.
    Empty partitions are left out.
    """
    if partitions == 1 or df.height == 0:
        return {0: df} if df.height else {}
    columns = canonical_keys(df, keys)
    # One key hashes directly: four times cheaper than hashing a struct of one field.
    hashed = columns[0].hash(SEED) if len(columns) == 1 else pl.struct(columns).hash(SEED)
    ids = df.select((hashed % partitions).alias("__partition")).to_series()
    pieces = df.with_columns(ids).partition_by("__partition", as_dict=True, include_key=False)
    return {int(key[0]): piece for key, piece in pieces.items()}


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
        await coll.send(dest, (partition, table), phase)

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
            await coll.send(peer, _DONE, phase)
        await asyncio.gather(*receivers)
    finally:
        await stop_tasks(ctx, (*receivers, *sending))
    return held
