"""Ray: :func:`run_on_ray` runs a job on N ranks, each an asynchronous Ray actor.

Installed with the ``ray`` extra. Each rank is a Ray actor with its own
:class:`Context`, on the Ray cluster this process is connected to (a local one is
started if none is). The job is the same one :func:`run_ranks` and ``streamnet
run`` accept, so pipeline code does not change. The ranks talk through
`RayCommunicator` (:mod:`streamnet.comm._ray`); if a rank's process dies
outright, the driver tells the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from streamnet._context import Context
from streamnet._errors import BackendUnavailableError
from streamnet.comm._ray import RankEndpoint, RayCommunicator, failure_blob
from streamnet.engines._in_process import first_failure, guarded

__all__ = ["run_on_ray"]

R = TypeVar("R")


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailableError(
            f"run_on_ray: Ray cannot be imported ({exc}); install the Ray extra: "
            "pip install 'streamnet[ray]'"
        ) from exc
    return ray


class _Rank(RankEndpoint):
    """One rank: the Ray actor that hosts a Context and runs the job on it.

    Every method is ``async``, so all of them run on the actor's one event loop.
    """

    async def run(
        self, job: Callable[[Context], Awaitable[Any]], options: Mapping[str, Any]
    ) -> Any:
        with Context(communicator=RayCommunicator(self), **options) as ctx:
            return await guarded(job, ctx)


def run_on_ray(
    nranks: int,
    job: Callable[[Context], Awaitable[R]],
    *,
    actor_options: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    **context_options: Any,
) -> list[R]:
    """Run ``job(ctx)`` on ``nranks`` ranks hosted as Ray actors; their results in rank order.

    Connects to the Ray cluster this process already joined (``ray.init(...)``),
    or starts a local one (which takes a few seconds, once per process).

    Parameters
    ----------
    job
        An ``async`` function of a :class:`Context` that builds the rank's network
        and awaits ``network.run_async()``, as for :func:`run_ranks`. Ray sends it
        to the ranks with cloudpickle; what it returns comes back the same way.
    actor_options
        Options for each rank's Ray actor (``num_cpus``, ``resources``,
        ``scheduling_strategy``...). By default a rank reserves no CPU, so any
        number of ranks fits on a small machine.
    timeout
        Seconds to wait for the ranks; on expiry they are stopped and
        ``TimeoutError`` is raised.
    context_options
        Passed to each rank's :class:`Context`.

    Raises
    ------
    Exception
        The first rank's original error (with a note naming its rank) when a
        rank fails; a rank whose process dies raises `RemoteRankError`.
    BackendUnavailableError
        Ray is not installed.
    """
    if type(nranks) is not int or nranks < 1:
        raise ValueError(f"run_on_ray: `nranks` must be an int >= 1, got {nranks!r}")
    ray = _ray()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=True)
    options = {"num_cpus": 0, **(actor_options or {})}
    rank_class = ray.remote(_Rank)
    ranks = [rank_class.options(**options).remote(rank, nranks) for rank in range(nranks)]
    try:
        ray.get([rank.connect.remote(ranks) for rank in ranks], timeout=timeout)
        runs = [rank.run.remote(job, dict(context_options)) for rank in ranks]
        outcomes = _gather(ray, ranks, runs, timeout)
    finally:
        for rank in ranks:
            ray.kill(rank)
    failure = first_failure(outcomes)
    if failure is not None:
        raise failure
    return outcomes


def _gather(ray: Any, ranks: list[Any], runs: list[Any], timeout: float | None) -> list[Any]:
    """Every rank's result or error; a rank that died is reported to the others."""
    outcomes: list[Any] = [None] * len(runs)
    index = {run: i for i, run in enumerate(runs)}
    pending = list(runs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=timeout)
        if not done:
            raise TimeoutError(f"run_on_ray: the ranks did not finish within {timeout} s")
        rank = index[done[0]]
        try:
            outcomes[rank] = ray.get(done[0])
        except ray.exceptions.RayTaskError as exc:  # the job raised: its own error
            outcomes[rank] = exc.cause if isinstance(exc.cause, BaseException) else exc
        except ray.exceptions.RayActorError as exc:  # the rank's process is gone
            error = RuntimeError(f"the Ray actor of rank {rank} died: {exc}")
            outcomes[rank] = error
            for peer, handle in enumerate(ranks):
                if peer != rank:
                    handle.abort.remote(rank, failure_blob(error))
    return outcomes
