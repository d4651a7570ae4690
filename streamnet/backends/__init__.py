"""Backends: where tables live and kernels run, behind one interface.

- `Backend` (``_base.py``): the interface, every method's contract and errors written once;
  `host_kind`, which host table a value is.
- `Packed` (``_types.py``): the records its methods take and return.
- `AggregationKernel` (``_aggregation.py``): what `Backend.aggregation` makes.
- `SortOrder` (``_sort_order.py``): the order the sorting methods put rows in.
- `JoinSpec`, `JoinBuild` (``_join_spec.py``): what a join matches and keeps; a broadcast
  join's prepared right side.
- `ChunkReader`, `ChunkWriter` (``_files.py``): files read and written chunk by chunk.
- ``_registry.py``: backends by name (`backend_for`, `probe_backend`), the process's
  default (`default_backend`, ``STREAMNET_BACKEND``, `use_backend`).
- ``cpu/``: the CPU backend (Arrow tables and Polars frames), one module per facet.

A `Context` makes its backend (``Context(backend="cpu")``) and hands it to the
actors as ``ctx.backend``; its name is a `BackendName`, its memory tiers `Tier`s, its
kinds of kernel (whose working memory it knows) `KernelKind`s.
"""

from channels.lowlevel import publish
from streamnet._typing import BackendName, KernelKind, Tier
from streamnet.backends._aggregation import AggregationKernel
from streamnet.backends._base import Backend, host_kind
from streamnet.backends._files import ChunkReader, ChunkWriter
from streamnet.backends._join_spec import JoinBuild, JoinSpec
from streamnet.backends._registry import (
    backend_for,
    default_backend,
    probe_backend,
    use_backend,
)
from streamnet.backends._sort_order import SortOrder
from streamnet.backends._types import Packed

__all__ = [
    "AggregationKernel",
    "Backend",
    "BackendName",
    "ChunkReader",
    "ChunkWriter",
    "JoinBuild",
    "JoinSpec",
    "KernelKind",
    "Packed",
    "SortOrder",
    "Tier",
    "backend_for",
    "default_backend",
    "host_kind",
    "probe_backend",
    "use_backend",
]

publish(globals(), "streamnet", __all__)
