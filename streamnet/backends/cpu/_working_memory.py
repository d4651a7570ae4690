"""The CPU backend's working memory per kind of kernel, as measured (`Backend.working_memory`).

Each factor is the process's peak resident growth during one kernel, plus its
input, per byte of input as `TableChunk.nbytes` counts it, measured by
``benchmarks/kernel_memory.py`` (each kernel alone in a fresh process, on the
benchmark's table of an int64 key, a float, an int and a short string; Polars
2.1, pyarrow 26), rounded up.

Under a memory budget, Arrow's allocations go to its jemalloc pool, which gives
freed pages back at once (pyarrow's default, mimalloc, keeps them for a while:
W7's join held about 80 MiB more at its peak under 512 MiB). Polars' own
allocator (jemalloc too) reads its settings once, when Polars is imported, from
``_RJEM_MALLOC_CONF``: see the README's "Memory" section.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from streamnet._typing import KernelKind
from streamnet.backends._base import Backend

__all__ = ["CpuWorkingMemory"]


class CpuWorkingMemory(Backend):
    """The measured factors of the CPU backend's kernels."""

    WORKING_MEMORY: ClassVar[dict[KernelKind, float]] = {
        # measured at 250,000 and 1,000,000 rows, on chunks held by Polars and on chunks
        # loaded from disk (Arrow): the largest, with a margin
        "scan": 1.25,  # per decoded byte (the result), besides the encoded bytes read
        "scan_aggregate": 2.75,  # per decoded byte, high-cardinality partials
        "aggregate": 2.5,  # partials of a chunk
        "finish": 3.75,  # concatenated partials merged and finished
        "hash_partition": 3.25,  # 16 partitions, of a chunk loaded from disk (2.5 held by Polars)
        "range_partition": 3.25,
        "concat": 1.25,  # of chunks held by Polars: no copy
        "sort": 3.25,  # pieces concatenated, then sorted
        "merge": 6.5,  # per byte of the slices held (a slice of each run, the chunk out)
        "join": 2.75,  # inner join, a result about the size of its inputs
        "write": 2.5,  # Parquet (about 25 MB more the first time: the encoders' buffers)
    }

    def free_promptly(self) -> None:
        if "jemalloc" in pa.supported_memory_backends():
            pa.jemalloc_set_decay_ms(0)  # freed pages go back at once
            pa.set_memory_pool(pa.jemalloc_memory_pool())
