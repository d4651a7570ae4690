"""Literal aliases for the choices streamnet's options take."""

from __future__ import annotations

from typing import Literal

__all__ = ["ActorState", "Backend", "PictureEngine", "SpanKind"]

Backend = Literal["cpu", "gpu"]
"""Where tables live and kernels run."""

ActorState = Literal["created", "running", "done", "failed", "cancelled"]
"""Where an actor is in its run."""

PictureEngine = Literal["auto", "graphviz", "python"]
"""Who draws the SVG: Graphviz's ``dot`` if found (``auto``), or the pure-Python layout."""

SpanKind = Literal["busy", "blocked on input", "blocked on output"]
"""What an actor was doing during a span of a timeline."""
