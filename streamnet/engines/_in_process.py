"""In-process ranks: N ranks in one process and one event loop, for tests and notebooks.

Each rank has its own Context and builds its own network, exactly as separate
processes would; their communicators are an `InProcessWorld`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from streamnet._context import Context
from streamnet._errors import RemoteRankError
from streamnet.comm._in_process import InProcessWorld

__all__ = ["first_failure", "guarded", "run_ranks", "run_ranks_async"]

R = TypeVar("R")


def run_ranks(
    nranks: int,
    job: Callable[[Context], Awaitable[R]],
    **context_options: Any,
) -> list[R]:
    """Run ``job(ctx)`` on ``nranks`` in-process ranks at once; their results in rank order.

    Each rank gets its own :class:`Context` (``context_options`` are passed to
    it) whose communicator joins the others. ``job`` builds the rank's network
    and awaits ``network.run_async()``, as one process of a multi-process run would.
    In a notebook or other async code, ``await run_ranks_async(...)`` instead.

    If a rank fails, every other rank's network fails with `RemoteRankError`, and
    the original exception is raised here, with a note naming its rank.

    Examples
    --------
    >>> async def job(ctx):
    ...     return ctx.rank * 10
    >>> run_ranks(3, job)
    [0, 10, 20]
    """
    return asyncio.run(run_ranks_async(nranks, job, **context_options))


async def run_ranks_async(
    nranks: int,
    job: Callable[[Context], Awaitable[R]],
    **context_options: Any,
) -> list[R]:
    """:func:`run_ranks` on the running event loop (for notebooks and async code)."""
    world = InProcessWorld(nranks)
    contexts = [Context(communicator=comm, **context_options) for comm in world.communicators()]
    try:
        outcomes = await asyncio.gather(
            *(guarded(job, ctx) for ctx in contexts), return_exceptions=True
        )
    finally:
        for ctx in contexts:
            ctx.close()
    failure = first_failure(outcomes)
    if failure is not None:
        raise failure
    return outcomes  # type: ignore[return-value]


def first_failure(outcomes: list[Any]) -> BaseException | None:
    """The error to raise for a run whose ranks ended with ``outcomes`` (None if none failed).

    The original error wins over the `RemoteRankError`s it caused on the other
    ranks; it gets a note naming its rank.
    """
    failures = [(rank, o) for rank, o in enumerate(outcomes) if isinstance(o, BaseException)]
    if not failures:
        return None
    primary = [(r, e) for r, e in failures if not isinstance(e, RemoteRankError)]
    rank, error = (primary or failures)[0]
    notes = getattr(error, "__notes__", [])
    if isinstance(error, Exception) and not any("on rank" in n for n in notes):
        error.add_note(f"on rank {rank} of {len(outcomes)}")
    return error


async def guarded(job: Callable[[Context], Awaitable[R]], ctx: Context) -> R:
    try:
        result = await job(ctx)
    except BaseException as exc:
        if not isinstance(exc, RemoteRankError):
            ctx.communicator.abort(exc)  # a failure outside any network still reaches the peers
        raise
    ctx.communicator.finish()  # a peer still waiting for this rank fails, never hangs
    return result
