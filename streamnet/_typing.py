"""Literal aliases for the choices streamnet's options take."""

from __future__ import annotations

from typing import Literal

__all__ = ["ActorState", "Backend"]

Backend = Literal["cpu", "gpu"]
"""Where tables live and kernels run."""

ActorState = Literal["created", "running", "done", "failed", "cancelled"]
"""Where an actor is in its run."""
