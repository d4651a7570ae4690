"""Memory: where a Context's spilled chunks go, and what killed processes left on disk.

- `SpillDirectory` (``_spill.py``): the Context's spill folder, its files per run,
  removed on every exit path; `SpillStatistics` counts them.
- `process_tag` and `left_by_dead_process` (``_leftovers.py``): the ``<host>-<pid>``
  names that let the next process remove what a killed one left behind.
"""

from channels.lowlevel import publish
from streamnet.memory._leftovers import left_by_dead_process, process_tag
from streamnet.memory._spill import SpillDirectory, SpillStatistics

__all__ = ["SpillDirectory", "SpillStatistics", "left_by_dead_process", "process_tag"]

publish(globals(), "streamnet", __all__)
