"""Hybrid hash join: the right side's partitions stay in memory, the left side streams by.

Under a memory budget, a join on one rank whose right side does not fit in one
step of a grace join (`actors._grace.build_cap`) but fits in `RESIDENT_SHARE` of
the budget needs no spilling of its left side. `HybridJoin`:

- hash-partitions the right side once into at least `MIN_PARTITIONS` partitions,
  each made one chunk and held in the budget;
- hash-partitions each left chunk as it arrives, with the same hash, into
  per-partition buffers, held too;
- when the buffers hold more than `PROBE_SHARE` of the budget, or the budget
  runs short (`LOW_WATER`), joins the partition with the most buffered bytes
  with its right partition (a step of `GraceJoin`, under a reservation of its
  working memory), sends the result and empties that buffer; at the end it joins
  every buffer left.

A right partition is joined once per flush of its buffer: the right side is
read about (left bytes / buffered bytes) times, each time in small partitions,
whose hash tables are cheap, instead of the whole left side going to disk and
back (W7's join spilled its 900 MB left side under 512 MiB). The budget may still
spill held pieces when it is short; a step loads them back.

Only for the joins whose unmatched right rows need not be known (inner, left,
semi, anti): a right row meets the left rows of its partition over several
flushes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from actors._grace import Emit, GraceJoin, _each
from streamnet import Context, JoinSpec, TableChunk

__all__ = [
    "LOW_WATER", "MIN_PARTITIONS", "PROBE_SHARE", "RESIDENT_SHARE", "HybridJoin", "resident_cap",
]  # fmt: skip

RESIDENT_SHARE = 1 / 4
"""The share of the budget a right side may take to stay in memory (`resident_cap`)."""
PROBE_SHARE = 1 / 4
"""The share of the budget the left pieces waiting for their partition's join may take."""
LOW_WATER = 1 / 8
"""Below this share of the budget free, the fullest buffer is joined at once (if the buffers
hold a quarter of their share or more) rather than left for the budget to spill."""
MIN_PARTITIONS = 16
"""The fewest partitions the right side is cut into: small hash tables are cheap to build
again at each flush."""


def resident_cap(ctx: Context) -> int | None:
    """The bytes of right side a hybrid join keeps in memory under ``ctx``'s budget (None
    without a limit)."""
    return ctx.memory.share(RESIDENT_SHARE)


class HybridJoin:
    """A hybrid hash join on one rank under the Context's budget (see the module doc).

    ``right_empty`` is an empty chunk of the right side's schema, ``emit`` sends a
    result on. Call `build` with the right side, `probe` with each left chunk, then
    `finish`; `release` on the way out (also after a failure).
    """

    def __init__(
        self, ctx: Context, spec: JoinSpec, right_empty: TableChunk | None, emit: Emit
    ) -> None:
        if spec.how not in ("inner", "left", "semi", "anti"):
            raise ValueError(
                f"HybridJoin: a {spec.how} join needs the unmatched right rows, which a "
                "hybrid join does not track; got how={spec.how!r}"
            )
        cap = ctx.memory.share(PROBE_SHARE)
        if cap is None:
            raise ValueError("HybridJoin: the Context's memory budget has no limit")
        self.ctx = ctx
        self.spec = spec
        self.grace = GraceJoin(ctx, spec, None, right_empty, emit)
        self.held = self.grace.held
        # used at every flush of its buffer: spilled only if nothing else is left to spill
        self.right_held = ctx.memory.holder("join right partitions", spill_last=True)
        self.probe_cap = cap
        self.partitions = MIN_PARTITIONS
        self.right: dict[int, TableChunk] = {}
        self.left: dict[int, list[TableChunk]] = {}
        self.left_bytes: dict[int, int] = {}
        self.buffered = 0
        self.flushes = 0

    async def build(self, right: list[TableChunk]) -> None:
        """Partition the right side (the list is emptied) and hold one chunk per partition."""
        nbytes = sum(chunk.nbytes for chunk in right)
        # a partition and its left buffer fit one step of the grace join
        self.partitions = max(MIN_PARTITIONS, math.ceil(2 * nbytes / self.grace.build_cap))
        parts: dict[int, list[TableChunk]] = {}
        for chunk in _each(right):
            for part, piece in (await self._cut(chunk, self.spec.right_on)).items():
                parts.setdefault(part, []).append(piece)
                await self.held.add(piece)
            del chunk
        for part in sorted(parts):
            chunk = await self.grace.load(parts.pop(part), "join (a partition of the right side)")
            self.held.remove(chunk)
            await self.right_held.add(chunk)
            self.right[part] = chunk

    async def probe(self, chunk: TableChunk) -> None:
        """Buffer the pieces of a left chunk by partition; join the fullest buffers while
        the buffers hold more than their share."""
        for part, piece in (await self._cut(chunk, self.spec.left_on)).items():
            self.left.setdefault(part, []).append(piece)
            self.left_bytes[part] = self.left_bytes.get(part, 0) + piece.nbytes
            self.buffered += piece.nbytes
            await self.held.add(piece)
        del chunk
        while self.left and (
            self.buffered > self.probe_cap
            or (self.buffered > self.probe_cap // 4 and self._short())
        ):
            await self._flush(max(self.left_bytes, key=self.left_bytes.__getitem__))

    def _short(self) -> bool:
        """Whether the budget has less than `LOW_WATER` of it free: joining a buffer then
        frees its memory at once, where the budget would spill something to disk."""
        free = self.ctx.memory.available()
        limit = self.ctx.memory.limit
        return free is not None and limit is not None and free < limit * LOW_WATER

    async def finish(self) -> None:
        """Join every buffer left."""
        for part in sorted(self.left):
            await self._flush(part)

    def release(self) -> None:
        """Nothing is held any more."""
        self.held.clear()
        self.right_held.clear()
        self.right.clear()
        self.left.clear()

    async def _flush(self, part: int) -> None:
        left = self.left.pop(part)
        self.buffered -= self.left_bytes.pop(part)
        self.flushes += 1
        kept = self.right.get(part)
        if kept is not None:  # counted by the step's reservation meanwhile
            self.right_held.remove(kept)
        await self.grace.join(left, [kept] if kept is not None else [])
        if kept is not None:  # held again, for the next flush
            await self.right_held.add(kept)

    async def _cut(self, chunk: TableChunk, keys: Sequence[str]) -> dict[int, TableChunk]:
        backend = self.ctx.backend
        need = backend.working_memory("hash_partition", chunk.nbytes)
        async with await self.ctx.memory.reserve(
            need, what="join (partitioning a chunk)", in_hand=True
        ):
            return await self.ctx.to_thread(
                backend.hash_partition, chunk, list(keys), self.partitions
            )
