"""In-process ranks: N ranks in one process and one event loop, for tests and notebooks.

Each rank has its own Context and builds its own network, exactly as separate
processes would; payloads move between them by reference (no copy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from streamnet._communicator import Communicator, FailureRecord, Tag
from streamnet._context import Context
from streamnet._errors import RemoteRankError
from streamnet._tagged_inbox import TaggedInbox

__all__ = ["InProcessCommunicator", "InProcessWorld", "run_ranks", "run_ranks_async"]

R = TypeVar("R")


class InProcessWorld:
    """The shared state of ``nranks`` in-process ranks; hands out one communicator per rank.

    Examples
    --------
    >>> world = InProcessWorld(2)
    >>> [c.rank for c in world.communicators()]
    [0, 1]
    """

    def __init__(self, nranks: int) -> None:
        if type(nranks) is not int or nranks < 1:
            raise ValueError(f"InProcessWorld: `nranks` must be an int >= 1, got {nranks!r}")
        self.nranks = nranks
        self._inbox = TaggedInbox()  # slots: (source, dest, tag)
        self._failures = FailureRecord()

    def communicator(self, rank: int) -> InProcessCommunicator:
        """The communicator of ``rank``."""
        return InProcessCommunicator(self, rank)

    def communicators(self) -> list[InProcessCommunicator]:
        """One communicator per rank, in rank order."""
        return [self.communicator(rank) for rank in range(self.nranks)]

    @property
    def failure(self) -> tuple[int, BaseException] | None:
        """``(rank, cause)`` of the first rank that aborted, or None."""
        return self._failures.failed

    def _raise_if_failed(self, rank: int) -> None:
        self._failures.check()

    def _abort(self, rank: int, cause: BaseException) -> None:
        if self._failures.record(rank, cause):
            self._inbox.wake()


class InProcessCommunicator(Communicator):
    """One rank of an :class:`InProcessWorld`."""

    def __init__(self, world: InProcessWorld, rank: int) -> None:
        if type(rank) is not int or not 0 <= rank < world.nranks:
            raise ValueError(f"rank must be in 0..{world.nranks - 1}, got {rank!r}")
        self._world = world
        self._rank = rank

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def nranks(self) -> int:
        return self._world.nranks

    async def send(self, dest: int, tag: Tag, payload: Any) -> None:
        self._check_peer(dest, "dest")
        self._world._raise_if_failed(self._rank)
        self._world._inbox.put((self._rank, dest, tag), payload)

    async def recv(self, source: int, tag: Tag) -> Any:
        self._check_peer(source, "source")
        world = self._world
        return await world._inbox.get(
            (source, self._rank, tag), lambda: world._raise_if_failed(self._rank)
        )

    def abort(self, cause: BaseException) -> None:
        self._world._abort(self._rank, cause)

    def _failure_record(self) -> FailureRecord:
        return self._world._failures

    def __repr__(self) -> str:
        return f"<InProcessCommunicator rank {self._rank} of {self.nranks}>"


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
        return await job(ctx)
    except BaseException as exc:
        if not isinstance(exc, RemoteRankError):
            ctx.communicator.abort(exc)  # a failure outside any network still reaches the peers
        raise
