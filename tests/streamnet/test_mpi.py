"""Multi-process ranks over MPI: the wire format, the launcher, and whole jobs under mpiexec."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from streamnet import Context, RemoteRankError, SingleCommunicator, TableChunk
from streamnet._errors import BackendUnavailableError
from streamnet._launcher import find_mpiexec, launch_command
from streamnet._mpi import launched_ranks
from streamnet._wire import dumps, loads

ROOT = Path(__file__).resolve().parents[2]
JOBS = Path(__file__).parent / "mpi_jobs"
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="the mpi extra is not installed")


# --------------------------------------------------------------------- wire format
def test_wire_sends_tables_as_ipc_buffers_and_rebuilds_every_kind() -> None:
    table = pa.table({"x": [1, None, 3], "s": ["a", "b", None]})
    payload = {
        "table": table,
        "batch": table.to_batches()[0],
        "frame": pl.DataFrame({"d": [1.5, None]}),
        "chunk": TableChunk.from_polars(pl.DataFrame({"z": [1, 2]})),
        "empty": pl.DataFrame({"q": [1]}).head(0),
        "array": np.arange(4),
        "plain": (7, "text", None),
    }
    header, buffers = dumps(payload)
    assert len(buffers) == 6  # five tables and the NumPy array travel beside the header
    assert len(header) < 2_000  # the header holds no table data
    got = loads(header, [pa.py_buffer(bytes(b)) for b in buffers])
    assert got["table"].equals(table)
    assert got["batch"].equals(table.to_batches()[0])
    assert got["frame"].equals(payload["frame"])
    assert got["chunk"].to_polars().equals(payload["chunk"].to_polars())
    assert got["empty"].schema == payload["empty"].schema and got["empty"].height == 0
    assert got["array"].tolist() == [0, 1, 2, 3] and got["plain"] == (7, "text", None)


def test_wire_rejects_what_cannot_travel_naming_its_type() -> None:
    with pytest.raises(TypeError, match="cannot send a tuple to another rank"):
        dumps((1, lambda: None))


def test_remote_rank_errors_survive_pickling() -> None:
    import pickle

    error = RemoteRankError(2, ValueError("bad"))
    error.add_note("on rank 0 of 3")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.rank, str(copy.cause), copy.__notes__) == (2, "bad", ["on rank 0 of 3"])


# --------------------------------------------------------------------- environment
@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, None),
        ({"PMI_SIZE": "4"}, 4),
        ({"OMPI_COMM_WORLD_SIZE": "2"}, 2),
        ({"SLURM_STEP_NUM_TASKS": "8"}, 8),
        ({"PMI_SIZE": "garbage"}, None),
    ],
)
def test_launched_ranks_reads_the_launchers_variables(monkeypatch, variables, expected) -> None:
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert launched_ranks() == expected


def test_a_plain_process_and_a_one_rank_launch_get_a_single_rank(monkeypatch) -> None:
    monkeypatch.setenv("PMI_SIZE", "1")
    with Context() as ctx:
        assert isinstance(ctx.communicator, SingleCommunicator)
        assert (ctx.rank, ctx.nranks) == (0, 1)


def test_several_launched_ranks_without_mpi4py_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed
    import streamnet._mpi as mpi

    monkeypatch.setattr(mpi, "_engine", None)
    with pytest.raises(BackendUnavailableError, match=r"one of 2 MPI ranks.*streamnet\[mpi\]"):
        Context()


# --------------------------------------------------------------------- launcher
def test_launch_command_and_its_errors(monkeypatch) -> None:
    assert launch_command(3, ["job.py", "-x"], mpiexec="mpx") == [
        "mpx", "-n", "3", sys.executable, "job.py", "-x",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="`-n` must be an int >= 1, got 0"):
        launch_command(0, ["job.py"], mpiexec="mpx")
    with pytest.raises(ValueError, match="name the job script"):
        launch_command(2, [], mpiexec="mpx")
    monkeypatch.setenv("STREAMNET_MPIEXEC", "/opt/site/bin/mpiexec")
    assert find_mpiexec() == "/opt/site/bin/mpiexec"


def test_streamnet_run_names_a_missing_script(capsys) -> None:
    from streamnet.__main__ import main

    assert main(["run", "-n", "2", "no-such-job.py"]) == 2
    assert "job script `no-such-job.py` does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------- whole jobs
def run_job(*args: str, timeout: float = 100) -> tuple[int, str, float]:
    """``streamnet run ARGS`` in a fresh process group; (exit status, output, seconds).

    Whatever ends the wait (the job, ``timeout``, the test's own timeout), no rank
    outlives it: the whole process group is killed on the way out. Keep ``timeout``
    below the test's timeout so that a hang is reported with the job's output.
    """
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamnet", "run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"`streamnet run {' '.join(args)}` hung:\n{output[-3000:]}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # ranks left behind by a launcher that exited
        if process.poll() is None:
            process.wait()
    return process.returncode, output, time.monotonic() - start


@needs_mpi
@pytest.mark.parametrize("nranks", [2, 3])
def test_ranks_exchange_tables_in_order_without_waiting_on_each_other(nranks: int) -> None:
    status, output, _ = run_job("-n", str(nranks), str(JOBS / "exchange.py"))
    assert status == 0, output[-3000:]
    for rank in range(nranks):
        assert f"rank {rank} of {nranks}: exchange ok" in output


@needs_mpi
@pytest.mark.parametrize("mode", ["raise", "early"])
def test_a_failing_rank_ends_the_whole_job_with_its_error_visible(mode: str) -> None:
    status, output, seconds = run_job("-n", "3", str(JOBS / "failing.py"), mode)
    assert status != 0, output[-3000:]
    assert seconds < 60
    original = "ValueError: bad record on rank 1" if mode == "raise" else "could not open the input"
    assert original in output
    assert "RemoteRankError: rank 1 failed" in output  # the peers say who failed
    assert "finished without the failure" not in output


@needs_mpi
def test_a_rank_dying_outright_ends_the_whole_job() -> None:
    status, output, seconds = run_job("-n", "2", str(JOBS / "failing.py"), "exit")
    assert status != 0, output[-3000:]
    assert seconds < 60
    assert "finished without the failure" not in output


@needs_mpi
@pytest.mark.timeout(450)
@pytest.mark.parametrize("nranks", [2, 3])
def test_the_collective_suite_passes_under_mpiexec(nranks: int) -> None:
    """The collective tests again, each test process one rank of an MPI job."""
    suite = [
        "tests/actors/test_collectives.py",
        "tests/actors/test_collective_failures.py",
        "tests/actors/test_collective_inputs.py",
    ]
    status, output, _ = run_job(
        "-n", str(nranks), "-m", "pytest", *suite, "-q", "-x", "-p", "no:cacheprovider",
        "-p", "no:randomly", timeout=400,
    )  # fmt: skip
    assert status == 0, output[-5000:]
    assert output.count(" passed") == nranks


@needs_mpi
def test_the_demo_on_two_ranks_gives_polars_answer(tmp_path) -> None:
    status, output, _ = run_job(
        "-n", "2", "-m", "streamnet", "demo", "--rows", "600000", "--data-dir", str(tmp_path)
    )
    assert status == 0, output[-3000:]
    assert "pipeline on 2 ranks" in output
    assert "same answer as Polars: yes" in output
    assert output.count("TPC-H Q1 over") == 1  # rank 0 alone prints


@needs_mpi
@pytest.mark.parametrize("nranks", [2, 3])
def test_ranks_that_made_their_contexts_in_another_order_fail_instead_of_hanging(
    nranks: int,
) -> None:
    status, output, _ = run_job("-n", str(nranks), str(JOBS / "misordered.py"), timeout=60)
    assert status != 0, output[-3000:]
    assert "made their Contexts in a different order" in output
    assert "finished although" not in output
    # One root cause on every rank, whichever heard of it first: no rank reports it
    # as a peer's failure.
    assert output.count("NetworkMismatchError: ") == nranks, output[-3000:]
    assert "RemoteRankError" not in output, output[-3000:]
