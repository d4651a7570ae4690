"""run_plan: an actor's plan over its input stream, chunk by chunk, on the Context's backend."""

from __future__ import annotations

import asyncio
from collections import deque

from channels import Channel, Message
from streamnet._actor import current_actor
from streamnet._context import Context
from streamnet._table_chunk import TableChunk
from streamnet._tasks import start_task
from streamnet.plans import CompiledPlan, Plan, PlanParams, Select, Stamp
from streamnet.plans._check import check_step

__all__ = ["run_plan"]


async def run_plan(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    plan: Plan | None = None,
    *,
    depth: int | None = None,
) -> None:
    """Run a plan on every chunk of ``ch_in`` and send the results to ``ch_out``, then drain it.

    Without ``plan``, it runs the running actor's *effective* plan: its own step
    (``define_actor(plan=...)``) followed by the steps of the actors a Network
    fused after it. With ``plan``, that plan, followed by the fused steps if any.
    The plan is compiled once per input schema (`Backend.compile`: errors name
    the actor of the failing step before any chunk runs), then chunks run
    through it in the Context's thread pool (`Backend.run`), up to ``depth`` at
    once (default: the Context's ``num_threads``), the results sent in order
    with their sequence numbers. A chunk the plan empties is sent too (it
    carries the schema). When the fused steps end in a group-by's partial
    aggregation, it publishes the schema aggregated on the node's `FusionLink`.

    Raises
    ------
    TypeError
        ``plan`` is not a Plan, or is None outside an actor that declares its plan.
    ValueError
        ``depth`` is not an int >= 1.

    Examples
    --------
    A filter written with a plan, between a source and a sink:

    >>> import polars as pl
    >>> from streamnet import Context, Filter, Network, current_actor_name, define_actor
    >>> @define_actor
    ... async def positive(ctx, ch_in, ch_out):
    ...     step = Filter(pl.col("x") > 0, actor=current_actor_name() or "")
    ...     await run_plan(ctx, ch_in, ch_out, Plan(steps=(step,)))
    >>> @define_actor
    ... async def source(ctx, ch_out):
    ...     frame = pl.DataFrame({"x": [-1, 2, 3]})
    ...     await ch_out.send(ctx, Message(0, TableChunk.from_polars(frame)))
    ...     await ch_out.drain(ctx)
    >>> @define_actor
    ... async def sink(ctx, ch_in) -> list[int]:
    ...     return [x async for msg in ch_in for x in msg.payload.to_polars()["x"]]
    >>> ctx = Context()
    >>> a, b = ctx.create_channel(), ctx.create_channel()
    >>> out = sink(ctx, b)
    >>> Network(ctx, [source(ctx, a), positive(ctx, a, b), out]).run()
    >>> out.result()
    [2, 3]
    """
    node = current_actor()
    fused = node.fused_steps if node is not None else ()
    if plan is None:
        if node is None or not node.contributes_step:
            raise TypeError(
                "run_plan: without `plan`, the running actor must declare its step with "
                f"`define_actor(plan=...)`; actor `{node.name if node else None}` does not"
            )
        own = node.step()
        plan = Plan(steps=((own,) if own is not None else ()) + fused)
    elif not isinstance(plan, Plan):
        raise TypeError(f"run_plan: `plan` must be a Plan, got {type(plan).__name__}")
    elif fused:
        plan = plan.then(Plan(steps=fused))
    depth = ctx.num_threads if depth is None else depth
    if type(depth) is not int or depth < 1:
        raise ValueError(f"run_plan: `depth` must be an int >= 1, got {depth!r}")
    backend = ctx.backend
    if plan.source is None and not plan.steps:  # a filter whose predicate holds already, say
        while (msg := await ch_in.recv(ctx)) is not None:
            await ch_out.send(ctx, msg)
        await ch_out.drain(ctx)
        return
    kept = _projections(plan)
    if kept is not None:
        await _project(ctx, ch_in, ch_out, plan, kept)
        return
    stamps = any(isinstance(step, Stamp) for step in plan.steps)
    params = PlanParams()
    compiled: CompiledPlan | None = None
    pending: deque[tuple[int, asyncio.Task[TableChunk]]] = deque()
    try:
        while (msg := await ch_in.recv(ctx)) is not None:
            chunk = TableChunk.from_message(msg)
            schema = chunk.schema  # one object per schema: compiled again only for a new one
            if compiled is None or schema is not compiled.input_schema:
                compiled = await ctx.to_thread(backend.compile, plan, schema)
                if node is not None and node.link is not None:  # partials for a group-by
                    node.link.publish(compiled.aggregate_input_schema)
            if stamps:
                params = PlanParams(rank=ctx.rank, sequence=msg.sequence_number)
            task = start_task(ctx.to_thread(backend.run, compiled, chunk, params=params))
            pending.append((msg.sequence_number, task))
            while len(pending) >= depth or (pending and pending[0][1].done()):
                sequence, done = pending.popleft()
                await ch_out.send(ctx, Message(sequence, await done))
        while pending:
            sequence, done = pending.popleft()
            await ch_out.send(ctx, Message(sequence, await done))
    finally:
        await _stop([task for _, task in pending], ctx.cancel_grace)
    await ch_out.drain(ctx)


async def _stop(tasks: list[asyncio.Task[TableChunk]], grace: float) -> None:
    """Cancel the chunks still in flight (the run failed) and wait for them, at most ``grace``."""
    left = {task for task in tasks if not task.done()}
    for task in left:
        task.cancel()
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the failure that brought us here is raised instead
    if left:
        await asyncio.wait(left, timeout=grace)


def _projections(plan: Plan) -> list[list[str]] | None:
    """The columns each step keeps, when every step of the plan (no source) only selects
    columns by name, each once (``select("a", "b")``); None for any other plan."""
    if plan.source is not None or not plan.steps:
        return None
    kept = []
    for step in plan.steps:
        if not isinstance(step, Select) or not all(e.meta.is_column() for e in step.exprs):
            return None
        names = [e.meta.output_name() for e in step.exprs]
        if len(set(names)) != len(names):
            return None  # Polars' own error, from the plan
        kept.append(names)
    return kept


async def _project(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    plan: Plan,
    kept: list[list[str]],
) -> None:
    """`run_plan` for a plan that only selects columns (``kept``: each step's, by
    `_projections`): each chunk's columns picked without
    copying (`Backend.project`), on the event loop: no kernel to compile or to wait for
    (a spilled chunk is loaded in the thread pool). Errors are the plan's: each step is
    checked against its input's columns, once per input schema."""
    backend = ctx.backend
    checked: object = None
    columns = kept[-1]
    while (msg := await ch_in.recv(ctx)) is not None:
        chunk = TableChunk.from_message(msg)
        schema = chunk.schema
        if schema is not checked:
            names = list(schema.names)
            for step, names_after in zip(plan.steps, kept, strict=True):
                check_step(step, names)
                names = names_after
            checked = schema
        if chunk.is_available:
            out = backend.project(chunk, columns)
        else:
            out = await ctx.to_thread(backend.project, chunk, columns)
        await ch_out.send(ctx, Message(msg.sequence_number, out))
    await ch_out.drain(ctx)
