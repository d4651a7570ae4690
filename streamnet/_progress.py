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


def progress_wanted(option: bool | None, stream: TextIO | None = None) -> bool:
    """None means: show a bar in a terminal or a notebook, not when output is redirected."""
    if option is not None:
        return option
    target = stream if stream is not None else sys.stderr
    in_notebook = "ipykernel" in sys.modules
    return in_notebook or bool(getattr(target, "isatty", lambda: False)())


async def show_progress(tracker: ProgressTracker, description: str, stop: asyncio.Event) -> None:
    """Refresh a tqdm bar (notebook widget or terminal) from ``tracker`` until ``stop`` is set."""
    from tqdm.auto import tqdm

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
