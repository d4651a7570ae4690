"""The conformance suite itself: each actor test runs on the backend of its parameter."""

from __future__ import annotations

import threading

import polars as pl
import pytest
from conformance import Cases, backend_params, backend_summary

from streamnet import BackendName, Context, TableChunk, default_backend, probe_backend


def test_the_backend_under_test_is_every_contexts_and_threads_default(
    backend: BackendName, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment names another default: the parameter must win over it.
    monkeypatch.setenv("STREAMNET_BACKEND", "auto")
    seen: list[str] = []
    thread = threading.Thread(target=lambda: seen.append(default_backend()))
    thread.start()
    thread.join(timeout=10)
    assert seen == [backend]
    with Context() as ctx:
        assert ctx.backend.name == backend
    assert TableChunk.from_polars(pl.DataFrame({"x": [1]})).backend == backend


def test_every_registered_backend_is_a_parameter_unavailable_ones_skip_with_the_reason() -> None:
    params = {param.id: param for param in backend_params()}
    assert set(params) == {"cpu", "gpu"}
    assert [mark.name for mark in params["cpu"].marks] == []
    gpu_marks = {mark.name: mark for mark in params["gpu"].marks}
    why_not = probe_backend("gpu")
    if why_not is None:
        assert set(gpu_marks) == {"gpu"}
    else:
        assert set(gpu_marks) == {"gpu", "skip"}
        assert why_not in gpu_marks["skip"].kwargs["reason"]


def test_the_summary_says_which_backends_ran_and_why_others_were_skipped() -> None:
    cases = Cases({("cpu", None): 3, ("gpu", "Skipped: no device"): 3, ("cpu", "Skipped: x"): 1})
    assert backend_summary(cases) == [
        "backend `cpu`: 3 ran, 1 skipped (x)",
        "backend `gpu`: 3 skipped (no device)",
    ]
