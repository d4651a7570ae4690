"""Restart policy: a streaming actor that raises is called afresh on the same channels.

With ``@define_actor(restart=RestartPolicy(...))``, a failure of the actor's own
(not a closed channel, not a cancellation) restarts it, at most ``max_restarts``
times within ``max_seconds``. Such an actor gets its channels through
`RestartEndpoint` wrappers, so that the channels themselves know nothing of
restarts: an input remembers the message the actor took last (the one in flight
when it failed) and gives it again first after a restart; an output drops the
messages whose sequence numbers the actor already sent (a restarted actor
repeats what it did for the message in flight).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Generic, TypeVar

from channels import Channel, ChannelError, Message
from streamnet._actor import ActorNode
from streamnet._tasks import Driver
from streamnet.observe._logging import logger
from streamnet.observe._statistics import ActorRecorder

__all__ = ["RestartEndpoint", "call_with_restarts"]

T = TypeVar("T")


class RestartEndpoint(Generic[T]):
    """A channel as an actor with a restart policy sees it; the rest is the channel's.

    ``send`` drops a message whose sequence number was sent through it already
    (a message that was not delivered, its send cancelled or timed out, is
    sent again). ``recv`` remembers the message it returned; after
    :meth:`rewind`, it returns that message again before taking new ones.
    """

    def __init__(self, channel: Channel[T]) -> None:
        self.channel = channel
        self.sent: set[int] = set()
        """The sequence numbers sent through this endpoint."""
        self.taken: Message[T] | None = None
        """The message ``recv`` returned last: the one in flight."""
        self.replay: Message[T] | None = None
        """The message ``recv`` returns next, before taking from the channel."""

    def rewind(self) -> None:
        """The actor restarts: the message in flight comes again."""
        if self.taken is not None:
            self.replay, self.taken = self.taken, None

    async def send(self, ctx: object, msg: Message[T], *, timeout: float | None = None) -> None:
        """The channel's ``send``, but a sequence number sent already is dropped."""
        if msg.sequence_number in self.sent:
            return
        await self.channel.send(ctx, msg, timeout=timeout)
        self.sent.add(msg.sequence_number)

    async def recv(self, ctx: object, *, timeout: float | None = None) -> Message[T] | None:
        """The message to process again, if any; else the channel's ``recv``."""
        msg, self.replay = self.replay, None
        if msg is None:
            msg = await self.channel.recv(ctx, timeout=timeout)
        if msg is not None:
            self.taken = msg
        return msg

    def __len__(self) -> int:
        return len(self.channel) + (self.replay is not None)

    def __aiter__(self) -> AsyncIterator[Message[T]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message[T]]:
        while (msg := await self.recv(None)) is not None:
            yield msg

    async def __aenter__(self) -> RestartEndpoint[T]:
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        await self.channel.__aexit__(exc_type, exc, tb)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.channel, name)  # name, state, drain, shutdown, statistics...

    def __repr__(self) -> str:
        return f"<RestartEndpoint of {self.channel!r}>"


async def call_with_restarts(
    node: ActorNode, recorder: ActorRecorder, rebound: Mapping[Channel[Any], Any] | None = None
) -> Any:
    """Run the actor's function; with a restart policy, call it afresh after a failure.

    ``rebound`` gives channels the function gets in place of its own (a fused chain's
    head sends to the chain's output); an actor with a restart policy is never fused.
    """
    policy = node.definition.restart
    if policy is None:
        return await Driver(node.call(rebound))
    endpoints = {channel: RestartEndpoint(channel) for channel in (*node.inputs, *node.outputs)}
    restarts: list[float] = []
    while True:
        try:
            return await Driver(node.call(endpoints))
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
            for endpoint in endpoints.values():
                endpoint.rewind()  # the message in flight is processed again
            recorder.restarts += 1
            logger.warning(
                "actor %s failed (%s: %s) and restarts", node.name, type(exc).__name__, exc
            )
