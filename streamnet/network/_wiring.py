"""Wiring: what is wrong with a network's graph, found before anything runs.

Pure functions of the actor nodes and their channels. `validate` lists every
problem at once (an argument that is not an actor node, a channel parameter that
is neither input nor output, a channel nobody produces into or nobody consumes, a
channel of another network, payload types that disagree, a cycle not declared as
``feedback``), and the channels consumed by actors of different kinds (each gets
part of the stream: a `SharedChannelWarning`). Which network owns a channel is
recorded here too (`claim`): a channel belongs to one network.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from channels import Channel
from channels.lowlevel import payload_classes
from streamnet._actor import ActorDefinition, ActorNode, Endpoint
from streamnet._context import Context

__all__ = ["claim", "unique_channels", "validate"]

_owners: weakref.WeakKeyDictionary[Channel[Any], weakref.ref[Any]] = weakref.WeakKeyDictionary()
"""The network each channel was built into, by a weak reference: a network holds its
channels, so a strong one would keep every network (its Context and threads) alive."""


def claim(channels: Iterable[Channel[Any]], owner: object) -> None:
    """Record that ``owner`` (a Network) runs ``channels``; another network may not."""
    for channel in channels:
        _owners[channel] = weakref.ref(owner)


def unique_channels(actors: Sequence[ActorNode]) -> tuple[Channel[Any], ...]:
    seen: dict[int, Channel[Any]] = {}
    for node in actors:
        for endpoint in node.endpoints:
            seen.setdefault(id(endpoint.channel), endpoint.channel)
    return tuple(seen.values())


def _describe(value: Any) -> str:
    if isinstance(value, ActorDefinition):
        return (
            f"the actor definition `{value.name}`, not a node; call it with the Context and its "
            f"channels: {value.name}(ctx, ...)"
        )
    if asyncio.iscoroutine(value):
        value.close()
        label = getattr(value, "__qualname__", "?")
        return (
            f"a coroutine ({label}), not an actor node; decorate the function with "
            "@define_actor and call it with the Context and its channels"
        )
    if callable(value):
        label = getattr(value, "__qualname__", repr(value))
        return (
            f"the function `{label}`, not an actor node; decorate it with @define_actor and call it"
        )
    return f"a {type(value).__name__}, not an actor node"


def validate(
    ctx: Context, actors: Sequence[Any], feedback: Sequence[Channel[Any]] = ()
) -> tuple[list[str], list[str]]:
    """The wiring problems of ``actors``, and the warnings it deserves."""
    problems: list[str] = []
    notices: list[str] = []
    nodes: list[ActorNode] = []
    seen: set[int] = set()
    for index, node in enumerate(actors):
        if not isinstance(node, ActorNode):
            problems.append(f"actors[{index}] is {_describe(node)}")
            continue
        if id(node) in seen:
            problems.append(f"actor `{node.name}` is listed twice")
            continue
        seen.add(id(node))
        nodes.append(node)
        if node.ctx is not ctx:
            problems.append(f"actor `{node.name}` was made with another Context than the network's")
        if node.network is not None:
            problems.append(f"actor `{node.name}` already belongs to another network")
    if not actors:
        problems.append("the network has no actors")

    producers: dict[int, list[tuple[ActorNode, Endpoint]]] = {}
    consumers: dict[int, list[tuple[ActorNode, Endpoint]]] = {}
    channels: dict[int, Channel[Any]] = {}
    for node in nodes:
        for endpoint in node.endpoints:
            channel = endpoint.channel
            channels[id(channel)] = channel
            if endpoint.role is None:
                problems.append(
                    f"actor `{node.name}` parameter `{endpoint.parameter}` holds channel "
                    f"`{channel.name}` but is neither an input nor an output; name it like "
                    f"`ch_in` / `ch_out`, or declare it with "
                    f"@define_actor(inputs=[...]) or outputs=[...]"
                )
                continue
            side = producers if endpoint.role == "output" else consumers
            side.setdefault(id(channel), []).append((node, endpoint))

    for key, channel in channels.items():
        made = producers.get(key, [])
        used = consumers.get(key, [])
        if not made and used:
            problems.append(
                f"channel `{channel.name}` has no producer: "
                f"{_endpoint_list(used)} receive from it, but no actor sends into it"
            )
        if made and not used:
            problems.append(
                f"channel `{channel.name}` has no consumer: "
                f"{_endpoint_list(made)} send into it, but no actor receives from it"
            )
        owner = _owners.get(channel)
        if owner is not None and owner() is not None:
            problems.append(f"channel `{channel.name}` already belongs to another network")
        elif channel.state != "open":
            problems.append(f"channel `{channel.name}` is already {channel.state}")
        problems.extend(_type_problems(channel, made, used))
        kinds: dict[ActorDefinition[Any], ActorNode] = {}
        for node, _ in used:
            kinds.setdefault(node.definition, node)
        if len(kinds) > 1:
            names = " and ".join(f"`{node.name}`" for node in kinds.values())
            notices.append(
                f"channel `{channel.name}` is consumed by actors of different kinds, {names}: "
                "each receives only part of its stream (actors made from one definition may "
                "share a channel as a worker pool). To give each the whole stream, put a "
                "fanout in front; to keep the split, silence this with "
                "warnings.filterwarnings('ignore', category=streamnet.SharedChannelWarning)"
            )
    problems.extend(_cycle_problems(nodes, producers, consumers, channels, feedback))
    return problems, notices


def _cycle_problems(
    nodes: Sequence[ActorNode],
    producers: dict[int, list[tuple[ActorNode, Endpoint]]],
    consumers: dict[int, list[tuple[ActorNode, Endpoint]]],
    channels: dict[int, Channel[Any]],
    feedback: Sequence[Channel[Any]],
) -> list[str]:
    """Cycles of actors through channels not declared as ``feedback``, and stray declarations."""
    problems: list[str] = []
    declared: set[int] = set()
    for channel in feedback:
        if not isinstance(channel, Channel):
            problems.append(f"`feedback` holds a {type(channel).__name__}, not a channel")
        elif id(channel) not in channels:
            problems.append(
                f"feedback channel `{channel.name}` is not a channel of this network's actors"
            )
        else:
            declared.add(id(channel))

    def edges(skip: set[int]) -> dict[ActorNode, list[tuple[Channel[Any], ActorNode]]]:
        out: dict[ActorNode, list[tuple[Channel[Any], ActorNode]]] = {n: [] for n in nodes}
        for key, made in producers.items():
            if key in skip:
                continue
            for producer, _ in made:
                for consumer, _ in consumers.get(key, []):
                    out[producer].append((channels[key], consumer))
        return out

    forward = edges(declared)
    for component in _strongly_connected(nodes, forward):
        path = _cycle_in(component, forward)
        if path is None:
            continue
        route = " -> ".join(f"`{node.name}` -[`{channel.name}`]" for node, channel in path)
        problems.append(
            f"actors form a cycle: {route} -> `{path[0][0].name}`; every actor on it waits "
            "for the others to end. If the loop is intended, declare the channel that "
            f"carries data back: Network(..., feedback=[<channel `{path[-1][1].name}`>])"
        )
    if declared:
        group = {
            node: index
            for index, component in enumerate(_strongly_connected(nodes, edges(set())))
            for node in component
        }
        for key in declared:
            closes = any(
                group[producer] == group[consumer]
                for producer, _ in producers.get(key, [])
                for consumer, _ in consumers.get(key, [])
            )
            if not closes:
                problems.append(
                    f"feedback channel `{channels[key].name}` closes no loop: no actor that "
                    "receives from it sends, directly or not, into it; drop it from `feedback`"
                )
    return problems


def _strongly_connected(
    nodes: Sequence[ActorNode], edges: dict[ActorNode, list[tuple[Channel[Any], ActorNode]]]
) -> list[list[ActorNode]]:
    """The strongly connected components of the graph (Tarjan's algorithm, without recursion)."""
    index: dict[ActorNode, int] = {}
    low: dict[ActorNode, int] = {}
    stack: list[ActorNode] = []
    on_stack: set[ActorNode] = set()
    components: list[list[ActorNode]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(edges[root]))]
        while work:
            node, successors = work[-1]
            for _, successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[ActorNode] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member is node:
                            break
                    components.append(component[::-1])
    return components


