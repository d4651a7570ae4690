"""The rows a source may drop: those failing a predicate a Network pushed to it."""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING

from streamnet import ActorNode, CompiledPlan, Context, Filter, Plan, TableChunk

if TYPE_CHECKING:
    from streamnet import ArrowSchema

__all__ = ["PushedFilter"]


class PushedFilter:
    """Drops the rows of a source's chunks that fail a predicate its node was pushed
    (`ActorNode.pushed_predicates`): its consumers drop them anyway. Compiled once per
    schema; a predicate over columns the chunks lack, or that does not compile on them,
    is left to the filter it comes from (which reports what is wrong with it)."""

    def __init__(self, ctx: Context, node: ActorNode | None) -> None:
        self.ctx = ctx
        self.predicates = [] if node is None else sorted(node.pushed_predicates, key=str)
        self.actor = node.name if node is not None else ""
        self._schema: ArrowSchema | None = None
        self._plan: CompiledPlan | None = None

    def __call__(self, chunk: TableChunk) -> TableChunk:
        """``chunk`` without the rows that fail a pushed predicate (call it in a thread)."""
        if not self.predicates:
            return chunk
        schema = chunk.schema
        if self._schema is None or not (schema is self._schema or schema.equals(self._schema)):
            self._schema, self._plan = schema, self._compile(schema)
        return chunk if self._plan is None else self.ctx.backend.run(self._plan, chunk)

    def _compile(self, schema: ArrowSchema) -> CompiledPlan | None:
        exprs = [p.expr for p in self.predicates if p.columns <= set(schema.names)]
        if not exprs:
            return None
        step = Filter(functools.reduce(operator.and_, exprs), actor=self.actor)
        try:
            return self.ctx.backend.compile(Plan(steps=(step,)), schema)
        except Exception:  # the filter downstream reports what is wrong with its predicate
            return None
