"""MPI: the ranks of a run are the processes of an MPI job (``mpiexec``, ``srun``), via mpi4py.

Installed with the ``mpi`` extra (``pip install 'streamnet[mpi]'`` brings mpi4py
and MPICH, whose ``mpiexec`` needs no system MPI). ``Context()`` uses it by
itself when the process was started by an MPI launcher with more than one rank;
:func:`launched_ranks` says whether it was.

How the ranks exchange messages: see :mod:`streamnet.comm._mpi_endpoint`.

Abort: a failing rank sends every peer a small abort message carrying its
exception; their pending and later ``send``/``recv`` raise `RemoteRankError`,
and their running networks fail with it.
An uncaught exception in the job does the same (an excepthook), so a rank that
dies outside any network does not leave its peers waiting; and MPI launchers
end the whole job when one rank exits with an error. A rank whose script ends
tells its peers too: one still waiting for a message from it fails with
`NetworkMismatchError` (the ranks ran different networks) instead of waiting
for ever. The hook prints the
traceback as Python does, each line headed by ``[rank N]``, in one write, so the
tracebacks of ranks sharing a terminal do not interleave line by line.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from streamnet._errors import BackendUnavailableError, RemoteRankError
from streamnet.comm._communicator import Communicator, FailureRecord, Tag
from streamnet.comm._mpi_endpoint import Endpoint

__all__ = ["MPICommunicator", "mpi_communicator", "mpi_rank"]


def _mpi_module() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        from streamnet.engines._launcher import launched_ranks  # engines build on comm

        raise BackendUnavailableError(
            f"this process was started as one of {launched_ranks()} MPI ranks, but mpi4py "
            f"cannot be imported ({exc}); install the MPI extra: pip install 'streamnet[mpi]'"
        ) from exc
    return MPI


class MPICommunicator(Communicator):
    """This process's rank of the MPI job; made by :func:`mpi_communicator` (or ``Context()``).

    Each communicator made in a process is a separate *epoch*: its messages never
    mix with those of communicators made before it, so networks run one after
    another never see each other's traffic. Every rank must therefore make its
    communicators (its Contexts) in the same order, as SPMD code does anyway;
    a Context meant for this rank alone takes ``communicator=SingleCommunicator()``.
    """

    def __init__(self, engine: Endpoint, epoch: int) -> None:
        self._engine = engine
        self._epoch = epoch

    @property
    def rank(self) -> int:
        return self._engine.rank

    @property
    def nranks(self) -> int:
        return self._engine.nranks

    async def send(self, dest: int, tag: Tag, payload: Any) -> None:
        self._check_peer(dest, "dest")
        await self._engine.send(dest, (self._epoch, tag), payload)

    async def recv(self, source: int, tag: Tag) -> Any:
        self._check_peer(source, "source")
        return await self._engine.recv(source, (self._epoch, tag))

    def abort(self, cause: BaseException) -> None:
        self._engine.abort(self._epoch, cause)

    def finish(self) -> None:
        self._engine.finish(self._epoch)

    def use_host_buffers(self, allocate: Callable[[int], Any]) -> None:
        self._engine.allocators[self._epoch] = allocate

    def watch(self, callback: Callable[[RemoteRankError], None]) -> Callable[[], None]:
        return self._engine.watch(self._epoch, callback)

    def _failure_record(self) -> FailureRecord:
        return self._engine.record(self._epoch)

    def __repr__(self) -> str:
        return f"<MPICommunicator rank {self.rank} of {self.nranks}, epoch {self._epoch}>"


_engine: Endpoint | None = None
_engine_lock = threading.Lock()


def mpi_rank() -> int:
    """This process's rank in the MPI job."""
    return _mpi_module().COMM_WORLD.Get_rank()  # type: ignore[no-any-return]


def mpi_communicator() -> MPICommunicator:
    """A new communicator over every rank of the MPI job (``MPI.COMM_WORLD``).

    Raises
    ------
    BackendUnavailableError
        mpi4py is not installed.
    """
    global _engine
    with _engine_lock:
        if _engine is None:
            mpi = _mpi_module()
            _engine = Endpoint(mpi.COMM_WORLD.Dup(), mpi)
            _install_excepthook(_engine)
            # Before mpi4py finalizes MPI (its own exit hook runs after Python's).
            atexit.register(_engine.finish, None)
        return MPICommunicator(_engine, next(_engine.epochs))


def _install_excepthook(engine: Endpoint) -> None:
    previous = sys.excepthook

    def abort_peers(
        kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        # the original error first, where the user looks
        if previous is sys.__excepthook__:
            report_uncaught(engine.rank, kind, error, tb)
        else:  # a hook of the user's (or of IPython) prints it its own way
            previous(kind, error, tb)
        if not isinstance(error, RemoteRankError):
            engine.abort(None, error)
        sys.stderr.flush()

    sys.excepthook = abort_peers


def report_uncaught(
    rank: int, kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    """Print an uncaught exception as Python does, each line headed by ``[rank N]``, in one
    write to standard error: the ranks of a job share a terminal (``mpiexec`` forwards their
    output as it comes), where tracebacks printed line by line interleave."""
    lines = "".join(traceback.format_exception(kind, error, tb)).splitlines(keepends=True)
    text = "".join(f"[rank {rank}] {line}" for line in lines)
    try:
        sys.stderr.flush()
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (captured): written as text
        sys.stderr.write(text)
        return
    data = text.encode(errors="backslashreplace")
    while data:
        data = data[os.write(fd, data) :]
