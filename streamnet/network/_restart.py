"""Restart policy: a streaming actor that raises is called afresh on the same channels.

With ``@define_actor(restart=RestartPolicy(...))``, a failure of the actor's own
(not a closed channel, not a cancellation) restarts it, at most ``max_restarts``
times within ``max_seconds``. The message it was processing goes back to the head
of its input channel; outputs whose sequence numbers it already sent are dropped by
the channel (the actor's recorder remembers what it took and sent).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channels._errors import ChannelError
from streamnet._actor import ActorNode
from streamnet._tasks import Driver
from streamnet.observe._logging import logger
from streamnet.observe._statistics import ActorRecorder

__all__ = ["call_with_restarts"]


async def call_with_restarts(node: ActorNode, recorder: ActorRecorder) -> Any:
    """Run the actor's function; with a restart policy, call it afresh after a failure."""
    policy = node.definition.restart
    if policy is None:
        return await Driver(node.call())
    recorder.taken, recorder.sent = {}, {}
    restarts: list[float] = []
    while True:
        try:
            return await Driver(node.call())
        except (ChannelError, asyncio.CancelledError):
            raise  # a closed channel or a cancellation is not the stage's own failure
        except Exception as exc:
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < policy.max_seconds]
            if len(restarts) >= policy.max_restarts:
                exc.add_note(
                    f"actor `{node.name}` was restarted {len(restarts)} times within "
                    f"{policy.max_seconds} s and failed again"
                )
                raise
            restarts.append(now)
            for channel, msg in recorder.taken.items():
                channel._requeue(msg)  # the message in flight is processed again
            recorder.taken.clear()
            recorder.restarts += 1
            logger.warning(
                "actor %s failed (%s: %s) and restarts", node.name, type(exc).__name__, exc
            )
