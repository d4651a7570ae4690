"""run_plan: an actor's plan over its input stream, chunk by chunk, on the Context's backend."""

from __future__ import annotations

from channels import Channel, Message
from streamnet._context import Context
from streamnet._table_chunk import TableChunk
from streamnet.plans import CompiledPlan, Plan, PlanParams, Stamp

__all__ = ["run_plan"]


async def run_plan(
    ctx: Context, ch_in: Channel[TableChunk], ch_out: Channel[TableChunk], plan: Plan
) -> None:
    """Run ``plan`` on every chunk of ``ch_in`` and send the results to ``ch_out``, then drain it.

    The plan is compiled once for the stream's schema (`Backend.compile`: errors
    name the actor of the failing step before any chunk runs), then each chunk
    runs through it in the Context's thread pool (`Backend.run`), one at a time.
    Sequence numbers are kept; a chunk the plan empties is sent too (it carries
    the schema).

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
    if not isinstance(plan, Plan):
        raise TypeError(f"run_plan: `plan` must be a Plan, got {type(plan).__name__}")
    backend = ctx.backend
    stamps = any(isinstance(step, Stamp) for step in plan.steps)
    params = PlanParams()
    compiled: CompiledPlan | None = None
    while (msg := await ch_in.recv(ctx)) is not None:
        chunk = TableChunk.from_message(msg)
        schema = chunk.schema  # one object per schema: compiled again only for a new one
        if compiled is None or schema is not compiled.input_schema:
            compiled = await ctx.to_thread(backend.compile, plan, schema)
        if stamps:
            params = PlanParams(rank=ctx.rank, sequence=msg.sequence_number)
        out = await ctx.to_thread(backend.run, compiled, chunk, params=params)
        await ch_out.send(ctx, Message(msg.sequence_number, out))
    await ch_out.drain(ctx)
