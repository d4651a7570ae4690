"""Plans: per-chunk work as a chain of Polars-expression steps, which a backend runs.

- `Plan`, its steps (`Filter`, `Select`, `WithColumns`, `Rename`, `Cast`,
  `Stamp`, and last `PartialAggregate`) and its sources (`ParquetScan`, `Slices`) (``_plan.py``): values
  that name the actors that contributed them.
- `CompiledPlan`, `PlanParams` (``_compiled.py``): a plan a backend checked and
  prepared for one input schema (`Backend.compile`), and what one run of it
  takes beside its chunk (`Backend.run`).
- `FusionLink` (``_link.py``): between a fused chain's head and the group-by
  that receives its partials.
- `Predicate` (``_predicates.py``): a conjunct of a filter that may move upstream, and
  which plan steps let it through (`step_passes`); a key filter's values, a `KeySet`,
  are known once a join has read one input whole.
- `check_row_wise` (``_row_wise.py``): the expressions a plan evaluates one chunk
  at a time must be row-wise.
- ``_check.py``: the checks of a step that need only column names, naming its actor.

An actor runs its plan over a stream with `streamnet.run_plan`.
"""

from channels.lowlevel import publish
from streamnet.plans._aggregation import Agg, AggHow
from streamnet.plans._compiled import CompiledPlan, PlanParams
from streamnet.plans._link import FusionLink
from streamnet.plans._plan import (
    Cast,
    Filter,
    ParquetScan,
    PartialAggregate,
    Plan,
    Rename,
    Select,
    Slices,
    Stamp,
    Step,
    WithColumns,
)
from streamnet.plans._predicates import KeySet, Predicate
from streamnet.plans._row_wise import check_row_wise

__all__ = [
    "Agg",
    "AggHow",
    "Cast",
    "CompiledPlan",
    "Filter",
    "FusionLink",
    "KeySet",
    "ParquetScan",
    "PartialAggregate",
    "Plan",
    "PlanParams",
    "Predicate",
    "Rename",
    "Select",
    "Slices",
    "Stamp",
    "Step",
    "WithColumns",
    "check_row_wise",
]

publish(globals(), "streamnet", __all__)
