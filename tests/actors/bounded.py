"""Run a multi-rank job with a hard time bound: a hang fails the test instead of stalling it."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

from streamnet import Context, run_ranks


def run_ranks_within(
    seconds: float, nranks: int, job: Callable[[Context], Awaitable[Any]], **options: Any
) -> list[Any]:
    """``run_ranks(nranks, job, **options)``, failing the test if it takes longer than ``seconds``."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = run_ranks(nranks, job, **options)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"the {nranks}-rank run did not finish within {seconds} s (a hang)")
    if "error" in outcome:
        raise outcome["error"]
    result: list[Any] = outcome["result"]
    return result
