"""The all-to-all exchange of a collective: pieces by partition id go to the partition's owner.

An exchange takes this rank's chunks, cuts each into partitions as it arrives
(never concatenating the input), keeps the pieces of the partitions this rank
owns and sends the others to their owners, then waits until every rank said it
is done. Chunks travel as they are: in-process ranks pass them by reference, and
a communicator crossing processes packs them with their backend (`Backend.pack`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from streamnet._table_chunk import TableChunk
from streamnet._tasks import start_task, stop_tasks
from streamnet.observe._statistics import CollectiveTraffic

if TYPE_CHECKING:
    from streamnet._collective import Collective
    from streamnet._context import Context

__all__ = ["COALESCE_SHARE", "Exchange", "Owner", "Partitions", "contiguous", "round_robin"]

Owner = Callable[[int, int], int]
"""``owner(partition, nranks)``: the rank that holds a partition."""

_DONE = None
_SENDS_IN_FLIGHT = 8  # pieces being sent at once by one exchange
COALESCE_SHARE = 1 / 64
"""Under a memory budget, the share of it up to which the pieces of a partition held in
memory are joined into one (one spill file rather than one per piece)."""


def round_robin(partition: int, nranks: int) -> int:
    """The rank owning ``partition`` when rank ``r`` holds ``r, r + nranks, ...``."""
    return partition % nranks


def contiguous(partitions: int) -> Owner:
    """The owner of each of ``partitions`` partitions when every rank holds one block of
    consecutive partitions (rank 0 the first)."""

    def owner(partition: int, nranks: int) -> int:
        return partition * nranks // partitions

    return owner


class Partitions:
    """The pieces of the partitions this rank owns, kept as TableChunks (spillable).

    The pieces are held in the Context's memory budget (`MemoryHolder`): when
    the budget is short, the budget spills them, largest and coldest first, and
    beyond ``max_buffered_bytes`` held by this exchange its own largest pieces
    are spilled. ``report`` counts this exchange's pieces, their peak and what
    was spilled; the peak and the spilled bytes are counted in ``traffic`` too
    (the actor's).
    """

    def __init__(
        self,
        ctx: Context,
        owned: Sequence[int],
        max_buffered_bytes: int | None,
        traffic: CollectiveTraffic | None = None,
        *,
        what: str = "exchanged partitions",
    ) -> None:
        self.ctx = ctx
        self.pieces: dict[int, list[TableChunk]] = {p: [] for p in owned}
        self.max_buffered_bytes = max_buffered_bytes
        self.holder = ctx.memory.holder(what)
        self.report = CollectiveTraffic()
        self.traffic = traffic
        self._counted_spilled = 0  # of the holder's spilled bytes, those in the reports
        self._adding = asyncio.Lock()

    @property
    def buffered(self) -> int:
        """Bytes of the pieces held in memory now."""
        return self.holder.resident

    def owned(self) -> list[int]:
        """The partitions this rank owns that were not taken yet, in increasing order."""
        return sorted(self.pieces)

    async def add(self, partition: int, piece: TableChunk) -> None:
        """Hold ``piece``; beyond the bound, spill the largest pieces (in a thread).

        Under a memory budget, a small piece joins the partition's last one while that
        is in memory and both stay within `COALESCE_SHARE` of the budget: pieces cut
        from small chunks would otherwise be spilled (and read back) a file each."""
        async with self._adding:  # one at a time: the receivers of several peers add at once
            pieces = self.pieces[partition]
            last = pieces[-1] if pieces else None
            limit = self.ctx.memory.share(COALESCE_SHARE)
            if (
                last is not None
                and limit is not None
                and not last.is_spilled
                and last.nbytes + piece.nbytes <= limit
            ):
                self.holder.remove(last)
                joined = [last, piece]
                piece = pieces[-1] = await self.ctx.to_thread(self.ctx.backend.concat, joined)
                del last, joined
            else:
                pieces.append(piece)
            await self.holder.add(piece)
        self._held()
        if self.max_buffered_bytes is not None and self.holder.resident > self.max_buffered_bytes:
            await self.holder.spill_down_to(self.max_buffered_bytes)
        self._count_spilled()

    def _held(self) -> None:
        # the peak counts the piece before any spilling it caused: it was in memory
        nbytes = self.holder.peak
        self.report.held(nbytes)
        if self.traffic is not None:
            self.traffic.held(nbytes)

    def _count_spilled(self) -> None:
        """Add to the reports what was spilled since they were last told: by this exchange,
        or by the budget for another actor."""
        nbytes = self.holder.spilled - self._counted_spilled
        self._counted_spilled += nbytes
        self.report.spilled_bytes += nbytes
        if self.traffic is not None:
            self.traffic.spilled_bytes += nbytes

    def pop(self, partition: int) -> list[TableChunk]:
        """The pieces of ``partition``, as they are (some may be spilled), still held in
        `holder` until the caller removes each; the partition is no longer owned here."""
        self._count_spilled()
        return self.pieces.pop(partition, [])

    def take_pieces(self, partition: int) -> list[TableChunk]:
        """The partition's pieces as they are, spilled ones left on disk, held no more:
        for a caller that works on them piece by piece and holds them itself."""
        chunks = self.pop(partition)
        for chunk in chunks:
            self.holder.remove(chunk)
        return chunks

    def take(self, partition: int) -> TableChunk | None:
        """The whole partition as one chunk (loading spilled pieces), or None if it is empty.

        Pieces are concatenated as they are (`Backend.concat`), never cast: they
        share one schema. Blocking: call it in a thread.
        """
        full = [c for c in self.take_pieces(partition) if c.num_rows]
        if not full:
            return None
        return full[0] if len(full) == 1 else self.ctx.backend.concat(full)


class Exchange:
    """One all-to-all of a collective: pieces by partition id go to the partition's owner.

    Use it as an async context manager: its receiving and sending tasks start on
    entry, and on the way out (an error, a cancellation) they are stopped within
    the Context's ``cancel_grace`` (`stop_tasks`), so none outlives the collective.
    ``phase`` tells apart several exchanges of one collective (the two sides of a
    join); ``owner(partition, nranks)`` says which rank holds a partition. Memory:
    input is partitioned chunk by chunk; owned pieces are held until every rank
    is done, spilled beyond ``max_buffered_bytes``; at most a few pieces are on
    their way out at once. ``into``, if given, is where the owned pieces go
    instead: `Partitions` of the caller's (of a subclass whose ``add`` works on
    them as they come, as a sort gathers them into sorted runs). ``coll.traffic`` (the actor's) counts what travels,
    the peak held and the spilled bytes; ``Partitions.report`` this exchange's.

    Examples
    --------
    In a collective actor, with ``coll = Collective(ctx)``::

        async with Exchange(coll, "shuffle", partitions=4) as ex:
            async for _, chunk in inputs(ctx, ch_in, ["k"]):
                await ex.add(chunk, ["k"])
            parts = await ex.finish()
    """

    def __init__(
        self,
        coll: Collective,
        phase: str,
        *,
        partitions: int,
        owner: Owner = round_robin,
        max_buffered_bytes: int | None = None,
        into: Partitions | None = None,
    ) -> None:
        self.coll = coll
        self.ctx = coll.ctx
        self.phase = phase
        self.partitions = partitions
        self.owner = owner
        owned = [p for p in range(partitions) if owner(p, coll.nranks) == coll.rank]
        self.held = (
            into if into is not None
            else Partitions(self.ctx, owned, max_buffered_bytes, coll.traffic)
        )  # fmt: skip
        self._receivers: list[asyncio.Task[None]] = []
        self._sending: set[asyncio.Future[None]] = set()

    async def __aenter__(self) -> Exchange:
        self._receivers = [start_task(self._receive(peer)) for peer in self.coll.peers]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await stop_tasks(self.ctx, (*self._receivers, *self._sending))
        if kind is not None:  # the partitions will never be taken: nothing stays counted
            self.held.holder.clear()

    async def _receive(self, peer: int) -> None:
        report = self.held.report
        while (item := await self.coll.recv(peer, self.phase)) is not _DONE:
            partition, chunk = item
            report.add_received(peer, chunk.nbytes)
            await self.held.add(partition, chunk)

    async def _send(self, dest: int, partition: int, piece: TableChunk) -> None:
        report = self.held.report
        report.add_sent(dest, piece.nbytes)
        await self.coll.send(dest, self.phase, (partition, piece))

    async def add(self, chunk: TableChunk, keys: Sequence[str]) -> None:
        """Cut ``chunk`` by a hash of ``keys`` (`Backend.hash_partition`, in a thread),
        keep the owned pieces and send the others; one rank and one partition: the
        chunk is kept whole.

        Raises what `Backend.hash_partition` raises.
        """
        if self.partitions == 1 and self.coll.nranks == 1:  # nothing to cut or send
            await self.held.add(0, chunk)
            return
        backend = self.ctx.backend
        need = backend.working_memory("hash_partition", chunk.nbytes)
        async with await self.ctx.memory.reserve(
            need, what="cutting a chunk into partitions", in_hand=True
        ):
            pieces = await self.ctx.to_thread(backend.hash_partition, chunk, keys, self.partitions)
        await self.add_partitioned(pieces)

    async def add_partitioned(self, pieces: Mapping[int, TableChunk]) -> None:
        """Keep the owned ``pieces`` (by partition id) and send the others to their owners."""
        for partition, piece in pieces.items():
            dest = self.owner(partition, self.coll.nranks)
            if dest == self.coll.rank:
                await self.held.add(partition, piece)
                continue
            # Pieces go out while the next chunk is cut; at most a few chunks'
            # worth are in flight, so memory stays bounded.
            while len(self._sending) >= _SENDS_IN_FLIGHT:
                done, _ = await asyncio.wait(self._sending, return_when=asyncio.FIRST_COMPLETED)
                self._sending.difference_update(done)
                for task in done:
                    task.result()
            self._sending.add(start_task(self._send(dest, partition, piece)))

    async def finish(self) -> Partitions:
        """Send the end markers once every piece is out, and wait until every peer sent
        all of its pieces: the owned partitions are then complete."""
        if self._sending:  # every piece is out before the end marker
            await asyncio.gather(*self._sending)
            self._sending.clear()
        for peer in self.coll.peers:
            await self.coll.send(peer, self.phase, _DONE)
        await asyncio.gather(*self._receivers)
        return self.held
