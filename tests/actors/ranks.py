"""Where the multi-rank tests run: in-process ranks, or the processes of an MPI job.

Under ``mpiexec -n W python -m pytest ...`` each test process is one rank:
``size(n)`` is W whatever the test asked for, and ``run(n, job)`` runs ``job``
on this rank, then gathers every rank's outcome, so that every rank asserts on
the same results and raises the same error, exactly as ``run_ranks`` would in
one process. Otherwise ``run`` is ``run_ranks`` with a time bound.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable
from typing import Any

from bounded import run_ranks_within

from streamnet import Context, launched_ranks
from streamnet.engines._in_process import first_failure, guarded

WORLD = launched_ranks() or 1
UNDER_MPI = WORLD > 1


def size(nranks: int) -> int:
    """The number of ranks a test asking for ``nranks`` runs on."""
    return WORLD if UNDER_MPI else nranks


def here(nranks: int) -> set[int]:
    """The ranks whose code runs in this process: all of them, or this MPI rank."""
    if not UNDER_MPI:
        return set(range(nranks))
    from streamnet.comm._mpi import mpi_rank

    return {mpi_rank()}


def run(
    nranks: int, job: Callable[[Context], Awaitable[Any]], *, within: float = 60, **options: Any
) -> list[Any]:
    """Every rank's result of ``job``, in rank order; raises the failing rank's error.
    ``options`` go to each rank's Context."""
    if not UNDER_MPI:
        return run_ranks_within(within, nranks, job, **options)
    assert nranks == WORLD, f"a test under MPI runs on {WORLD} ranks, asked for {nranks}"
    return asyncio.run(_run_here(job, within, options))


async def _run_here(
    job: Callable[[Context], Awaitable[Any]], within: float, options: dict[str, Any]
) -> list[Any]:
    from streamnet import mpi_communicator

    comm, outcomes = mpi_communicator(), mpi_communicator()  # same order on every rank
    with Context(communicator=comm, **options) as ctx:
        try:
            mine: Any = await asyncio.wait_for(guarded(job, ctx), within)
        except Exception as exc:
            mine = exc
    everyone = await outcomes.allgather("outcome", _portable(mine))
    failure = first_failure(everyone)
    if failure is not None:
        raise failure
    return everyone


def _portable(outcome: Any) -> Any:
    """``outcome``, or for an error that does not survive pickling, one that describes it."""
    if isinstance(outcome, BaseException):
        try:
            pickle.loads(pickle.dumps(outcome))
        except Exception:
            return RuntimeError(f"{type(outcome).__name__}: {outcome}")
    return outcome
