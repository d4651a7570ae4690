from __future__ import annotations

import os
import sys
import tempfile

import polars as pl
import pytest
from hypothesis import HealthCheck, settings

from streamnet import launched_ranks

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "40")),
)
# Under mpiexec every rank runs the same tests: they must draw the same examples in the
# same order, so nothing may depend on timing, a database or a random seed.
settings.register_profile(
    "mpi",
    parent=settings.get_profile("default"),
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
settings.load_profile("mpi" if (launched_ranks() or 1) > 1 else "default")


def pytest_configure(config: pytest.Config) -> None:
    """Under mpiexec, each rank gets its own temporary directories (no shared cleanup)."""
    _check_polars_version()
    if (launched_ranks() or 1) > 1 and not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="streamnet-tests-")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Under mpiexec, a rank whose tests failed ends the whole job once it reported.

    Otherwise the other ranks, still in the suite, would wait in the next test's
    collectives for a rank that left (``-x``) until their timeouts.
    """
    status = config.stash.get(_EXIT_STATUS, 0)
    if (launched_ranks() or 1) > 1 and status not in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        from mpi4py import MPI

        sys.stdout.flush()
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(status)


_EXIT_STATUS = pytest.StashKey[int]()

EXPECT_POLARS = "STREAMNET_EXPECT_POLARS"
"""Set by ``make test-polars-compat``: the Polars version the tests must import."""


def _check_polars_version() -> None:
    """A run meant for another Polars version fails at start rather than test this one."""
    expected = os.environ.get(EXPECT_POLARS)
    if expected and pl.__version__ != expected:
        raise pytest.UsageError(
            f"{EXPECT_POLARS} is {expected}, but the tests import polars {pl.__version__} "
            f"from {pl.__file__}; put polars {expected} first on PYTHONPATH "
            "(`make test-polars-compat` does)"
        )


# Job scripts the MPI tests start under mpiexec: not modules to import here.
collect_ignore_glob = ["streamnet/comm/mpi_jobs/*"]
