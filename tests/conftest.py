from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Generator, Iterator

import polars as pl
import pytest
from conformance import Cases, backend_params, backend_summary
from hypothesis import HealthCheck, settings

from streamnet import BackendName, launched_ranks, use_backend

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
    """Under mpiexec, each rank gets its own temporary directories (no shared cleanup),
    removed when its run ends."""
    _check_polars_version()
    if (launched_ranks() or 1) > 1 and not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="streamnet-tests-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Under mpiexec, a rank whose tests failed ends the whole job once it reported.

    Otherwise the other ranks, still in the suite, would wait in the next test's
    collectives for a rank that left (``-x``) until their timeouts.
    """
    own = config.stash.get(_OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)
    status = config.stash.get(_EXIT_STATUS, 0)
    if (launched_ranks() or 1) > 1 and status not in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        from mpi4py import MPI

        sys.stdout.flush()
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(status)


_EXIT_STATUS = pytest.StashKey[int]()
_OWN_BASETEMP = pytest.StashKey[str]()

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


BACKENDS = backend_params()
"""Every registered backend, as the parameters of the `backend` fixture."""


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[BackendName]:
    """The backend under test, made the process's default for the test's length, so that
    every Context and chunk the test makes uses it (ranks in helper threads too)."""
    name: BackendName = request.param
    with use_backend(name):
        yield name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Counts each backend's cases: those that ran, and those skipped with their reason."""
    report = yield
    callspec = getattr(item, "callspec", None)
    name = callspec.params.get("backend") if callspec is not None else None
    if isinstance(name, str) and (report.skipped or report.when == "call"):
        reason = None
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
        item.config.stash.setdefault(_BACKEND_CASES, Cases())[(name, reason)] += 1
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Says which backends the conformance cases ran on and which were skipped, and why
    (one line each, where ``-rs`` would list every skipped test)."""
    cases = terminalreporter.config.stash.get(_BACKEND_CASES, None)
    if cases:
        terminalreporter.section("backends")
        for line in backend_summary(cases):
            terminalreporter.write_line(line)


_BACKEND_CASES = pytest.StashKey[Cases]()


# Job scripts the MPI tests start under mpiexec: not modules to import here.
collect_ignore_glob = ["streamnet/comm/mpi_jobs/*"]
