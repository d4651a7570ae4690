"""The backend conformance suite's parameters and its summary line (see ``tests/conftest.py``)."""

from __future__ import annotations

from collections import Counter
from typing import Any, get_args

import pytest

from streamnet import BackendName, probe_backend

Cases = Counter[tuple[str, str | None]]
"""Test cases per (backend, skip reason), None for those that ran."""


def backend_params() -> list[Any]:
    """One parameter per registered backend. One unavailable here is skipped at once (no
    setup) with the probe's reason; the GPU's carries the ``gpu`` marker (``pytest -m gpu``)."""
    params = []
    for name in get_args(BackendName):
        why_not = probe_backend(name)
        marks: list[Any] = [pytest.mark.gpu] if name == "gpu" else []
        if why_not is not None:
            reason = f"the `{name}` backend is not available here: {why_not}"
            marks.append(pytest.mark.skip(reason=reason))
        params.append(pytest.param(name, id=name, marks=marks))
    return params


def backend_summary(cases: Cases) -> list[str]:
    """One line per backend: how many of its cases ran, how many were skipped and why."""
    lines = []
    for name in dict.fromkeys(name for name, _ in sorted(cases, key=str)):
        ran = cases[(name, None)]
        parts = [f"{ran} ran"] if ran else []
        for (other, reason), count in sorted(cases.items(), key=str):
            if other == name and reason is not None:
                parts.append(f"{count} skipped ({reason.removeprefix('Skipped: ')})")
        lines.append(f"backend `{name}`: " + ", ".join(parts))
    return lines
