"""Plans: per-chunk work as a chain of Polars-expression steps, which a backend runs.

- `Plan`, its steps (`Filter`, `Select`, `WithColumns`, `Rename`, `Cast`,
  `Stamp`) and its sources (`ParquetScan`, `Slices`) (``_plan.py``): values
  that name the actors that contributed them.

A plan is a value; running one is the backends' plan facet, listed in `Backend`
among the facets to come.
"""

from channels._exports import publish
from streamnet.plans._aggregation import Agg, AggHow
from streamnet.plans._plan import (
    Cast,
    Filter,
    ParquetScan,
    Plan,
    Rename,
    Select,
    Slices,
    Stamp,
    Step,
    WithColumns,
)

__all__ = [
    "Agg",
    "AggHow",
    "Cast",
    "Filter",
    "ParquetScan",
    "Plan",
    "Rename",
    "Select",
    "Slices",
    "Stamp",
    "Step",
    "WithColumns",
]

publish(globals(), "streamnet", __all__)
