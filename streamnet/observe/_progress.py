"""Progress: sources report rows read against a known (or estimated) total; a tqdm bar shows it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any, TextIO

__all__ = ["ProgressTracker", "progress_wanted"]


class ProgressTracker:
    """Rows the sources of a run have read, and how many they will read when known.

    Sources call :meth:`expect` once they know their size and :meth:`advance` as
    they go. A size is rows (Parquet metadata, an in-memory table) or, for a text
    source (CSV, NDJSON), bytes: its rows are then estimated from the rows per
    byte read so far. A source of no known size only advances, and the bar then
    shows a count and a rate, no ETA.
    """

    def __init__(self) -> None:
        self.done = 0
        self.total = 0  # rows of the sources that know their row count
        self.unknown = 0  # sources that cannot tell their size
        self.bytes_total = 0  # bytes of the sources sized in bytes
        self.bytes_done = 0
        self.bytes_rows = 0  # rows those sources read so far

    def expect(self, rows: int | None, *, nbytes: int | None = None) -> None:
        """A source will read ``rows`` rows, or (``rows`` None) ``nbytes`` bytes of
        text; None for both: it cannot tell."""
        if rows is not None:
            self.total += rows
        elif nbytes is not None:
            self.bytes_total += nbytes
        else:
            self.unknown += 1

    def advance(self, rows: int, *, nbytes: int = 0) -> None:
        """A source read ``rows`` more rows (and, if sized in bytes, ``nbytes`` more bytes)."""
        self.done += rows
        if nbytes:
            self.bytes_done += nbytes
            self.bytes_rows += rows

    @property
    def estimated_total(self) -> int | None:
        """The rows the run will read: exact when every source knows its row count,
        estimated while text sources read, None when it cannot be told (yet).

        Examples
        --------
        >>> tracker = ProgressTracker()
        >>> tracker.expect(100)
        >>> tracker.expect(None, nbytes=1000)
        >>> tracker.estimated_total is None  # nothing read of the text yet
        True
        >>> tracker.advance(30, nbytes=250)
        >>> tracker.estimated_total  # 100 + 30 rows per 250 bytes of 1000
        220
        """
        if self.unknown:
            return None
        if not self.bytes_total:
            return self.total or None
        if not self.bytes_done:
            return None
        return self.total + round(self.bytes_rows * self.bytes_total / self.bytes_done)


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
            bar.total = tracker.estimated_total
            bar.n = tracker.done
            bar.refresh()
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
    finally:
        bar.close()
