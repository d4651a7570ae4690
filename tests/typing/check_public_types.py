"""What a type checker sees of the public API: checked by mypy (``make lint``), not run.

Each ``assert_type`` states the type a user's checker infers; mypy fails on a wrong one.
"""

from __future__ import annotations

from typing import Any, assert_type

import polars as pl

import actors
from actors.testing import run_pipeline
from streamnet import (
    ActorNode,
    ActorRuntime,
    Channel,
    Context,
    PersistentActorContext,
    PersistentActorState,
    TableChunk,
    define_actor,
)


@define_actor
async def count_rows(ctx: Context, ch_in: Channel[TableChunk]) -> int:
    total = 0
    while (msg := await ch_in.recv(ctx)) is not None:
        total += TableChunk.from_message(msg).num_rows
    return total


@define_actor(name="labelled")
async def label(ctx: Context, ch_in: Channel[TableChunk], *, prefix: str) -> list[str]:
    return [prefix]


def nodes_are_typed_by_what_their_function_returns(ctx: Context) -> None:
    ch = ctx.create_channel(TableChunk)
    assert_type(ch, Channel[TableChunk])
    assert_type(ctx.create_channel(), Channel[Any])
    assert_type(ctx.create_channel(int, capacity=4), Channel[int])

    node = count_rows(ctx, ch)
    assert_type(node, ActorNode[int])
    assert_type(node.result(), int)
    assert_type(node.named("rows"), ActorNode[int])
    assert_type(label(ctx, ch, prefix="p").result(), list[str])

    untyped: ActorNode = node  # unparametrised means ActorNode[Any]
    assert_type(untyped.result(), Any)


def the_table_kind_types_run_pipeline(df: pl.DataFrame) -> None:
    assert_type(run_pipeline(df), pl.DataFrame)
    assert_type(run_pipeline(df, into="polars"), pl.DataFrame)
    kind: actors.TableKind = "arrow"
    assert kind in ("arrow", "polars", "pandas")


async def persistent_actor_context(ctx: PersistentActorContext, runtime: ActorRuntime) -> None:
    def parse(text: str) -> float:
        return float(text)

    assert_type(await ctx.to_thread(parse, "1.5"), float)
    assert_type(runtime.state("a"), PersistentActorState)
