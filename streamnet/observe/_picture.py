"""A picture of a network: actors as boxes, channels as arrows, as DOT and as SVG.

Graphviz's ``dot`` draws it when it is installed; otherwise a small layered
layout in pure Python does, so a picture never fails for want of Graphviz.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from channels import Channel
from streamnet._typing import PictureEngine
from streamnet.observe._statistics import NetworkStatistics

__all__ = [
    "ActorDescription",
    "Edge",
    "Graph",
    "NetworkDescription",
    "PictureEngine",
    "graph_of",
    "to_dot",
    "to_svg",
]


class ActorDescription(Protocol):
    """What a picture shows of an actor node."""

    @property
    def name(self) -> str: ...
    @property
    def op_id(self) -> int | None: ...
    @property
    def inputs(self) -> tuple[Channel[Any], ...]: ...
    @property
    def outputs(self) -> tuple[Channel[Any], ...]: ...


class NetworkDescription(Protocol):
    """What a picture reads of a network (a `streamnet.Network` is one).

    Pictures read this description, not the Network class, so the network's
    module can draw itself without an import circle.
    """

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def actors(self) -> Sequence[ActorDescription]: ...
    @property
    def channels(self) -> Sequence[Channel[Any]]: ...
    def statistics(self) -> NetworkStatistics: ...


@dataclass(frozen=True, slots=True)
class Edge:
    """One channel from a producer to a consumer."""

    source: str
    target: str
    label: str


@dataclass(frozen=True, slots=True)
class Graph:
    """Nodes (actor name -> label lines) and edges of a network."""

    nodes: dict[str, list[str]]
    edges: list[Edge]


def _type_name(payload_type: object) -> str:
    if payload_type is None:
        return "any"
    return getattr(payload_type, "__name__", str(payload_type))


def graph_of(network: NetworkDescription) -> Graph:
    """The network as nodes and edges, labelled with counts once it has run."""
    stats = network.statistics()
    ran = network.state != "built"
    actor_stats = {a.name: a for a in stats.actors}
    channel_stats = {c.name: c for c in stats.channels}
    nodes: dict[str, list[str]] = {}
    for node in network.actors:
        lines = [node.name]
        if node.op_id is not None:
            lines.append(f"collective, op {node.op_id}")
        if ran:
            a = actor_stats[node.name]
            lines.append(f"{a.state}, busy {a.busy_seconds:.2f} s")
        nodes[node.name] = lines
    edges: list[Edge] = []
    for channel in network.channels:
        producers = [n.name for n in network.actors if channel in n.outputs]
        consumers = [n.name for n in network.actors if channel in n.inputs]
        label = f"{channel.name}: {_type_name(channel.payload_type)}"
        if ran:
            c = channel_stats[channel.name]
            label += f"\n{c.messages_sent:,} msgs, {c.rows_sent:,} rows"
        for source in producers:
            for target in consumers:
                edges.append(Edge(source, target, label))
    return Graph(nodes, edges)


def to_dot(network: NetworkDescription) -> str:
    """The network in Graphviz's DOT language."""
    graph = graph_of(network)
    lines = [
        f'digraph "{_escape(network.name)}" {{',
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    groups = [tuple(node.name for node in group) for group in getattr(network, "fused", ())]
    grouped = {name: i for i, group in enumerate(groups) for name in group}
    for name, label in graph.nodes.items():
        if name not in grouped:
            lines.append(f'  "{_escape(name)}" [label="{_escape(chr(10).join(label))}"];')
    for group in groups:  # fused actors: one plan per chunk, drawn as a cluster
        lines.append(f'  subgraph "cluster_{_escape(group[0])}" {{')
        lines.append('    label="fused: one plan per chunk"; style="dashed";')
        for name in group:
            text = chr(10).join(graph.nodes[name])
            lines.append(f'    "{_escape(name)}" [label="{_escape(text)}"];')
        lines.append("  }")
    for edge in graph.edges:
        inside = grouped.get(edge.source, -1) == grouped.get(edge.target, -2)
        text = f"{edge.label} (fused)" if inside else edge.label
        style = ", style=dashed" if inside else ""
        lines.append(
            f'  "{_escape(edge.source)}" -> "{_escape(edge.target)}" '
            f'[label="{_escape(text)}"{style}];'
        )
    lines.append("}")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_svg(network: NetworkDescription, *, engine: PictureEngine = "auto") -> str:
    """The network as SVG, drawn by Graphviz when available (see :data:`PictureEngine`).

    Raises
    ------
    FileNotFoundError
        ``engine="graphviz"`` but no ``dot`` program is installed.
    """
    if engine not in ("auto", "graphviz", "python"):
        raise ValueError(f"`engine` must be 'auto', 'graphviz' or 'python', got {engine!r}")
    dot = shutil.which("dot")
    if engine == "graphviz" and dot is None:
        raise FileNotFoundError(
            "Graphviz's `dot` program is not installed (apt install graphviz, or use engine='python')"
        )
    if dot is not None and engine != "python":
        done = subprocess.run(
            [dot, "-Tsvg"], input=to_dot(network), capture_output=True, text=True, check=True
        )
        return done.stdout
    return _layered_svg(graph_of(network))


# --------------------------------------------------------------------- pure-Python layout
_BOX_W, _LINE_H, _PAD, _GAP_X, _GAP_Y = 190, 16, 10, 120, 30


def _layers(graph: Graph) -> dict[str, int]:
    """Longest-path layering: every actor sits right of all its producers (cycles broken)."""
    layer = dict.fromkeys(graph.nodes, 0)
    for _ in range(len(graph.nodes)):
        changed = False
        for edge in graph.edges:
            if edge.source != edge.target and layer[edge.target] <= layer[edge.source]:
                layer[edge.target] = layer[edge.source] + 1
                changed = True
        if not changed:
            break
    return layer


def _layered_svg(graph: Graph) -> str:
    layer = _layers(graph)
    columns: dict[int, list[str]] = {}
    for name in graph.nodes:
        columns.setdefault(layer[name], []).append(name)
    heights = {n: _PAD * 2 + _LINE_H * len(lines) for n, lines in graph.nodes.items()}
    pos: dict[str, tuple[float, float]] = {}
    total_h = 0.0
    for col, names in sorted(columns.items()):
        y = 20.0
        for name in names:
            pos[name] = (20.0 + col * (_BOX_W + _GAP_X), y)
            y += heights[name] + _GAP_Y
        total_h = max(total_h, y)
    width = 40 + (max(columns, default=0) + 1) * (_BOX_W + _GAP_X) - _GAP_X
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{total_h:.0f}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#556"/></marker></defs>',
    ]
    for edge in graph.edges:
        (x1, y1), (x2, y2) = pos[edge.source], pos[edge.target]
        sx, sy = x1 + _BOX_W, y1 + heights[edge.source] / 2
        tx, ty = x2, y2 + heights[edge.target] / 2
        out.append(
            f'<path d="M{sx:.0f},{sy:.0f} C{sx + 50:.0f},{sy:.0f} {tx - 50:.0f},{ty:.0f} '
            f'{tx:.0f},{ty:.0f}" fill="none" stroke="#556" marker-end="url(#arrow)"/>'
        )
        label = edge.label.split("\n")
        for i, text in enumerate(label):  # stacked above the arrow
            out.append(
                f'<text x="{(sx + tx) / 2:.0f}" y="{(sy + ty) / 2 - 6 - (len(label) - 1 - i) * 13:.0f}" '
                f'text-anchor="middle" font-size="10" fill="#334">{html.escape(text)}</text>'
            )
    for name, lines in graph.nodes.items():
        x, y = pos[name]
        out.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{_BOX_W}" height="{heights[name]}" rx="8" '
            'fill="#eef3fb" stroke="#3b5b92"/>'
        )
        for i, text in enumerate(lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            out.append(
                f'<text x="{x + _BOX_W / 2:.0f}" y="{y + _PAD + _LINE_H * (i + 1) - 4:.0f}" '
                f'text-anchor="middle"{weight}>{html.escape(text)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)
