"""Fusion: chains of per-chunk actors that run as one plan, found on the network's description.

Pure functions over a description of the nodes (`NodeDescription`), so they are
tested without running anything. An edge ``p --c--> q`` fuses when ``c`` has
exactly one producer ``p`` and one consumer ``q``, is not a feedback channel, is
``p``'s only output and ``q``'s only input; both contribute a plan step
(``define_actor(plan=...)``), or ``p`` is a source that runs the steps after it
(``define_actor(head=True)``: ``read_parquet``); neither has a restart policy; both are on one
Context. A channel with several consumers (a fan-out) ends a chain. Chains are
the connected runs of fusing edges: paths, since the edges are one to one.

A chain may end at a group-by that takes partials (``define_actor(aggregate=...)``:
``groupby_agg`` when its aggregations are decomposable): that node is *linked*,
not a member. The head's plan ends in the group-by's `PartialAggregate` step
(after a `Stamp` for ``first``/``last``), and the group-by still runs, receiving
partials instead of rows; a `FusionLink` between them carries the schema of the
rows aggregated, from which the group-by builds the same kernel.

A chain's head runs the whole chain's plan with its output rebound to the last
member's output channel; the members do not run, and the channels inside the
chain never carry data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from channels import Channel
from streamnet._actor import ActorNode
from streamnet.plans import FusionLink, Stamp

__all__ = ["Chain", "Fusion", "NodeDescription", "find_chains", "fusion_of"]


@dataclass(frozen=True, slots=True)
class NodeDescription:
    """What fusion needs to know of one node: its channels and what it declares."""

    name: str
    inputs: tuple[Hashable, ...]
    """The channels it consumes, each once."""
    outputs: tuple[Hashable, ...]
    """The channels it produces into, each once."""
    contributes_step: bool
    """It declares its per-chunk work as a plan step (``define_actor(plan=...)``)."""
    restarts: bool = False
    """It has a restart policy."""
    heads: bool = False
    """A source without a step that runs the steps fused after it (``define_actor(head=True)``):
    it can head a chain, never be a member."""
    context: Hashable = None
    """Its Context (nodes on different Contexts never fuse)."""
    aggregates: bool = False
    """A group-by that can take partials (``define_actor(aggregate=...)``): it can end a
    chain as its linked node, which runs and receives the chain's partials."""


@dataclass(frozen=True, slots=True)
class Chain:
    """Nodes that run as one: the head runs the plan of all of them, in order."""

    head: str
    members: tuple[str, ...]
    """The nodes after the head, in order; they do not run."""
    inner: tuple[Hashable, ...]
    """The channels between the nodes of the chain: they never carry data."""
    output: Hashable
    """The last member's output channel: the head sends the chain's results there."""
    linked: str | None = None
    """The group-by the chain ends at, which runs and receives its partials; None if none."""

    @property
    def nodes(self) -> tuple[str, ...]:
        """The head, then the members."""
        return (self.head, *self.members)


