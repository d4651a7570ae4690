"""Memory: a Context's budget, where its spilled chunks go, and what killed processes left on disk.

- `SpillDirectory` (``_spill.py``): the Context's spill folder, its files per run,
  removed on every exit path; `SpillStatistics` counts them.
- `MemoryBudget` (``_budget.py``): a Context's budget (``memory_limit``): `MemoryHolder` s
  of operators' chunks, spilled largest and coldest first when it is short, and
  `Reservation` s of working memory; `MemoryStatistics` and `ActorMemory` its figures,
  `parse_memory_limit` its argument.
- `process_tag` and `left_by_dead_process` (``_leftovers.py``): the ``<host>-<pid>``
  names that let the next process remove what a killed one left behind.
"""

from channels.lowlevel import publish
from streamnet.memory._budget import (
    ActorMemory,
    MemoryBudget,
    MemoryHolder,
    MemorySample,
    MemoryStatistics,
    Reservation,
    parse_memory_limit,
)
from streamnet.memory._leftovers import left_by_dead_process, process_tag
from streamnet.memory._spill import SpillDirectory, SpillStatistics

__all__ = [
    "ActorMemory",
    "MemoryBudget",
    "MemoryHolder",
    "MemorySample",
    "MemoryStatistics",
    "Reservation",
    "SpillDirectory",
    "SpillStatistics",
    "left_by_dead_process",
    "parse_memory_limit",
    "process_tag",
]

publish(globals(), "streamnet", __all__)
