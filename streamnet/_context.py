"""Context: what every actor of a network shares (backend, threads, options, statistics).

Its thread pool for blocking kernels is a `KernelPool` (``_kernel_pool.py``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Literal, ParamSpec, TypeVar, overload

from channels import Channel
from streamnet._errors import BackendUnavailableError
from streamnet._kernel_pool import KernelPool
from streamnet._typing import BackendName
from streamnet.backends._base import Backend
from streamnet.backends._registry import backend_for
from streamnet.comm._communicator import Communicator, SingleCommunicator
from streamnet.memory._budget import HEADROOM, MemoryBudget, parse_memory_limit
from streamnet.memory._spill import SpillDirectory
from streamnet.observe._progress import ProgressTracker
from streamnet.observe._statistics import ContextActivity, NetworkStatistics

__all__ = ["Context"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Context:
    """The runtime shared by the actors of a network.

    Parameters
    ----------
    backend
        Where tables live and kernels run (``ctx.backend`` is the `Backend`):
        ``"cpu"`` (Arrow tables and Polars frames), ``"gpu"``, or ``"auto"``
        (the GPU where it works, else the CPU). None (default): the process's
        default, ``"cpu"`` unless the environment variable ``STREAMNET_BACKEND``
        names another (see `default_backend`).
    num_threads
        Size of the thread pool that runs blocking kernels. Arrow and Polars
        release the GIL there, and many kernels wait on I/O, so the default is
        Python's own for thread pools: the number of CPUs + 4, at most 32.
    channel_capacity
        Default capacity, in messages, of channels made by :meth:`create_channel`.
    options
        Free-form settings that actors may read (``ctx.options["key"]``).
    cancel_grace
        Seconds a failing network waits for its cancelled actors to stop before
        it cancels them again, and as long again before it raises anyway, naming
        the actors that did not stop. Also the most a cancelled actor waits for
        a kernel of its own that is running (see :meth:`to_thread`).
    communicator
        How this rank reaches the others. Collective actors exchange data
        through it. Default: the ranks of the MPI job when the process was
        started by an MPI launcher (``streamnet run -n N``, ``mpiexec``, ``srun``)
        with more than one rank, otherwise a single rank; so one ``job.py`` runs
        unchanged on one rank or many.
    trace
        Record when each actor waits, for ``network.timeline()`` (costs a little
        per wait, nothing per message).
    trace_limit
        With ``trace``, the waits kept per actor: a ring buffer of the latest
        ones (about 120 bytes each), so memory stays bounded however long the
        run. The timeline of an actor that waited more often starts at its
        oldest wait kept.
    spill_directory
        Where chunks are spilled to disk (default: Python's temporary
        directory). The Context checks that it is writable when made, spills
        into a folder of its own there (``ctx.spills``), removes the spill files
        of a run when the run ends, whichever way, and the folder when closed.
    memory_limit
        The memory this rank should stay within: bytes, a fraction of the
        machine's memory (``0.5``), or a size such as ``"2GiB"`` or ``"500MB"``.
        Its actors hold and reserve at most 85% of it (``ctx.memory``, a
        `MemoryBudget`; the rest is left to the interpreter, the libraries and
        the allocators, which no budget sees). Beyond that, the chunks that
        collectives hold (exchanged partitions, sorted runs, join sides) are
        spilled to ``spill_directory``, largest and coldest first, and sort,
        join and group-by size their work to fit. None (default): no limit.
    stall_timeout
        Seconds a running network may go without progress (no message moved
        on a channel or between ranks, no actor ended) while no kernel runs in
        the thread pool, before it fails with `DeadlockError` naming what each
        actor waits on. None (default) never: actors that wait on channels
        only are found deadlocked without it, this also catches actors that
        wait forever on anything else. With several ranks, set it above the
        longest time a rank may wait for its peers.
    blocked_loop_warning
        Seconds an actor may hold the event loop (running Python code without
        awaiting: ``time.sleep``, a long loop) before a warning on the
        ``streamnet`` logger names it; every other actor stands still
        meanwhile. None turns the watchdog off. Move such work to
        ``await ctx.to_thread(fn, *args)``.

    Examples
    --------
    >>> with Context(num_threads=2) as ctx:
    ...     ch = ctx.create_channel(int, capacity=4)
    >>> ch.capacity
    4
    """

    def __init__(
        self,
        *,
        backend: BackendName | Literal["auto"] | None = None,
        num_threads: int | None = None,
        channel_capacity: int = 2,
        options: Mapping[str, Any] | None = None,
        cancel_grace: float = 5.0,
        communicator: Communicator | None = None,
        trace: bool = False,
        trace_limit: int = 10_000,
        spill_directory: str | os.PathLike[str] | None = None,
        memory_limit: int | float | str | None = None,
        stall_timeout: float | None = None,
        blocked_loop_warning: float | None = 1.0,
    ) -> None:
        if num_threads is not None and (type(num_threads) is not int or num_threads < 1):
            raise ValueError(f"Context: `num_threads` must be an int >= 1, got {num_threads!r}")
        if type(channel_capacity) is not int or channel_capacity < 1:
            raise ValueError(
                f"Context: `channel_capacity` must be an int >= 1, got {channel_capacity!r}"
            )
        if type(trace_limit) is not int or trace_limit < 1:
            raise ValueError(f"Context: `trace_limit` must be an int >= 1, got {trace_limit!r}")
        if cancel_grace < 0:
            raise ValueError(f"Context: `cancel_grace` must be >= 0, got {cancel_grace!r}")
        for option, value in (
            ("stall_timeout", stall_timeout),
            ("blocked_loop_warning", blocked_loop_warning),
        ):
            if value is not None and (type(value) not in (int, float) or not value > 0):
                raise ValueError(f"Context: `{option}` must be None or a number > 0, got {value!r}")
        self._backend: Backend = _make_backend(backend)
        self._kernels = KernelPool(
            num_threads if num_threads is not None else min(32, (os.cpu_count() or 1) + 4),
            cancel_grace=float(cancel_grace),
        )
        self._channel_capacity = channel_capacity
        self._options: Mapping[str, Any] = MappingProxyType(dict(options or {}))
        self._cancel_grace = float(cancel_grace)
        self._closed = False
        self.activity = ContextActivity()
        """What ran with this Context: actors, channels, runs (see :class:`ContextActivity`)."""
        self._actor_counts: dict[str, int] = {}
        if communicator is not None and not isinstance(communicator, Communicator):
            raise TypeError(
                f"Context: `communicator` must be a streamnet.Communicator, got {communicator!r}"
            )
        self._communicator = communicator if communicator is not None else _launched_communicator()
        self._communicator.use_host_buffers(self._backend.host_buffer)
        self._op_ids = 0
        self.trace = bool(trace)
        self.trace_limit = trace_limit
        self.spills = SpillDirectory(spill_directory)
        """Where this Context's chunks spill (see :class:`SpillDirectory`)."""
        self.memory = MemoryBudget(
            parse_memory_limit(memory_limit, where="Context: `memory_limit`"),
            self.spills,
            self.to_thread,
            self._bytes_in_channels,
            headroom=HEADROOM,
        )
        """What this Context's actors hold and reserve, under ``memory_limit``
        (see :class:`MemoryBudget`)."""
        if self.memory.limit is not None:
            self._backend.free_promptly()  # the process holds what the budget counts
        if self.trace:
            self.memory.trace(trace_limit)
        self.progress = ProgressTracker()
        """Where sources report rows read (see :class:`ProgressTracker`)."""
        self._stall_timeout = None if stall_timeout is None else float(stall_timeout)
        self._blocked_loop_warning = (
            None if blocked_loop_warning is None else float(blocked_loop_warning)
        )

    @property
    def backend(self) -> Backend:
        """The `Backend` that holds this Context's tables and runs its kernels
        (``ctx.backend.name`` is ``"cpu"`` or ``"gpu"``)."""
        return self._backend

    @property
    def num_threads(self) -> int:
        """Size of the kernel thread pool."""
        return self._kernels.num_threads

    @property
    def options(self) -> Mapping[str, Any]:
        """Read-only free-form settings."""
        return self._options

    @property
    def communicator(self) -> Communicator:
        """How this rank reaches the others."""
        return self._communicator

    @property
    def rank(self) -> int:
        """This rank (0 in a single-rank run)."""
        return self._communicator.rank

    @property
    def nranks(self) -> int:
        """Number of ranks in the run."""
        return self._communicator.nranks

    @property
    def cancel_grace(self) -> float:
        """Seconds a failing network waits for cancelled actors to stop."""
        return self._cancel_grace

    @property
    def stall_timeout(self) -> float | None:
        """Seconds without progress before a network fails with `DeadlockError`, or None."""
        return self._stall_timeout

    @property
    def blocked_loop_warning(self) -> float | None:
        """Seconds an actor may block the event loop before a warning names it, or None."""
        return self._blocked_loop_warning

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def __repr__(self) -> str:
        return (
            f"<Context backend={self._backend.name!r} num_threads={self.num_threads} "
            f"rank={self.rank} of {self.nranks}>"
        )

    # ----------------------------------------------------------------- channels
    def _bytes_in_channels(self) -> int:
        """Bytes of the messages waiting in this Context's channels now (for its budget)."""
        return self.activity.buffered.total

    @overload
    def create_channel(
        self,
        payload_type: type[T],
        *,
        capacity: int | None = None,
        max_bytes: int | None = None,
        name: str | None = None,
    ) -> Channel[T]: ...

    @overload
    def create_channel(
        self,
        payload_type: None = None,
        *,
        capacity: int | None = None,
        max_bytes: int | None = None,
        name: str | None = None,
    ) -> Channel[Any]: ...

    def create_channel(
        self,
        payload_type: type[T] | None = None,
        *,
        capacity: int | None = None,
        max_bytes: int | None = None,
        name: str | None = None,
    ) -> Channel[T] | Channel[Any]:
        """A new channel; ``capacity`` defaults to the Context's ``channel_capacity``.

        With a ``payload_type``, a ``Channel[payload_type]`` (sends check it); without,
        a ``Channel[Any]``. See :class:`channels.Channel` for the parameters.
        """
        if name is None:
            name = f"ch#{len(self.activity.channels)}"
        channel: Channel[T] = Channel(
            payload_type,
            capacity=self._channel_capacity if capacity is None else capacity,
            max_bytes=max_bytes,
            name=name,
        )
        self.activity.track((channel,))
        return channel

    # ----------------------------------------------------------------- threads
    async def to_thread(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a blocking ``fn(*args, **kwargs)`` in the Context's thread pool and await it.

        Cancelling the caller never frees what a running kernel uses. A kernel
        not started yet never runs. A running one is waited for before the
        cancellation goes on, so the caller's cleanup (closing a writer,
        freeing a buffer) runs after it. In an actor, or a task started with
        `streamnet.start_task`, the wait lasts ``cancel_grace`` seconds at most,
        or until the task is cancelled again (a second Ctrl-C): a kernel still
        running then is left running, a warning names the actor and the kernel,
        and the task ends at once, as cancelled, while the caller's coroutine
        waits, its cleanup put off until the kernel ends. In any other task,
        the wait lasts until the kernel ends.

        Raises
        ------
        RuntimeError
            The Context was closed.
        """
        return await self._kernels.run(fn, *args, **kwargs)

    @property
    def kernels_running(self) -> bool:
        """Whether a kernel runs (or waits to run) in the thread pool now."""
        return self._kernels.running

    # ----------------------------------------------------------------- actors and statistics
    def actor_name(self, base: str, *, take: bool = True) -> str:
        """The name of the next node of actor ``base`` made on this Context (``base#0``,
        ``base#1``...); ``take=False`` only tells it. `define_actor` names nodes so."""
        index = self._actor_counts.get(base, 0)
        if take:
            self._actor_counts[base] = index + 1
        return f"{base}#{index}"

    def next_op_id(self) -> int:
        """A new collective operation id: 0, 1, 2... in the order collective nodes are
        made on this rank (so the same network gets the same ids on every rank)."""
        op_id = self._op_ids
        self._op_ids += 1
        return op_id

    def statistics(self) -> NetworkStatistics:
        """Statistics of every actor run and channel made with this Context so far."""
        return NetworkStatistics(
            actors=tuple(r.snapshot() for r in self.activity.recorders),
            channels=tuple(c.statistics() for c in self.activity.channels),
        )

    # ----------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Shut the thread pool down (waiting for running kernels), remove the spill
        folder and close the backend. Idempotent."""
        self._closed = True
        self._kernels.close()
        self.spills.close()
        self._backend.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Context:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)


def _make_backend(name: object) -> Backend:
    """The backend ``Context(backend=name)`` asks for (see `backend_for`)."""
    if name not in (None, "cpu", "gpu", "auto"):
        raise ValueError(f"Context: `backend` must be 'cpu', 'gpu', 'auto' or None, got {name!r}")
    try:
        return backend_for(name)
    except BackendUnavailableError as exc:
        raise BackendUnavailableError(f"Context: {exc}") from None


def _launched_communicator() -> Communicator:
    """The MPI job's ranks when an MPI launcher started this process among several."""
    from streamnet.comm._mpi import mpi_communicator
    from streamnet.engines._launcher import launched_ranks  # engines build on the Context

    ranks = launched_ranks()
    if ranks is not None and ranks > 1:
        return mpi_communicator()
    return SingleCommunicator()
