"""The MPI launcher: ``streamnet run``, and what a launched process reads of its launch."""

from __future__ import annotations

import sys

import pytest

from streamnet import Context, SingleCommunicator, launched_ranks
from streamnet._errors import BackendUnavailableError
from streamnet.engines._launcher import find_mpiexec, launch_command


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
def test_launched_ranks_reads_the_launchers_variables(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: int | None
) -> None:
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert launched_ranks() == expected


def test_a_plain_process_and_a_one_rank_launch_get_a_single_rank(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PMI_SIZE", "1")
    with Context() as ctx:
        assert isinstance(ctx.communicator, SingleCommunicator)
        assert (ctx.rank, ctx.nranks) == (0, 1)


def test_several_launched_ranks_without_mpi4py_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed
    import streamnet.comm._mpi as mpi

    monkeypatch.setattr(mpi, "_engine", None)
    with pytest.raises(BackendUnavailableError, match=r"one of 2 MPI ranks.*streamnet\[mpi\]"):
        Context()


# --------------------------------------------------------------------- launcher
def test_launch_command_and_its_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert launch_command(3, ["job.py", "-x"], mpiexec="mpx") == [
        "mpx", "-n", "3", sys.executable, "job.py", "-x",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="`-n` must be an int >= 1, got 0"):
        launch_command(0, ["job.py"], mpiexec="mpx")
    with pytest.raises(ValueError, match="name the job script"):
        launch_command(2, [], mpiexec="mpx")
    monkeypatch.setenv("STREAMNET_MPIEXEC", "/opt/site/bin/mpiexec")
    assert find_mpiexec() == "/opt/site/bin/mpiexec"


def test_streamnet_run_names_a_missing_script(capsys: pytest.CaptureFixture[str]) -> None:
    from streamnet._cli import main

    assert main(["run", "-n", "2", "no-such-job.py"]) == 2
    assert "job script `no-such-job.py` does not exist" in capsys.readouterr().err
