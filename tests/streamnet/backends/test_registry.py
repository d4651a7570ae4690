"""Backends by name: which one a Context gets, why one is unavailable, the process default."""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

import polars as pl
import pytest

from streamnet import (
    Backend,
    BackendUnavailableError,
    Context,
    backend_for,
    default_backend,
    probe_backend,
    use_backend,
)


@pytest.fixture(autouse=True)
def _no_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMNET_BACKEND", raising=False)


def test_a_context_owns_a_cpu_backend_by_default() -> None:
    with Context() as ctx:
        assert isinstance(ctx.backend, Backend)
        assert ctx.backend.name == "cpu"
        assert ctx.backend is ctx.backend
        assert "backend='cpu'" in repr(ctx)
    assert backend_for().name == default_backend() == "cpu"


def test_the_cpu_fingerprint_names_the_polars_version() -> None:
    assert backend_for("cpu").fingerprint() == f"cpu polars={pl.__version__}"
    assert probe_backend("cpu") is None


def test_the_gpu_backend_is_unavailable_and_says_why() -> None:
    reason = probe_backend("gpu")
    assert reason is not None
    with pytest.raises(
        BackendUnavailableError, match="Context: the `gpu` backend is not available"
    ) as info:
        Context(backend="gpu")
    assert reason in str(info.value)
    with pytest.raises(BackendUnavailableError, match="`gpu` backend"):
        backend_for("gpu")


def test_without_pylibcudf_the_gpu_probe_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec

    def without_pylibcudf(name: str, *args: Any) -> Any:
        return None if name == "pylibcudf" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_pylibcudf)  # what `_registry` calls
    assert probe_backend("gpu") == "pylibcudf is not installed (the gpu backend runs on RAPIDS)"


def test_auto_takes_the_cpu_where_the_gpu_is_unavailable() -> None:
    assert backend_for("auto").name == "cpu"
    with Context(backend="auto") as ctx:
        assert ctx.backend.name == "cpu"


def test_unknown_names_are_refused_with_the_choices() -> None:
    for call in (backend_for, probe_backend, use_backend):
        with pytest.raises(ValueError, match=r"one of 'cpu', 'gpu', 'auto'; got 'tpu'"):
            call("tpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Context: `backend` must be"):
        Context(backend="tpu")  # type: ignore[arg-type]


def test_the_environment_variable_sets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMNET_BACKEND", "gpu")
    assert default_backend() == "gpu"
    with pytest.raises(BackendUnavailableError, match="`gpu` backend"):
        Context()
    with Context(backend="cpu") as ctx:  # a name given wins
        assert ctx.backend.name == "cpu"
    monkeypatch.setenv("STREAMNET_BACKEND", "tpu")
    with pytest.raises(ValueError, match="the environment variable STREAMNET_BACKEND: .*got 'tpu'"):
        default_backend()


def test_use_backend_sets_the_default_for_a_while_and_nests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMNET_BACKEND", "gpu")
    with use_backend("cpu"):
        assert default_backend() == "cpu"
        with Context() as ctx:
            assert ctx.backend.name == "cpu"
        with use_backend("auto"):
            assert default_backend() == "auto"
        assert default_backend() == "cpu"
    assert default_backend() == "gpu"


def test_use_backend_is_seen_by_other_threads() -> None:
    """Ranks run in helper threads: the default is the process's, not a task's."""
    seen: list[str] = []
    with use_backend("auto"):
        thread = threading.Thread(target=lambda: seen.append(default_backend()))
        thread.start()
        thread.join(timeout=30)
    assert seen == ["auto"]


def test_closing_a_context_closes_its_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = Context()
    closed: list[bool] = []
    monkeypatch.setattr(ctx.backend, "close", lambda: closed.append(True))
    ctx.close()
    assert closed == [True]
