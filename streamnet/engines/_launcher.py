"""``streamnet run -n N job.py``: start N ranks of a job through ``mpiexec``.

Inside the job, ``Context()`` picks up its rank from the MPI launcher's
environment (:func:`launched_ranks`, and :mod:`streamnet.comm._mpi` for the
communicator), so the same script runs on one rank
under plain ``python job.py``. On a cluster, start it with the site's own
launcher instead (``srun python job.py``, ``mpiexec -n 64 python job.py``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from streamnet._errors import BackendUnavailableError

__all__ = ["find_mpiexec", "launch_command", "launched_ranks", "run_job"]

# Variables MPI launchers set in each rank's environment to the number of ranks.
_LAUNCHER_VARIABLES = (
    "PMI_SIZE",  # MPICH and Intel MPI (Hydra), srun --mpi=pmi2
    "OMPI_COMM_WORLD_SIZE",  # Open MPI
    "SLURM_STEP_NUM_TASKS",  # srun (set for a job step, not for the batch script)
)


def launched_ranks() -> int | None:
    """Number of ranks an MPI launcher started this process among, from the environment.

    None when no launcher variable is set (a plain ``python job.py``).

    Examples
    --------
    >>> launched_ranks() is None or launched_ranks() >= 1
    True
    """
    for variable in _LAUNCHER_VARIABLES:
        value = os.environ.get(variable)
        if value is not None and value.strip().isdigit():
            return int(value)
    return None


def find_mpiexec() -> str:
    """The ``mpiexec`` to use: ``$STREAMNET_MPIEXEC``, the one installed beside this
    Python (the ``mpich`` wheel puts it there), or the first on ``PATH``.

    Raises
    ------
    BackendUnavailableError
        None is installed; the message says how to get one.
    """
    chosen = os.environ.get("STREAMNET_MPIEXEC")
    if chosen:
        return chosen
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise BackendUnavailableError(
            "streamnet run: no `mpiexec` found beside Python or on PATH; install the MPI "
            "extra (pip install 'streamnet[mpi]', which brings MPICH) or set STREAMNET_MPIEXEC"
        )
    return found


def launch_command(nranks: int, job: Sequence[str], *, mpiexec: str | None = None) -> list[str]:
    """The command that starts ``job`` (a script and its arguments, or ``-m module ...``) on
    ``nranks`` ranks.

    Examples
    --------
    >>> launch_command(2, ["job.py", "--rows", "10"], mpiexec="mpiexec")[:3]
    ['mpiexec', '-n', '2']
    """
    if type(nranks) is not int or nranks < 1:
        raise ValueError(f"streamnet run: `-n` must be an int >= 1, got {nranks!r}")
    if not job:
        raise ValueError("streamnet run: name the job script (or -m module) to run")
    return [mpiexec or find_mpiexec(), "-n", str(nranks), sys.executable, *job]


def run_job(nranks: int, job: Sequence[str]) -> int:
    """Run ``job`` on ``nranks`` ranks and return its exit status (non-zero if any rank failed)."""
    if job and job[0] != "-m" and not Path(job[0]).is_file():
        raise FileNotFoundError(f"streamnet run: job script `{job[0]}` does not exist")
    if importlib.util.find_spec("mpi4py") is None:
        raise BackendUnavailableError(
            "streamnet run: mpi4py is not installed; install the MPI extra: "
            "pip install 'streamnet[mpi]'"
        )
    command = launch_command(nranks, job)
    return subprocess.call(command)
