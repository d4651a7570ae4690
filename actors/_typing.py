"""Literal aliases: every set of choices the actors' options take, in one place."""

from __future__ import annotations

from typing import Literal

from streamnet import JoinHow
from streamnet.plans import AggHow

__all__ = [
    "AggHow",
    "DistinctKeep",
    "JoinHow",
    "JoinMethod",
    "JoinStrategy",
    "Placement",
    "TableKind",
    "WriteMode",
]

DistinctKeep = Literal["any", "first", "last"]
"""Which row of a set of duplicates :func:`distinct` keeps."""

JoinStrategy = Literal["auto", "broadcast", "shuffle"]
"""How the join moves data between ranks."""

JoinMethod = Literal["broadcast", "shuffle", "grace", "hybrid"]
"""How a join moved data between ranks: the `JoinStrategy` it ran (``auto`` picks one),
``"grace"``: under a memory limit, partitions split again or joined block by block, or
``"hybrid"``: under a memory limit on one rank, the right side's partitions kept in memory
and the left side streamed against them."""

Placement = Literal["round_robin", "contiguous"]
"""How partitions are spread over ranks."""

TableKind = Literal["arrow", "polars", "pandas"]
"""A kind of table: a ``pyarrow.Table``, a Polars or a pandas DataFrame. What
``map_chunks(kind=)`` hands its function, and what ``collect(into=)`` returns."""

WriteMode = Literal["error", "overwrite", "append"]
"""What a writer does when its target exists: raise (default), replace it, or add files to it."""
