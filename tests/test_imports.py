"""Importing the packages stays light: optional and heavy modules load on first use.

``import streamnet, actors`` costs Polars and streamnet's own modules; pyarrow
(and numpy with it) loads with the first Context or table, and pandas, Ray, MPI,
plotting, progress bars, RAPIDS, and streamnet's own optional parts (persistent
actors, engines, the MPI and Ray transports, pictures) with the functions that use
them. A fresh process tells what an import loaded (``sys.modules``); times are not
asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LOADED_ON_FIRST_USE = (
    "pyarrow",
    "numpy",
    "pandas",
    "ray",
    "mpi4py",
    "matplotlib",
    "rich",
    "tqdm",
    "graphviz",
    "IPython",
    "cudf",
    "cudf_polars",
    "pylibcudf",
    "rmm",
    "cupy",
    "rapidsmpf",
    "streamnet.persistent",
    "streamnet.engines",
    "streamnet.comm._mpi",
    "streamnet.comm._ray",
    "streamnet.comm._wire",
    "streamnet.observe._picture",
)
"""Modules (and their submodules) that importing the packages must not load."""


def _loaded_by(statement: str) -> list[str]:
    """The modules of `LOADED_ON_FIRST_USE` that ``statement`` loads in a fresh interpreter."""
    script = (
        "import json, sys\n"
        f"{statement}\n"
        f"watched = {LOADED_ON_FIRST_USE!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if any(m == w or m.startswith(w + '.') for w in watched))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.timeout(90)
def test_importing_the_packages_loads_no_optional_module() -> None:
    assert _loaded_by("import channels, streamnet, actors") == []


@pytest.mark.timeout(90)
def test_the_check_sees_a_module_loaded_on_first_use() -> None:
    """The same check fails once a lazily exported name is used (so it can fail)."""
    loaded = _loaded_by("import streamnet, actors; streamnet.Supervisor; streamnet.MPICommunicator")
    assert "streamnet.persistent" in loaded and "streamnet.comm._mpi" in loaded


@pytest.mark.timeout(90)
def test_pyarrow_loads_with_the_first_context_and_not_its_file_modules() -> None:
    loaded = _loaded_by("import streamnet; streamnet.Context()")
    assert "pyarrow" in loaded
    assert not set(loaded) & {"pyarrow.parquet", "pyarrow.csv", "pyarrow.compute"}


QUERY_WITHOUT_PANDAS = '''
import datetime, os, tempfile
import polars as pl
import actors
with tempfile.TemporaryDirectory() as where:
    path = os.path.join(where, "t.parquet")
    pl.DataFrame({
        "k": [1, 2, 3, 1], "x": [0.5, 1.5, 2.5, 3.5], "s": ["a", "b", "c", "a"],
        "d": [datetime.date(2024, 1, i) for i in range(1, 5)], "b": [True, False, True, True],
    }).write_parquet(path, row_group_size=2)
    query = (
        pl.scan_parquet(path)
        .filter((pl.col("x") > 1.0) & (pl.col("s") != "z") & (pl.col("d") >= datetime.date(2024, 1, 2)))
        .filter(pl.col("b") | (pl.col("k") < 5))
        .join(pl.LazyFrame({"k": [1, 2, 3], "name": ["one", "two", "three"]}), on="k")
        .group_by("name").agg(pl.col("x").sum()).sort("name")
    )
    assert actors.collect_query(query).height == 3
'''


@pytest.mark.timeout(90)
def test_a_query_over_parquet_does_not_load_pandas_or_arrow_compute() -> None:
    """pyarrow imports pandas, where it is installed, on its first conversion of Python
    values (`pa.array`, `Schema.empty_table`): a fifth of a second on a process's first
    query; and its compute module (a cast) costs another 30 ms. Scans with statistics
    over ints, floats, strings, dates and booleans, joins, group-bys and sorts need
    neither."""
    loaded = _loaded_by(QUERY_WITHOUT_PANDAS)
    assert "pyarrow.parquet" in loaded  # the query did read the file's footer
    assert "pandas" not in loaded and "pyarrow.compute" not in loaded


@pytest.mark.timeout(90)
def test_the_pandas_check_sees_pandas_loaded_by_pyarrow() -> None:
    """The same check fails where pyarrow converts Python values (so it can fail)."""
    assert "pandas" in _loaded_by("import pyarrow as pa; pa.array([1, 2])")
