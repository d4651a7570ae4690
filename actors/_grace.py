"""Grace hash join: one partition of a join, joined within the Context's memory budget.

A partition is a list of left pieces and a list of right pieces (chunks, some
maybe spilled), held in the budget (`MemoryHolder`), which spills them when it
is short. `GraceJoin.join` joins it:

- whole, in one `Backend.join`, when its right (build) side and its left
  (probe) side fit in the input of one step: the bytes whose working memory
  (`Backend.working_memory` of ``"join"``) fits in `STEP_SHARE` of the budget,
  half of them for each side (`BUILD_SHARE`, `PROBE_SHARE`);
- split again when its right side does not fit: both sides hash-partitioned
  with the next seed (`Backend.hash_partition`), each part joined the same way,
  recursively, down to `MAX_LEVELS`;
- block by block otherwise: the right side in blocks of at most the build
  share, the left side in units of at most the probe share, every unit joined
  with every block. That is the fallback for a partition that does not split
  (one key repeated, or null keys: skew), and how a partition whose right side
  fits but whose left side does not streams its left side.

Every step runs under a reservation of its working memory
(`MemoryBudget.reserve`): the chunks it loads and what its kernel takes beyond
them (`Backend.working_memory`: the hash table over the block and a result of
about the inputs' size, or more where keys repeat). The reservation ends before
the result is sent, so none is held across a channel wait; between steps the
block and the units are held, spillable. A step's lists are emptied as it
goes: a chunk it loaded is counted no more, so nothing may keep it after.

Joining block by block with only `Backend.join`, for every ``how``: a left row
must be matched against every block before one knows it matched none, and a
right row against every unit, so the unmatched rows are tracked as what is left
of a unit after an anti join with each block (``rem``), and of a block after an
anti join with each unit (``rem_block``):

- inner: the join of each unit with each block;
- left: each unit's matched rows (``join(semi(unit, block), block, "left")``),
  then once every block is done, ``rem`` joined with an empty right side
  (null right columns);
- semi: ``semi(rem, block)`` for each block, each left row once, at its first match;
- anti: ``rem`` after the last block;
- right: ``join(unit, semi(block, unit), "right")`` (matched rows in the right
  join's schema), then per block ``rem_block`` joined with an empty left side;
- full: the matched rows of both, as ``join(semi(unit, block), semi(block, unit), "full")``,
  then both kinds of unmatched rows.

With a single block, inner, left, semi and anti need no tracking: each unit is
joined with the block as Polars would. A matched step's result can be much
larger than its inputs (a key repeated on both sides gives every pair): units
are cut into slices whose result fits `OUTPUT_SHARE` even if every left row
matched as many rows as the block's most repeated key has
(`Backend.join_fanout`), and for a partition that does not split, blocks are
small enough for one left row's matches to fit. A partition joined whole is
expected to give a result about the size of its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from streamnet import Context, JoinHow, JoinSpec, KernelKind, TableChunk

__all__ = [
    "BUILD_SHARE", "MAX_LEVELS", "OUTPUT_SHARE", "PROBE_SHARE", "STEP_SHARE", "GraceFigures",
    "GraceJoin", "build_cap",
]  # fmt: skip

STEP_SHARE = 5 / 8
"""The share of the budget one step of the join may take: its inputs, the hash table over
its right side and its result (`Backend.working_memory` of ``"join"``), which is what it
reserves; the rest is left to what this and other actors hold (spilled when short) and
reserve. The join's own pieces wait in the budget, spillable, between steps."""
BUILD_SHARE = 1 / 2
"""The part of a step's input its right side may take: a partition whose right side fits
in it (`GraceJoin.build_cap`) is joined at once."""
PROBE_SHARE = 1 / 2
"""The part of a step's input a left unit takes (left pieces are joined in units of this
size, `GraceJoin.probe_cap`)."""
OUTPUT_SHARE = 1 / 8
"""The fraction of the budget the result of one step is expected to take at most (a key
repeated on both sides: slices of the left side whose result fits)."""
MAX_LEVELS = 4
"""How many times a partition is split again (each time into up to `MAX_FANOUT` parts)."""
MAX_FANOUT = 64
"""The most parts a partition is split into at once."""

Emit = Callable[[TableChunk], Awaitable[None]]
R = TypeVar("R")
T = TypeVar("T")


