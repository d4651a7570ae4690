"""Unread input: an actor that returns while its input still has data coming fails.

The data would be lost silently. An actor that stops early on purpose shuts its
input down (``await ch_in.shutdown(ctx)``) or is declared
``@define_actor(stops_early=True)``; the input's producers then stop with it.

Whether a producer drained before or after the consumer returned depends on
scheduling; whether it had more to send does not: only that is an error. So an
input left open when its consumer returned stays open, and the driver watches it
(`watch_late_sends`): the end of its stream is fine, a message is the error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channels import Channel, ChannelError
from streamnet._actor import ActorNode, Endpoint
from streamnet._errors import UnreadInputError

__all__ = ["check_inputs_read", "watch_late_sends"]

Fail = Callable[[ActorNode, BaseException], None]
"""How the running network records a failure of an actor."""


def check_inputs_read(
    node: ActorNode, read_by_others: Callable[[Channel[Any]], bool]
) -> list[Endpoint]:
    """Raise if ``node`` returned while an input it consumes last holds messages; the
    inputs still open, to watch with `watch_late_sends`.

    ``read_by_others(channel)`` tells whether other consumers still read the
    channel (a worker pool): those inputs are theirs to read.
    """
    left_open = []
    for endpoint in node.endpoints:
        channel = endpoint.channel
        if endpoint.role != "input" or read_by_others(channel):
            continue
        buffered = len(channel)
        if buffered and channel.state in ("open", "drained"):
            raise UnreadInputError(_unread(node, endpoint, f"still holds {buffered} message(s)"))
        if channel.state == "open":  # nothing lost yet: the consumer is gone
            left_open.append(endpoint)
    return left_open


async def watch_late_sends(node: ActorNode, endpoint: Endpoint, fail: Fail) -> None:
    """Wait on an input ``node`` left open when it returned: the end of its stream is
    fine, a message sent into it fails ``node``."""
    try:
        msg = await endpoint.channel.recv(None)
    except ChannelError:
        return  # aborted: the run failed already
    if msg is not None:
        node.set_state("failed")
        what = f"was sent message sequence number {msg.sequence_number} after the actor returned"
        fail(node, UnreadInputError(_unread(node, endpoint, what)))


def _unread(node: ActorNode, endpoint: Endpoint, what: str) -> str:
    return (
        f"actor `{node.name}` returned without reading its input `{endpoint.parameter}` "
        f"to the end: channel `{endpoint.channel.name}` {what}. Read until `recv` returns "
        f"None; to stop early on purpose, shut the input down (`await "
        f"{endpoint.parameter}.shutdown(ctx)`) or declare the actor with "
        "@define_actor(stops_early=True)"
    )
