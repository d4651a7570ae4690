"""Timing and peak-memory measurement shared by the workloads.

Peak memory is the growth of a process's resident set during one run: Linux
keeps its high-water mark (``VmHWM``), and writing ``5`` to
``/proc/self/clear_refs`` resets it, so the peak includes what native code
(Arrow, Polars, DuckDB) allocates outside Python's heap. Allocators keep freed
memory for reuse, so a run after another looks cheaper than it is:
:func:`peak_memory` therefore runs the function once in a fresh process, after
importing the engines, and reports how far its resident set grew. Where Linux's
counters are missing the peak is reported as unknown.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import multiprocessing
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

__all__ = ["best_time", "mib", "peak_memory"]


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs of ``fn`` (at least one), in seconds."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


ENGINE_MODULES = ("polars", "pyarrow.parquet", "pandas", "duckdb", "dask.dataframe", "actors")
"""Imported before the baseline is taken, so that loading an engine does not count as its memory."""


def _peak_child(fn: Callable[..., object], args: tuple[object, ...], queue: Any) -> None:
    for name in ENGINE_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.collect()
    before = _status_kib("VmRSS")
    tracked = before is not None and _reset_peak()
    fn(*args)
    high = _status_kib("VmHWM") if tracked else None
    queue.put(None if before is None or high is None else (high - before) * 1024)


def peak_memory(fn: Callable[..., object], *args: object) -> int | None:
    """Bytes the resident set grew by while ``fn(*args)`` ran once in a fresh process.

    ``fn`` and ``args`` must pickle (a module-level function, paths, numbers).
    None where Linux's memory counters are not available.
    """
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    child = spawn.Process(target=_peak_child, args=(fn, args, queue))
    child.start()
    answered, peak = False, None
    try:
        while not answered:
            alive = child.is_alive()
            try:
                peak, answered = queue.get(timeout=1.0), True
            except Empty:
                if not alive:  # it ended and nothing came: it failed
                    break
    finally:
        child.join()
    if not answered or child.exitcode != 0:
        raise RuntimeError(f"measuring the memory of {fn!r} failed (exit code {child.exitcode})")
    assert peak is None or isinstance(peak, int)
    return peak


def mib(nbytes: int | None) -> str:
    """``nbytes`` as a table cell in MiB ("n/a" when unknown)."""
    return "n/a" if nbytes is None else f"{nbytes / 2**20:,.0f}"
