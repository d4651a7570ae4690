"""The CPU backend: Arrow tables and Polars frames, one module per facet.

- `CpuBackend` (``_backend.py``): the facets put together, nothing else.
- ``_lifecycle.py``: probe and fingerprint (the Polars version).
- ``_table.py``: `CpuTable` (a chunk's native table), host boundary, metadata,
  slice, concat and projection.
- ``_wire.py``: packing as one Arrow IPC stream, and reading it back without a copy.
- ``_partition.py``: hash partitioning with Polars' seeded hash.
- ``_parquet.py``: Parquet files written with pyarrow.
- ``_csv.py``: CSV files read with pyarrow, errors that name the line and the column.
- ``_plans.py``: plans as one Polars LazyFrame per chunk, checked step by step.
- ``_aggregation_steps.py``: each aggregation's partial, merge and final steps as
  Polars expressions; ``_aggregate.py``: the kernel that runs them on chunks.
- ``_distinct.py``, ``_sort.py``: distinct rows; sort, top-k, sampling and range partitions.
- ``_tiers.py``: spilling to Arrow IPC files on disk and reading them back.
"""

from channels.lowlevel import publish
from streamnet.backends.cpu._backend import CpuBackend

__all__ = ["CpuBackend"]

publish(globals(), "streamnet.backends.cpu", __all__)
