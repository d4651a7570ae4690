"""Ray: the ranks of a run as Ray actors, exchanging tables through Ray's object store.

Installed with the ``ray`` extra. :func:`run_on_ray` runs a job function on N
ranks, each an asynchronous Ray actor with its own :class:`Context`, on the
Ray cluster this process is connected to (a local one is started if none is).
The job is the same one :func:`run_ranks` and ``streamnet run`` accept, so
pipeline code does not change.

Tables travel in the wire format of :mod:`streamnet._wire`: their Arrow IPC
buffers become NumPy byte arrays, which Ray places in its shared object store
and the receiving rank reads without a copy. A send returns once the peer has
the message, which bounds what is in flight. A rank that fails tells the others,
whose networks fail with `RemoteRankError`; if a rank's process dies outright,
the driver tells the others the same.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from streamnet import _wire
from streamnet._communicator import Communicator, FailureRecord, Tag, remote_error
from streamnet._context import Context
from streamnet._errors import BackendUnavailableError
from streamnet._in_process import first_failure, guarded
from streamnet._tagged_inbox import TaggedInbox

__all__ = ["RayCommunicator", "run_on_ray"]

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


class _Rank:
    """One rank: the Ray actor that hosts a Context and runs the job on it.

    Every method is ``async``, so all of them run on the actor's one event loop.
    """

    def __init__(self, rank: int, nranks: int) -> None:
        self.rank = rank
        self.nranks = nranks
        self.peers: list[Any] = []
        self.inbox = TaggedInbox()  # slots: (source, tag)
        self.next_in: dict[int, int] = {}  # per source: the sequence number delivered next
        self.early: dict[int, dict[int, tuple[Tag, Any]]] = {}  # arrived before their turn
        self.next_out: dict[int, int] = {}
        self.failures = FailureRecord()

    async def connect(self, peers: list[Any]) -> None:
        self.peers = peers

    async def run(
        self, job: Callable[[Context], Awaitable[Any]], options: Mapping[str, Any]
    ) -> Any:
        with Context(communicator=RayCommunicator(self), **options) as ctx:
            return await guarded(job, ctx)

    async def deliver(
        self, source: int, seq: int, tag: Tag, header: bytes, buffers: list[Any]
    ) -> None:
        """Take message ``seq`` from ``source``; messages may arrive out of order."""
        if self.failures.failed is not None:
            return
        early = self.early.setdefault(source, {})
        early[seq] = (tag, _wire.loads(header, buffers))
        expected = self.next_in.get(source, 0)
        while expected in early:
            tag, payload = early.pop(expected)
            self.inbox.put((source, tag), payload)
            expected += 1
        self.next_in[source] = expected

    async def abort(self, rank: int, blob: bytes) -> None:
        self.fail(rank, blob)

    def fail(self, rank: int, blob: bytes) -> None:
        """Record the failure of ``rank``, wake every receiver to raise it, tell the watchers."""
        if self.failures.failed is None and self.failures.record(rank, _cause(blob)):
            self.inbox.wake()

    def raise_if_failed(self) -> None:
        self.failures.check()


class RayCommunicator(Communicator):
    """The communicator of one rank hosted by :func:`run_on_ray`."""

    def __init__(self, host: _Rank) -> None:
        self._host = host

    @property
    def rank(self) -> int:
        return self._host.rank

    @property
    def nranks(self) -> int:
        return self._host.nranks

    async def send(self, dest: int, tag: Tag, payload: Any) -> None:
        self._check_peer(dest, "dest")
        host = self._host
        host.raise_if_failed()
        if dest == host.rank:
            host.inbox.put((dest, tag), payload)
            return
        if _wire.is_bulky(payload):  # a table: write its bytes in a thread
            loop = asyncio.get_running_loop()
            header, buffers = await loop.run_in_executor(None, _wire.dumps, payload)
        else:
            header, buffers = _wire.dumps(payload)
        arrays = [np.frombuffer(buffer, dtype=np.uint8) for buffer in buffers]
        seq = host.next_out.get(dest, 0)
        host.next_out[dest] = seq + 1
        delivered = host.peers[dest].deliver.remote(host.rank, seq, tag, header, arrays)
        try:
            await delivered
        except Exception as exc:  # the peer's process is gone
            host.raise_if_failed()
            raise remote_error(dest, exc) from exc

    async def recv(self, source: int, tag: Tag) -> Any:
        self._check_peer(source, "source")
        host = self._host
        return await host.inbox.get((source, tag), host.raise_if_failed)

    def abort(self, cause: BaseException) -> None:
        host = self._host
        if host.failures.failed is not None:
            return
        blob = _blob(cause)
        host.fail(host.rank, blob)
        for peer, handle in enumerate(host.peers):
            if peer != host.rank:
                handle.abort.remote(host.rank, blob)

    def _failure_record(self) -> FailureRecord:
        return self._host.failures

    def __repr__(self) -> str:
        return f"<RayCommunicator rank {self.rank} of {self.nranks}>"


def _blob(cause: BaseException) -> bytes:
    try:
        blob = pickle.dumps(cause)
        pickle.loads(blob)
    except Exception:
        blob = pickle.dumps(RuntimeError(f"{type(cause).__name__}: {cause}"))
    return blob


def _cause(blob: bytes) -> BaseException:
    cause = pickle.loads(blob)
    return cause if isinstance(cause, BaseException) else RuntimeError(repr(cause))


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
                    handle.abort.remote(rank, _blob(error))
    return outcomes
