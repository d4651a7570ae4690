"""What every doctest of the packages finds without importing it: ``pa`` and ``pl``,
as Polars' own docstrings assume ``pl``."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa
import pytest


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict[str, Any]) -> None:
    doctest_namespace["pa"] = pa
    doctest_namespace["pl"] = pl
