"""Unread input: an actor that returns while its input still has data coming fails.

The data would be lost silently. An actor that stops early on purpose shuts its
input down (``await ch_in.shutdown(ctx)``) or is declared
``@define_actor(stops_early=True)``; the input's producers then stop with it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from streamnet._actor import ActorNode, Endpoint
from streamnet._errors import UnreadInputError

__all__ = ["check_inputs_read"]

Fail = Callable[[ActorNode, BaseException], None]
"""How the running network records a failure of an actor."""


def check_inputs_read(node: ActorNode, fail: Fail) -> None:
    """Raise if ``node`` returned while an input it consumes last holds messages; if
    the input is still open, ``fail`` the node once its producers send more.

    Whether a producer drained before or after the consumer returned depends
    on scheduling; whether it had more to send does not: only that is an error.
    """
    for endpoint in node.endpoints:
        channel = endpoint.channel
        if endpoint.role != "input" or channel._consumers > 1:
            continue  # other consumers still read it (a worker pool)
        buffered = len(channel)
        if buffered and channel.state in ("open", "drained"):
            raise UnreadInputError(_unread(node, endpoint, f"still holds {buffered} message(s)"))
        if channel.state == "open":  # nothing lost yet: the consumer is gone
            channel._late_send = functools.partial(_sent_after_return, node, endpoint, fail)


def _sent_after_return(node: ActorNode, endpoint: Endpoint, fail: Fail, msg: Any) -> None:
    """A producer sent into an input ``node`` stopped reading when it returned."""
    endpoint.channel._late_send = None
    node._state = "failed"
    seq = getattr(msg, "sequence_number", "?")
    what = f"was sent message sequence number {seq} after the actor returned"
    fail(node, UnreadInputError(_unread(node, endpoint, what)))


def _unread(node: ActorNode, endpoint: Endpoint, what: str) -> str:
    return (
        f"actor `{node.name}` returned without reading its input `{endpoint.parameter}` "
        f"to the end: channel `{endpoint.channel.name}` {what}. Read until `recv` returns "
        f"None; to stop early on purpose, shut the input down (`await "
        f"{endpoint.parameter}.shutdown(ctx)`) or declare the actor with "
        "@define_actor(stops_early=True)"
    )
