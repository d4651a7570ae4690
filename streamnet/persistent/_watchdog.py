"""The watchdog of persistent actors: fail one that holds input but shows no progress.

An actor launched with ``heartbeat_timeout`` holds input while it has received a
message and not come back for the next, or while messages wait in its inbox. If it
shows no progress meanwhile (a receive, a send, ``ctx.heartbeat()``) for that many
seconds, the watchdog cancels it, and the runtime fails it with `WatchdogTimeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from time import monotonic

from streamnet.persistent._instance import Instance

__all__ = ["watch"]


async def watch(actors: Mapping[str, Instance]) -> None:
    """Fail live actors that hold input but made no progress within their timeout;
    return once no live actor has a timeout."""
    while True:
        watched = [
            a for a in actors.values()
            if a.heartbeat_timeout is not None and a.state in ("active", "inactive")
        ]  # fmt: skip
        if not watched:
            return
        now = monotonic()
        for actor in watched:
            holds_input = actor.busy or len(actor.inbox) > 0
            idle_for = now - actor.last_progress
            assert actor.heartbeat_timeout is not None
            if holds_input and actor.state == "active" and idle_for > actor.heartbeat_timeout:
                actor.watchdog_fired = True
                assert actor.task is not None
                actor.task.cancel()
        period = min(a.heartbeat_timeout for a in watched if a.heartbeat_timeout) / 4
        await asyncio.sleep(period)
