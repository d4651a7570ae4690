"""Progress: sources report rows read against a known total; a tqdm bar shows it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any, TextIO

__all__ = ["ProgressTracker", "progress_wanted"]


class ProgressTracker:
    """Rows the sources of a run have read, and how many they will read when known.

    Sources call :meth:`expect` once they know their size (Parquet metadata, an
    in-memory table) and :meth:`advance` as they go; a source of unknown size
    (CSV) only advances, and the bar then shows a count and a rate, no ETA.
    """

    def __init__(self) -> None:
        self.done = 0
        self.total = 0
        self.unknown = 0  # sources that cannot tell their size

    def expect(self, rows: int | None) -> None:
        """A source will read ``rows`` rows (None: it cannot tell)."""
        if rows is None:
            self.unknown += 1
        else:
            self.total += rows

    def advance(self, rows: int) -> None:
        """A source read ``rows`` more rows."""
        self.done += rows


def progress_wanted(option: bool | None, rank: int = 0, stream: TextIO | None = None) -> bool:
    """None means: show a bar in a terminal or a notebook, not when output is redirected,
    and on rank 0 only (one bar per run, not one per rank)."""
    if option is not None:
        return option
    if rank != 0:
        return False
    target = stream if stream is not None else sys.stderr
    return _in_notebook() or bool(getattr(target, "isatty", lambda: False)())


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (not merely when its packages are imported)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


async def show_progress(tracker: ProgressTracker, description: str, stop: asyncio.Event) -> None:
    """Refresh a tqdm bar (notebook widget or terminal) from ``tracker`` until ``stop`` is set."""
    try:  # a notebook widget when ipywidgets can draw one, text otherwise
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm

    bar: Any = tqdm(total=None, desc=description, unit=" rows", unit_scale=True, dynamic_ncols=True)
    try:
        while True:
            bar.total = tracker.total if tracker.total and not tracker.unknown else None
            bar.n = tracker.done
            bar.refresh()
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
    finally:
        bar.close()
