"""CpuBackend: the CPU backend, assembled from one class per facet (one module each)."""

from __future__ import annotations

from streamnet.backends.cpu._aggregate import CpuAggregation
from streamnet.backends.cpu._csv import CpuCsv
from streamnet.backends.cpu._distinct import CpuDistinct
from streamnet.backends.cpu._join import CpuJoins
from streamnet.backends.cpu._lifecycle import CpuLifecycle
from streamnet.backends.cpu._parquet import CpuParquet
from streamnet.backends.cpu._partition import CpuPartitioning
from streamnet.backends.cpu._plans import CpuPlans
from streamnet.backends.cpu._sort import CpuSorting
from streamnet.backends.cpu._table import CpuTables
from streamnet.backends.cpu._text import CpuText
from streamnet.backends.cpu._tiers import CpuTiers
from streamnet.backends.cpu._wire import CpuWire

__all__ = ["CpuBackend"]


class CpuBackend(
    CpuLifecycle,
    CpuTables,
    CpuWire,
    CpuPartitioning,
    CpuPlans,
    CpuAggregation,
    CpuDistinct,
    CpuSorting,
    CpuJoins,
    CpuParquet,
    CpuCsv,
    CpuText,
    CpuTiers,
):
    """Tables as Arrow tables or Polars frames, kernels with Polars and pyarrow.

    The default backend. Chunks hold a ``pyarrow.Table`` or a ``polars.DataFrame``
    and convert between them only when asked (see `TableChunk`); packed chunks
    are Arrow IPC streams; hash partitions follow Polars' hash, so the backend's
    fingerprint names the Polars version; plans run as one Polars query per chunk.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from streamnet import Context
    >>> with Context(backend="cpu") as ctx:
    ...     chunk = ctx.backend.from_arrow(pa.table({"k": [1, 2, 3, 4]}))
    ...     pieces = ctx.backend.hash_partition(chunk, ["k"], 2)
    >>> sum(piece.num_rows for piece in pieces.values())
    4
    """