def find_chains(nodes: Sequence[NodeDescription], feedback: Sequence[Hashable] = ()) -> list[Chain]:
    """The chains of fusing edges among ``nodes``, in the order of their heads.

    Examples
    --------
    >>> d = NodeDescription
    >>> chains = find_chains([
    ...     d("source", (), ("a",), False),
    ...     d("filter", ("a",), ("b",), True),
    ...     d("select", ("b",), ("c",), True),
    ...     d("sink", ("c",), (), False),
    ... ])
    >>> chains
    [Chain(head='filter', members=('select',), inner=('b',), output='c', linked=None)]

    A group-by taking partials ends a chain, linked:

    >>> find_chains([
    ...     d("scan", (), ("a",), False, heads=True),
    ...     d("groupby", ("a",), ("b",), False, aggregates=True),
    ... ])
    [Chain(head='scan', members=(), inner=(), output='a', linked='groupby')]
    """
    producers: Counter[Hashable] = Counter()
    consumers: Counter[Hashable] = Counter()
    for node in nodes:
        producers.update(node.outputs)
        consumers.update(node.inputs)
    loops = set(feedback)

    def fusable(node: NodeDescription) -> bool:
        return node.contributes_step and not node.restarts

    def heads(node: NodeDescription) -> bool:
        return fusable(node) or (node.heads and not node.restarts)

    def ends(node: NodeDescription) -> bool:
        return fusable(node) or (node.aggregates and not node.restarts)

    def fuses(p: NodeDescription, q: NodeDescription) -> bool:
        if not (heads(p) and ends(q)) or p.context != q.context:
            return False
        if len(p.outputs) != 1 or q.inputs != p.outputs:
            return False
        channel = p.outputs[0]
        return channel not in loops and producers[channel] == 1 and consumers[channel] == 1

    consumer_of = {node.inputs[0]: node for node in nodes if len(node.inputs) == 1}
    following: dict[str, NodeDescription] = {}
    preceded: set[str] = set()
    for p in nodes:
        q = consumer_of.get(p.outputs[0]) if len(p.outputs) == 1 else None
        if q is not None and q is not p and fuses(p, q):
            following[p.name] = q
            preceded.add(q.name)
    chains = []
    for node in nodes:
        if node.name in preceded or node.name not in following:
            continue
        members: list[str] = []
        inner: list[Hashable] = []
        linked: str | None = None
        last = node
        seen = {node.name}
        while (nxt := following.get(last.name)) is not None and nxt.name not in seen:
            if not fusable(nxt):  # a group-by taking partials: it ends the chain, and runs
                linked = nxt.name
                break
            inner.append(last.outputs[0])
            members.append(nxt.name)
            seen.add(nxt.name)
            last = nxt
        chains.append(Chain(node.name, tuple(members), tuple(inner), last.outputs[0], linked))
    return chains


@dataclass(frozen=True, slots=True)
class Fusion:
    """The chains of one network, applied to its nodes: what its driver runs differently."""

    groups: Mapping[ActorNode, tuple[ActorNode, ...]] = field(default_factory=dict)
    """Per chain head, the members fused into it, in order."""
    members: Mapping[ActorNode, ActorNode] = field(default_factory=dict)
    """Per member, its head."""
    outputs: Mapping[ActorNode, Mapping[Channel[Any], Channel[Any]]] = field(default_factory=dict)
    """Per head, its output channel rebound to the chain's last one."""
    inner: frozenset[Channel[Any]] = frozenset()
    """The channels inside chains: nobody sends on them."""
    links: Mapping[ActorNode, ActorNode] = field(default_factory=dict)
    """Per group-by fed partials by a chain (linked), the chain's head."""


def describe(node: ActorNode) -> NodeDescription:
    """The node as fusion sees it."""
    return NodeDescription(
        node.name,
        node.inputs,
        node.outputs,
        node.contributes_step,
        restarts=node.definition.restart is not None,
        heads=node.definition.head,
        context=id(node.ctx),
        aggregates=node.aggregate_step() is not None,
    )


def fusion_of(nodes: Sequence[ActorNode], feedback: Sequence[Channel[Any]] = ()) -> Fusion:
    """Find the chains among ``nodes`` and give each head the steps of its members
    (`ActorNode.fuse`); nodes sharing a name are never fused (the chains name them)."""
    by_name = {node.name: node for node in nodes}
    if len(by_name) != len(nodes):
        return Fusion()
    groups: dict[ActorNode, tuple[ActorNode, ...]] = {}
    members: dict[ActorNode, ActorNode] = {}
    outputs: dict[ActorNode, dict[Channel[Any], Channel[Any]]] = {}
    inner: set[Channel[Any]] = set()
    links: dict[ActorNode, ActorNode] = {}
    for chain in find_chains([describe(node) for node in nodes], feedback):
        head = by_name[chain.head]
        group = tuple(by_name[name] for name in chain.members)
        steps = [step for node in group if (step := node.step()) is not None]
        link = None
        if chain.linked is not None:
            linked = by_name[chain.linked]
            aggregate = linked.aggregate_step()
            assert aggregate is not None  # it was described as taking partials
            if aggregate.ordered:  # first/last: each chunk stamped with its place in the stream
                steps.append(Stamp(actor=linked.name))
            steps.append(aggregate)
            link = FusionLink(head.name, linked.name, aggregate)
            linked.link_to(link)
            links[linked] = head
        head.fuse(tuple(steps), link)
        groups[head] = group
        members.update(dict.fromkeys(group, head))
        outputs[head] = {head.outputs[0]: chain.output}  # type: ignore[dict-item]
        inner.update(chain.inner)  # type: ignore[arg-type]
    return Fusion(groups, members, outputs, frozenset(inner), links)
