"""The rows a source may drop: those failing a predicate a Network pushed to it.

A key filter's keys are known only once its join has read one side whole: a
source that got one waits for them first (`resolved_predicates`)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import operator
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from streamnet import (
    ActorNode,
    CompiledPlan,
    Context,
    Filter,
    ParquetScan,
    Plan,
    Predicate,
    ScanTask,
    TableChunk,
)

if TYPE_CHECKING:
    import polars as pl

    from streamnet import ArrowSchema, Backend

__all__ = [
    "PushedFilter",
    "blame_pushed",
    "blame_pushed_in_scan",
    "check_committed",
    "few_keys",
    "key_counts",
    "key_ranges",
    "resolved_predicates",
]


ROWS_PER_FEW_KEYS = 32
"""A key filter of at most one key per this many rows a source reads lets few rows through:
a scan joins row groups into its tasks from the start, and waits for no other key filter."""


def key_counts(node: ActorNode | None) -> list[int]:
    """How many keys each key filter pushed to ``node`` has published (those without keys
    yet, or published as no filter, left out)."""
    predicates = node.pushed_predicates if node is not None else ()
    counts = [p.keys.count for p in predicates if p.keys is not None]
    return [count for count in counts if count is not None]


def few_keys(node: ActorNode | None, rows: int | None) -> bool:
    """Whether a key filter pushed to ``node`` has published few keys for ``rows`` rows
    (`ROWS_PER_FEW_KEYS`; None: rows not known)."""
    return rows is not None and any(c * ROWS_PER_FEW_KEYS <= rows for c in key_counts(node))


async def _settled(node: ActorNode | None, rows: int | None) -> None:
    """Until every key filter pushed to ``node`` (a source of about ``rows`` rows) has
    its keys, or one has few (`few_keys`): the others would spare little of what that one
    lets through, and their joins may wait on other scans yet (TPC-H Q18's lineitem is
    cut by the 57 orders of its subquery before its orders are read)."""
    waits = [
        predicate.keys for predicate in (node.pushed_predicates if node is not None else ())
        if predicate.keys is not None and not predicate.branches
    ]  # fmt: skip
    while not few_keys(node, rows):
        pending = [asyncio.ensure_future(keys.wait()) for keys in waits if not keys.published]
        if not pending:
            return
        try:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pending:
                task.cancel()


async def resolved_predicates(
    node: ActorNode | None, *, lookup: bool = True, rows: int | None = None
) -> list[Predicate]:
    """The predicates pushed to ``node`` as they apply now: key filters with their keys,
    once published (waiting for them), or left out when their join gave none; those
    hashed rather than looked up in a table without ``lookup`` (`key_filter`).

    ``rows``, the rows the source reads (about), lets it stop waiting once a key filter
    has few keys for them (`few_keys`): key filters without keys yet are then left out."""
    resolved = []
    if rows is not None:
        await _settled(node, rows)
    for predicate in sorted(node.pushed_predicates if node else (), key=Predicate.describe):
        if rows is not None and predicate.keys is not None and not predicate.keys.published:
            continue  # not waited for (`_settled`): its join filters the rows anyway
        expr = await predicate.resolved(lookup=lookup)
        if expr is not None:  # a key filter's keeps its key set: a scan prunes by its range
            resolved.append(Predicate(expr, predicate.origin, predicate.keys))
    return resolved


async def key_ranges(node: ActorNode | None) -> list[pl.Expr]:
    """For the key filters pushed to ``node`` over integer keys, whether their column
    lies in the keys' range (`KeySet.range_of`), once published: tests a scan can skip
    row groups by, which it does not apply to rows. Those not published yet are left
    out, as `resolved_predicates` leaves them once it waits no longer."""
    ranges = []
    for predicate in sorted(node.pushed_predicates if node else (), key=Predicate.describe):
        if predicate.keys is not None and not predicate.branches and predicate.keys.published:
            found = await predicate.keys.range_of(predicate.expr)
            if found is not None:
                ranges.append(found)
    return ranges


class PushedFilter:
    """Drops the rows of a source's chunks that fail a predicate its node was pushed
    (`ActorNode.pushed_predicates`): its consumers drop them anyway. Compiled once per
    schema; a predicate over columns the chunks lack, or that does not compile on them,
    is left to the filter it comes from (which reports what is wrong with it), unless
    the source committed to it (``committed``, `ActorNode.committed_predicates`): that
    filter leaves it out, so it must apply here, or fail naming that filter."""

    def __init__(
        self,
        ctx: Context,
        predicates: Sequence[Predicate],
        actor: str,
        committed: Collection[Predicate] = frozenset(),
    ) -> None:
        self.ctx = ctx
        self.predicates = list(predicates)
        self.actor = actor
        self.committed = frozenset(committed)
        self._schema: ArrowSchema | None = None
        self._plan: CompiledPlan | None = None

    @classmethod
    async def of(cls, ctx: Context, node: ActorNode | None) -> PushedFilter:
        """The filter of the predicates pushed to ``node`` (waiting for key filters' keys)."""
        predicates = await resolved_predicates(node)
        committed = node.committed_predicates if node is not None else frozenset()
        return cls(ctx, predicates, node.name if node else "", committed)

    def __call__(self, chunk: TableChunk) -> TableChunk:
        """``chunk`` without the rows that fail a pushed predicate (call it in a thread)."""
        if not self.predicates:
            return chunk
        schema = chunk.schema
        if self._schema is None or not (schema is self._schema or schema.equals(self._schema)):
            self._schema, self._plan = schema, self._compile(schema)
        if self._plan is None:
            return chunk
        try:
            return self.ctx.backend.run(self._plan, chunk)
        except Exception:
            blamed = blame_pushed(self.ctx.backend, self.predicates, chunk, self.actor)
            if blamed is None:
                raise
        raise blamed from None

    def _compile(self, schema: ArrowSchema) -> CompiledPlan | None:
        names = set(schema.names)
        must = [p for p in self.predicates if p in self.committed]
        if any(not p.columns <= names for p in must):  # left out below: its filter's error
            check_committed(self.ctx.backend, must, schema, self.actor)
        exprs = [p.expr for p in self.predicates if p.columns <= names]
        if not exprs:
            return None
        step = Filter(functools.reduce(operator.and_, exprs), actor=self.actor)
        try:
            return self.ctx.backend.compile(Plan(steps=(step,)), schema)
        except Exception:  # the filter downstream reports what is wrong with its predicate
            if not must:
                return None
        check_committed(self.ctx.backend, must, schema, self.actor)  # names the one that fails
        step = Filter(functools.reduce(operator.and_, [p.expr for p in must]), actor=self.actor)
        return self.ctx.backend.compile(Plan(steps=(step,)), schema)


def check_committed(
    backend: Backend, predicates: Sequence[Predicate], schema: ArrowSchema, source: str
) -> None:
    """Raise the error of the filter each of ``predicates`` comes from if it does not
    apply to ``schema`` (a column missing, a type it does not take): that filter left
    it out, trusting the source (the actor ``source``) to apply it, so the error is the
    filter's, and names it where it would name the source. A compile per predicate:
    called once the predicates together did not compile, or where one lacks a column."""
    for predicate in predicates:
        try:
            backend.compile(Plan(steps=(Filter(predicate.expr, actor=predicate.origin),)), schema)
        except Exception as exc:
            named = f"actor `{source}`: "
            text = str(exc)
            if not source or not predicate.origin or not text.startswith(named):
                raise
            try:
                renamed = type(exc)(f"actor `{predicate.origin}`: {text[len(named) :]}")
            except Exception:  # an error type made otherwise: raised as it is
                raise exc from None
            raise renamed from None


def blame_pushed(
    backend: Backend, predicates: Sequence[Predicate], chunk: TableChunk, source: str
) -> BaseException | None:
    """The error path of a source that applied ``predicates`` (pushed to it, the actor
    ``source``) to ``chunk`` and failed: the error of the first of them that fails on
    ``chunk`` alone, naming the actor it comes from (a filter downstream, whose own step
    would have failed there), for the source to raise instead; None when none fails (the
    failure is the source's own)."""
    for predicate in predicates:
        if not predicate.origin:
            continue
        step = Filter(predicate.expr, actor=predicate.origin)
        try:
            backend.run(backend.compile(Plan(steps=(step,)), chunk.schema), chunk)
        except Exception as exc:
            exc.add_note(
                f"a predicate of actor `{predicate.origin}` that the source `{source}` "
                f"applies for it: {predicate.expr}"
            )
            return exc
    return None


def blame_pushed_in_scan(
    backend: Backend, compiled: CompiledPlan, task: ScanTask, predicates: Sequence[Predicate]
) -> BaseException | None:
    """`blame_pushed` for a Parquet scan whose ``task`` failed: the task's rows are read
    again without any predicate (None when they cannot be: the failure is the file's)."""
    scan = compiled.plan.source
    if not predicates or not isinstance(scan, ParquetScan):
        return None
    bare = Plan(dataclasses.replace(scan, columns=None, predicate=None))
    try:
        chunk = backend.scan(backend.compile(bare, compiled.input_schema), task)
    except Exception:
        return None
    return blame_pushed(backend, predicates, chunk, scan.actor)
