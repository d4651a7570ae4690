"""Waiting in tests on a state, never on a span of time chosen to be long enough."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], object], *, timeout: float = 5.0) -> None:
    """Let the event loop turn until ``predicate()`` holds; `TimeoutError` after ``timeout`` s.

    For states that have no event to wait on (a call blocked on a channel, a
    lifecycle state): each turn lets every ready task take one step, so the wait
    ends on the turn the state is reached, and a state never reached fails the
    test instead of hanging it.
    """
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0)
