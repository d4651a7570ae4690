"""Timeline: when each actor was busy or blocked, as a Chrome trace or a Gantt chart."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamnet._typing import SpanKind

if TYPE_CHECKING:
    from streamnet.memory._budget import MemorySample
    from streamnet.observe._statistics import ActorRecorder

__all__ = ["Span", "SpanKind", "Timeline"]

_KIND_OF_WAIT: dict[str, SpanKind] = {
    "input": "blocked on input",
    "output": "blocked on output",
    "memory": "blocked on memory",
    "thread": "queued for a thread",
}
_COLORS: dict[SpanKind, str] = {
    "busy": "#3b7dd8",
    "blocked on input": "#e8b04a",
    "blocked on output": "#d9534f",
    "blocked on memory": "#8e6fc1",
    "queued for a thread": "#9aa5b1",
}


@dataclass(frozen=True, slots=True)
class Span:
    """One stretch of one actor's time, in seconds from the start of the run."""

    actor: str
    kind: SpanKind
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Timeline:
    """Spans of every actor of one run on one rank.

    Run the network with ``Context(trace=True)``, then ``network.timeline()``.
    ``truncated`` names the actors that waited more often than the Context's
    ``trace_limit``: only their latest waits were kept, and their spans start
    at the oldest of those. ``memory`` holds the actors' memory figures
    (held, reserved, spilled bytes) each time they changed, times in seconds
    from the start of the run like the spans'.
    """

    actors: tuple[str, ...]
    spans: tuple[Span, ...]
    rank: int = 0
    truncated: tuple[str, ...] = ()
    memory: tuple[MemorySample, ...] = ()

    @classmethod
    def from_recorders(
        cls,
        recorders: Sequence[ActorRecorder],
        rank: int = 0,
        memory: Sequence[MemorySample] = (),
    ) -> Timeline:
        started = [r.started for r in recorders if r.started]
        origin = min(started) if started else 0.0
        spans: list[Span] = []
        truncated: list[str] = []
        for recorder in recorders:
            if not recorder.started:
                continue
            end = recorder.ended or recorder.started
            cursor = recorder.started
            waits = sorted(recorder.waits or [])
            limit = getattr(recorder.waits, "maxlen", None)
            if limit is not None and len(waits) >= limit:  # older waits were dropped
                truncated.append(recorder.name)
                cursor = waits[0][1]
            for kind, begin, finish in waits:
                if begin > cursor:
                    spans.append(Span(recorder.name, "busy", cursor - origin, begin - origin))
                spans.append(
                    Span(recorder.name, _KIND_OF_WAIT[kind], begin - origin, finish - origin)
                )
                cursor = max(cursor, finish)
            if end > cursor:
                spans.append(Span(recorder.name, "busy", cursor - origin, end - origin))
        names = tuple(r.name for r in recorders)
        points = tuple(
            dataclasses.replace(sample, time=sample.time - origin)
            for sample in memory
            if sample.actor in names
        )
        return cls(names, tuple(spans), rank, tuple(truncated), points)

    def to_chrome_trace(self) -> dict[str, Any]:
        """The Chrome trace event format (``chrome://tracing``, Perfetto): complete events in µs."""
        events: list[dict[str, Any]] = [
            {
                "name": "process_name",
                "ph": "M",
                "pid": self.rank,
                "args": {"name": f"rank {self.rank}"},
            }
        ]
        tids = {name: i for i, name in enumerate(self.actors)}
        for name, tid in tids.items():
            events.append(
                {
                    "name": "thread_name",
                    "ph": "M",
                    "pid": self.rank,
                    "tid": tid,
                    "args": {"name": name},
                }
            )
        for span in self.spans:
            events.append(
                {
                    "name": span.kind,
                    "cat": span.kind.split()[0],
                    "ph": "X",
                    "ts": round(span.start * 1e6, 3),
                    "dur": round((span.end - span.start) * 1e6, 3),
                    "pid": self.rank,
                    "tid": tids[span.actor],
                }
            )
        for sample in self.memory:  # counter tracks, one per actor
            events.append(
                {
                    "name": f"memory {sample.actor}",
                    "ph": "C",
                    "ts": round(sample.time * 1e6, 3),
                    "pid": self.rank,
                    "args": {
                        "held bytes": sample.held,
                        "reserved bytes": sample.reserved,
                        "spilled bytes": sample.spilled,
                    },
                }
            )
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def save_chrome_trace(self, path: str | os.PathLike[str]) -> Path:
        """Write the Chrome trace JSON to ``path``; open it in Perfetto or ``chrome://tracing``."""
        target = Path(path)
        target.write_text(json.dumps(self.to_chrome_trace()))
        return target

    def plot(self, ax: Any = None) -> Any:
        """A Gantt chart of the spans with matplotlib (installed separately); returns the axes."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("Timeline.plot needs matplotlib: pip install matplotlib") from exc
        own_figure = ax is None
        if ax is None:
            _, ax = plt.subplots(figsize=(10, 0.8 + 0.45 * len(self.actors)))
        rows = {name: i for i, name in enumerate(reversed(self.actors))}
        for span in self.spans:
            ax.barh(rows[span.actor], span.end - span.start, left=span.start, height=0.6,
                    color=_COLORS[span.kind], label=span.kind)  # fmt: skip
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), loc="upper right", fontsize="small")
        ax.set_yticks(list(rows.values()), list(rows.keys()))
        ax.set_xlabel("seconds")
        if own_figure:
            ax.figure.tight_layout()  # room for the actor names
        return ax