def _cycle_in(
    component: list[ActorNode], edges: dict[ActorNode, list[tuple[Channel[Any], ActorNode]]]
) -> list[tuple[ActorNode, Channel[Any]]] | None:
    """One cycle through the first actor of ``component``, as (actor, channel it sends into)
    steps; None when the component is one actor that does not feed itself."""
    start = component[0]
    members = set(component)
    came: dict[ActorNode, tuple[ActorNode, Channel[Any]]] = {}
    frontier = [start]
    while frontier:
        following: list[ActorNode] = []
        for node in frontier:
            for channel, successor in edges[node]:
                if successor not in members:
                    continue
                if successor is start:
                    path = [(node, channel)]
                    while path[0][0] is not start:
                        path.insert(0, came[path[0][0]])
                    return path
                if successor not in came:
                    came[successor] = (node, channel)
                    following.append(successor)
        frontier = following
    return None


def _endpoint_list(endpoints: list[tuple[ActorNode, Endpoint]]) -> str:
    return ", ".join(f"`{node.name}`.{endpoint.parameter}" for node, endpoint in endpoints)


def _as_classes(tp: Any) -> tuple[type, ...] | None:
    return payload_classes(tp)


def _fits(inner: tuple[type, ...], outer: tuple[type, ...]) -> bool:
    return all(issubclass(cls, outer) for cls in inner)


def _type_problems(
    channel: Channel[Any],
    made: list[tuple[ActorNode, Endpoint]],
    used: list[tuple[ActorNode, Endpoint]],
) -> list[str]:
    problems: list[str] = []
    declared = _as_classes(channel.payload_type)
    senders = [(n, e, c) for n, e in made if (c := _as_classes(e.payload_type)) is not None]
    receivers = [(n, e, c) for n, e in used if (c := _as_classes(e.payload_type)) is not None]
    for node, endpoint, sent in senders:
        if declared is not None and not (_fits(sent, declared) or _fits(declared, sent)):
            problems.append(
                f"channel `{channel.name}` carries {_names(declared)} but `{node.name}`."
                f"{endpoint.parameter} sends {_names(sent)}"
            )
        for other, other_endpoint, wanted in receivers:
            if not _fits(sent, wanted):
                problems.append(
                    f"channel `{channel.name}`: `{node.name}`.{endpoint.parameter} sends "
                    f"{_names(sent)} but `{other.name}`.{other_endpoint.parameter} expects "
                    f"{_names(wanted)}"
                )
    if declared is not None:
        for node, endpoint, wanted in receivers:
            if not _fits(declared, wanted):
                problems.append(
                    f"channel `{channel.name}` carries {_names(declared)} but `{node.name}`."
                    f"{endpoint.parameter} expects {_names(wanted)}"
                )
    return problems


def _names(classes: tuple[type, ...]) -> str:
    return " | ".join(cls.__name__ for cls in classes)