@dataclass(slots=True)
class GraceFigures:
    """What a grace join did on this rank (in `JoinReport`)."""

    partitions: int = 0
    """Partitions joined (those split again counted by their parts)."""
    repartitioned: int = 0
    """Partitions split again because their right side did not fit."""
    blocked: int = 0
    """Partitions joined block by block: their right side did not fit and did not split."""
    levels: int = 0
    """The deepest split: 0 when no partition was split again."""


def build_cap(ctx: Context) -> int | None:
    """The bytes of right side a grace join step joins at once under ``ctx``'s budget (None
    without a limit): a join whose whole right side fits needs no partitioning."""
    step = ctx.memory.share(STEP_SHARE)
    return None if step is None else max(1, int(ctx.backend.largest_input("join", step) * BUILD_SHARE))


class GraceJoin:
    """Joins partitions of one join under the Context's budget (which must have a limit).

    ``left_empty`` and ``right_empty`` are empty chunks of each side's schema
    (None for a side no rank saw, which the caller allows only where the result
    does not need its columns); ``emit`` sends a result on.
    """

    def __init__(
        self,
        ctx: Context,
        spec: JoinSpec,
        left_empty: TableChunk | None,
        right_empty: TableChunk | None,
        emit: Emit,
    ) -> None:
        budget = ctx.memory
        step, output = budget.share(STEP_SHARE), budget.share(OUTPUT_SHARE)
        if step is None or output is None:
            raise ValueError("GraceJoin: the Context's memory budget has no limit")
        inputs = ctx.backend.largest_input("join", step)  # a step's inputs, at most
        build, probe = max(1, int(inputs * BUILD_SHARE)), max(1, int(inputs * PROBE_SHARE))
        self.ctx = ctx
        self.backend = ctx.backend
        self.spec = spec
        self.left_empty = left_empty
        self.right_empty = right_empty
        self.emit = emit
        self.build_cap, self.probe_cap, self.output_cap = build, probe, output
        self.held = budget.holder("join partitions")
        self.figures = GraceFigures()

    async def hold(self, chunks: Sequence[TableChunk]) -> list[TableChunk]:
        """Hold the chunks that have rows (empty ones are dropped); the held ones."""
        kept = [chunk for chunk in chunks if chunk.num_rows]
        for chunk in kept:
            await self.held.add(chunk)
        return kept

    async def join(self, left: list[TableChunk], right: list[TableChunk], level: int = 0) -> None:
        """Join one partition (its pieces held by `hold`) and emit the result."""
        self.figures.levels = max(self.figures.levels, level)
        if not left or not right:
            await self._one_side(left, right)
            return
        self.figures.partitions += 1
        lbytes, rbytes = _bytes(left), _bytes(right)
        if rbytes <= self.build_cap and lbytes <= self.probe_cap:
            await self._whole(left, right)
            return
        skew = False
        if rbytes > self.build_cap:
            if level < MAX_LEVELS:
                parts = min(MAX_FANOUT, max(2, math.ceil(2 * rbytes / self.build_cap)))
                rparts = await self._split(right, self.spec.right_on, parts, level + 1)
                if len(rparts) > 1:
                    self.figures.partitions -= 1  # counted by its parts
                    self.figures.repartitioned += 1
                    lparts = await self._split(left, self.spec.left_on, parts, level + 1)
                    for part in range(parts):
                        if part in lparts or part in rparts:
                            await self.join(lparts.pop(part, []), rparts.pop(part, []), level + 1)
                    return
                (right,) = rparts.values()  # every row in one part: the keys do not split
            skew = True
            self.figures.blocked += 1
        await self._blocks(left, right, skew=skew)

    # ------------------------------------------------------------------ steps
    async def _step(
        self,
        what: str,
        loaded: Sequence[TableChunk],
        extra: int,
        kernel: Callable[..., R],
        *args: object,
    ) -> R:
        """Run ``kernel(*args)`` in a thread under a reservation of the ``loaded`` chunks
        (taken from the holder first: the step holds them) and ``extra`` bytes; the
        reservation is made the real figure once the result is known, and ends with
        the step."""
        unique = list({id(chunk): chunk for chunk in loaded}.values())
        for chunk in unique:
            self.held.remove(chunk)
        inputs = sum(chunk.nbytes for chunk in unique)
        # the join's own pieces, in memory when they came: a step that cannot fit runs anyway
        async with await self.ctx.memory.reserve(
            inputs + extra, what=what, in_hand=True
        ) as reservation:
            result = await self.ctx.to_thread(kernel, *args)
            reservation.resize(inputs + _result_bytes(result))
        return result

    def _beyond(self, kind: KernelKind, nbytes: int) -> int:
        """The working memory of a kernel of ``kind`` on ``nbytes`` of input, beyond its input
        (which a step reserves as it loads it)."""
        return max(0, self.backend.working_memory(kind, nbytes) - nbytes)

    async def _send(self, out: TableChunk) -> None:
        if out.num_rows:
            await self.emit(out)

    async def _held_again(self, *chunks: TableChunk) -> None:
        for chunk in chunks:
            await self.held.add(chunk)

    def _drop(self, chunks: Sequence[TableChunk]) -> None:
        for chunk in chunks:
            self.held.remove(chunk)

    async def _one_side(self, left: list[TableChunk], right: list[TableChunk]) -> None:
        """A partition with rows on one side only: keep them if the join keeps unmatched rows."""
        how = self.spec.how
        what = "join (unmatched rows)"
        if left and how in ("left", "full", "anti"):
            for group in _each(_groups(await self._bounded(left, self.probe_cap), self.probe_cap)):
                if how == "anti":  # the rows as they are
                    extra = self._beyond("concat", _bytes(group))
                    out = await self._step(what, group, extra, self._concat, group)
                else:  # null right columns
                    extra = self._beyond("join", _bytes(group))
                    out = await self._step(what, group, extra, self._join, group, [], how)
                await self._send(out)
        elif right and how in ("right", "full"):
            for group in _each(_groups(await self._bounded(right, self.build_cap), self.build_cap)):
                extra = self._beyond("join", _bytes(group))
                out = await self._step(what, group, extra, self._join, [], group, how)
                await self._send(out)
        else:
            self._drop([*left, *right])

    async def _whole(self, left: list[TableChunk], right: list[TableChunk]) -> None:
        lbytes, rbytes = _bytes(left), _bytes(right)
        out = await self._step(
            "join of a partition",
            [*left, *right],
            self._beyond("join", lbytes + rbytes),  # the hash table, a result of about that size
            self._join,
            left,
            right,
            self.spec.how,
        )
        left.clear()  # loaded by the step, counted no more: not kept while the result is sent
        right.clear()
        await self._send(out)

    async def _split(
        self, pieces: list[TableChunk], keys: Sequence[str], parts: int, seed: int
    ) -> dict[int, list[TableChunk]]:
        """The pieces hash-partitioned with ``seed`` into ``parts`` parts, held (the list is
        emptied: each piece is loaded to be cut, and not kept)."""
        out: dict[int, list[TableChunk]] = {}
        backend = self.backend

        def cut(group: list[TableChunk]) -> dict[int, TableChunk]:
            return backend.hash_partition(self._concat(group), keys, parts, seed=seed)

        for group in _each(_groups(await self._bounded(pieces, self.build_cap), self.build_cap)):
            extra = self._beyond("hash_partition", _bytes(group))
            cut_up = await self._step("join (splitting a partition)", group, extra, cut, group)
            for part, piece in cut_up.items():
                out.setdefault(part, []).append(piece)
                await self.held.add(piece)
        return out

    async def _bounded(self, pieces: list[TableChunk], cap: int) -> list[TableChunk]:
        """The pieces, those of more than ``cap`` bytes cut into slices of at most about ``cap``
        (``pieces`` is emptied: a piece loaded to be cut is not kept)."""
        out: list[TableChunk] = []
        for chunk in _each(pieces):
            if chunk.nbytes <= cap or chunk.num_rows < 2:
                out.append(chunk)
                continue
            count = min(chunk.num_rows, math.ceil(chunk.nbytes / cap))
            rows = math.ceil(chunk.num_rows / count)
            extra = self._beyond("concat", chunk.nbytes)
            whole = await self._step("join (cutting a piece)", [chunk], extra, self._concat, [chunk])
            for start in range(0, whole.num_rows, rows):
                piece = self.backend.slice(whole, start, rows)
                out.append(piece)
                await self.held.add(piece)
        return out

    async def load(self, group: list[TableChunk], what: str) -> TableChunk:
        """The group as one held chunk (concatenated in a step if it has several)."""
        if len(group) == 1:
            return group[0]
        chunk = await self._step(what, group, self._beyond("concat", _bytes(group)), self._concat, group)
        await self.held.add(chunk)
        return chunk

    async def _blocks(self, left: list[TableChunk], right: list[TableChunk], *, skew: bool) -> None:
        """Join every left unit with every right block, tracking unmatched rows (module doc)."""
        how = self.spec.how
        lrow = _bytes(left) / max(1, _rows(left))
        rrow = _bytes(right) / max(1, _rows(right))
        block_cap = self.build_cap
        if skew and how in ("inner", "left", "right", "full"):
            # one left row may match the whole block: its result must fit the output share
            block_cap = max(1, min(block_cap, int(self.output_cap * rrow / (lrow + rrow))))
        blocks = _groups(await self._bounded(right, block_cap), block_cap)
        units = _groups(await self._bounded(left, self.probe_cap), self.probe_cap)
        multi = len(blocks) > 1
        track_left = multi and how in ("left", "semi", "anti", "full")
        track_right = how in ("right", "full")
        matched = how in ("inner", "left", "right", "full")
        rem: list[TableChunk | None] = [None] * len(units)
        for block_group in _each(blocks):
            block = await self.load(block_group, "join (a block of the right side)")
            del block_group  # loaded: the block stands for it
            rem_block: TableChunk | None = block if track_right else None
            if matched:  # result rows per left row, at most: slices whose result fits
                fan = await self._step(
                    "join (counting a block's keys)",
                    [block],
                    self._beyond("aggregate", block.nbytes),
                    self.backend.join_fanout,
                    block,
                    self.spec.right_on,
                )
                await self._held_again(block)
                rows = max(1, int(self.output_cap / (max(1, fan) * (lrow + rrow))))
            for u, unit_group in enumerate(units):
                unit = await self.load(unit_group, "join (a unit of the left side)")
                units[u] = [unit]  # loaded once, kept for the next blocks
                if track_left or track_right:
                    out, rem[u], rem_block = await self._track(
                        unit, block, rem[u], rem_block, left=track_left
                    )
                    if out is not None:
                        await self._send(out)
                if matched:
                    start = 0
                    while start < unit.num_rows:
                        part = self.backend.slice(unit, start, rows)
                        result = int(part.num_rows * max(1, fan) * (lrow + rrow))
                        inputs = part.nbytes + block.nbytes  # a result of about that size
                        out = await self._step(
                            "join (a unit with a block)",
                            [unit, block],
                            self._beyond("join", inputs) + max(0, result - inputs),
                            self._matched,
                            part,
                            block,
                            multi,
                        )
                        await self._held_again(unit, block)
                        start += part.num_rows
                        await self._send(out)
                elif not multi:  # semi or anti with one block: as Polars joins them
                    out = await self._step(
                        "join (a unit with a block)",
                        [unit, block],
                        self._beyond("join", block.nbytes + unit.nbytes),
                        self._join,
                        [unit],
                        [block],
                        how,
                    )
                    await self._held_again(unit, block)
                    await self._send(out)
                if not multi:
                    self._drop([unit])
            if rem_block is not None:
                out = await self._step(
                    "join (unmatched right rows)",
                    [rem_block],
                    self._beyond("join", rem_block.nbytes),
                    self._join,
                    [],
                    [rem_block],
                    how,
                )
                await self._send(out)
            self._drop([block])
            del block, rem_block  # done with: not kept while the next block loads
        for unit_group in units:
            self._drop(unit_group)
        for remaining in rem:
            if remaining is None:
                continue
            if how in ("left", "full"):  # null right columns
                out = await self._step(
                    "join (unmatched left rows)",
                    [remaining],
                    self._beyond("join", remaining.nbytes),
                    self._join,
                    [remaining],
                    [],
                    how,
                )
            elif how == "anti":
                extra = self._beyond("concat", remaining.nbytes)
                out = await self._step(
                    "join (unmatched left rows)", [remaining], extra, self._concat, [remaining]
                )
            else:  # semi: sent as they matched
                self._drop([remaining])
                continue
            await self._send(out)

    async def _track(
        self,
        unit: TableChunk,
        block: TableChunk,
        rem: TableChunk | None,
        rem_block: TableChunk | None,
        *,
        left: bool,
    ) -> tuple[TableChunk | None, TableChunk | None, TableChunk | None]:
        """One unit against one block: what stays unmatched of the unit's rows (``rem``, when
        ``left``) and of the block's (``rem_block``, when given), and semi's new matches;
        ``(matches, rem, rem_block)``, the new ones held."""
        spec, backend = self.spec, self.backend
        left_now = (unit if rem is None else rem) if left else None
        semi, anti = replace(spec, how="semi"), replace(spec, how="anti")
        flipped_anti = JoinSpec(spec.right_on, spec.left_on, "anti", spec.suffix)

        def track() -> tuple[TableChunk | None, TableChunk | None, TableChunk | None]:
            out = new_rem = new_block = None
            if left_now is not None:
                if spec.how == "semi":
                    out = backend.join(left_now, block, semi)
                new_rem = backend.join(left_now, block, anti)
            if rem_block is not None:
                new_block = backend.join(rem_block, unit, flipped_anti)
            return out, new_rem, new_block

        tracked = [c for c in (left_now, rem_block) if c is not None]
        # one join after the other (anti and semi: results at most the tracked rows)
        joins = [] if left_now is None else [left_now.nbytes + block.nbytes]
        joins += [] if rem_block is None else [rem_block.nbytes + unit.nbytes]
        out, new_rem, new_block = await self._step(
            "join (unmatched rows of a unit and a block)",
            [unit, block, *tracked],
            max(self._beyond("join", nbytes) for nbytes in joins),
            track,
        )
        # the step took the old remainders from the holder: the new ones replace them
        await self._held_again(unit, block, *(c for c in (new_rem, new_block) if c is not None))
        return out, (new_rem if left else rem), new_block

    # ------------------------------------------------------------------ kernels (in a thread)
    def _concat(self, group: Sequence[TableChunk]) -> TableChunk:
        """The group as one chunk in memory."""
        return group[0].make_available() if len(group) == 1 else self.backend.concat(group)

    def _join(
        self, left: Sequence[TableChunk], right: Sequence[TableChunk], how: JoinHow
    ) -> TableChunk:
        """The join of the concatenated sides (an empty list: that side's empty chunk)."""
        lhs = self._concat(left) if left else self.left_empty
        rhs = self._concat(right) if right else self.right_empty
        assert lhs is not None, "the caller knows both schemas here"
        assert rhs is not None, "the caller knows both schemas here"
        return self.backend.join(lhs, rhs, replace(self.spec, how=how))

    def _matched(self, part: TableChunk, block: TableChunk, multi: bool) -> TableChunk:
        """The rows of ``part`` matched in ``block``, in the join's schema (module doc)."""
        spec, backend, how = self.spec, self.backend, self.spec.how
        lhs, rhs = part, block
        if how in ("right", "full"):
            rhs = backend.join(block, part, JoinSpec(spec.right_on, spec.left_on, "semi"))
        if multi and how in ("left", "full"):
            lhs = backend.join(part, block, replace(spec, how="semi"))
        return backend.join(lhs, rhs, spec)


def _result_bytes(result: object) -> int:
    if isinstance(result, TableChunk):
        return result.nbytes
    if isinstance(result, tuple | list):
        return sum(_result_bytes(item) for item in result)
    if isinstance(result, dict):
        return sum(_result_bytes(item) for item in result.values())
    return 0


def _bytes(chunks: Sequence[TableChunk]) -> int:
    return sum(chunk.nbytes for chunk in chunks)


def _rows(chunks: Sequence[TableChunk]) -> int:
    return sum(chunk.num_rows for chunk in chunks)


def _each(items: list[T]) -> Iterator[T]:
    """The items of ``items``, each taken out of the list as it is given: a chunk that a
    step loaded from disk is no longer counted in the budget, so no list may keep it."""
    items.reverse()
    while items:
        yield items.pop()


def _groups(chunks: Sequence[TableChunk], cap: int) -> list[list[TableChunk]]:
    """Consecutive chunks in groups of at most ``cap`` bytes (a larger chunk alone)."""
    groups: list[list[TableChunk]] = []
    size = 0
    for chunk in chunks:
        if groups and size + chunk.nbytes <= cap:
            groups[-1].append(chunk)
            size += chunk.nbytes
        else:
            groups.append([chunk])
            size = chunk.nbytes
    return groups
