"""Multi-process ranks over MPI: whole jobs under mpiexec."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
JOBS = Path(__file__).parent / "mpi_jobs"
HAVE_MPI = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="the mpi extra is not installed")


def run_job(*args: str, timeout: float = 100) -> tuple[int, str, float]:
    """``streamnet run ARGS`` in a fresh process group; (exit status, output, seconds).

    Whatever ends the wait (the job, ``timeout``, the test's own timeout), no rank
    outlives it: the whole process group is killed on the way out. Keep ``timeout``
    below the test's timeout so that a hang is reported with the job's output.
    """
    start = time.monotonic()
    path = os.environ.get("PYTHONPATH")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamnet", "run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # The caller's PYTHONPATH stays after the root: it may shadow Polars (compat run).
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), path]))},
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
    original = (
        "ValueError: bad record on rank 1"
        if mode == "raise"
        else "RuntimeError: could not open the input"
    )
    assert f"[rank 1] {original}" in output  # each line of a rank's traceback says whose
    for peer in (0, 2):  # the peers say who failed
        assert f"[rank {peer}] streamnet.RemoteRankError: rank 1 failed" in output
    assert "finished without the failure" not in output


@needs_mpi
def test_a_rank_dying_outright_ends_the_whole_job() -> None:
    status, output, seconds = run_job("-n", "2", str(JOBS / "failing.py"), "exit")
    assert status != 0, output[-3000:]
    assert seconds < 60
    assert "finished without the failure" not in output


@needs_mpi
@pytest.mark.parametrize("mode", ["first", "second"])
def test_a_rank_whose_script_ended_fails_a_peer_that_waits_for_it(mode: str) -> None:
    """Rank 0's script ends while rank 1 runs a shuffle rank 0 never joins: rank 1 fails
    naming rank 0, where it waited for ever. With ``second``, a shuffle both ran before
    still gets every message."""
    status, output, _ = run_job("-n", "2", str(JOBS / "ended.py"), mode, timeout=60)
    assert status != 0, output[-3000:]
    assert "rank 0 done" in output
    assert (
        "[rank 1] streamnet.NetworkMismatchError: rank 1 waits for a message "
        f"(tag ('network', {int(mode == 'second')})) from rank 0, whose process exited"
    ) in output, output[-3000:]
    assert "finished without rank 0" not in output
    if mode == "second":
        for rank in (0, 1):
            assert f"rank {rank}: first shuffle gave 10 rows" in output


@needs_mpi
@pytest.mark.timeout(450)
@pytest.mark.parametrize("nranks", [2, 3])
def test_the_collective_suite_passes_under_mpiexec(nranks: int) -> None:
    """The collective tests again, each test process one rank of an MPI job."""
    suite = [
        "tests/actors/test_collectives.py",
        "tests/actors/test_collective_failures.py",
        "tests/actors/test_collective_inputs.py",
        "tests/actors/test_collective_traffic.py",
    ]
    status, output, _ = run_job(
        "-n", str(nranks), "-m", "pytest", *suite, "-q", "-x", "-p", "no:cacheprovider",
        "-p", "no:randomly", timeout=400,
    )  # fmt: skip
    assert status == 0, output[-5000:]
    assert output.count(" passed") == nranks


@needs_mpi
def test_the_demo_on_two_ranks_gives_polars_answer(tmp_path: Path) -> None:
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


def test_an_uncaught_exception_prints_in_one_write_each_line_headed_by_its_rank(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The MPI excepthook's printing (no MPI needed): Python's traceback, each line headed
    by the rank, in a single write, which ranks sharing a terminal do not interleave."""
    from streamnet.comm._mpi import report_uncaught

    read_end, write_end = os.pipe()
    writes: list[int] = []
    real_write = os.write

    def counted(fd: int, data: bytes) -> int:
        writes.append(fd)
        return real_write(fd, data)

    with open(write_end, "w", closefd=True) as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        monkeypatch.setattr(os, "write", counted)
        try:
            raise ValueError("bad record")
        except ValueError as exc:
            report_uncaught(2, type(exc), exc, exc.__traceback__)
        monkeypatch.undo()
    with open(read_end) as pipe:
        lines = pipe.read().splitlines()
    assert writes == [write_end]
    assert lines[0] == "[rank 2] Traceback (most recent call last):"
    assert lines[-1] == "[rank 2] ValueError: bad record"
    assert all(line.startswith("[rank 2] ") for line in lines)
