"""FusionLink: how a fused chain that ends in a partial aggregation feeds its group-by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamnet.plans._plan import PartialAggregate

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FusionLink"]


@dataclass(slots=True, eq=False)
class FusionLink:
    """Between the head of a fused chain, which runs the chain's plan up to a
    `PartialAggregate` step, and the group-by actor that step belongs to, which
    runs and receives the partials instead of rows.

    The head publishes the schema of the rows the step aggregates once it has
    compiled its plan, before it sends a chunk (`publish`); the group-by builds
    the same aggregation kernel from it (`Backend.aggregation`), so the
    partials it receives are of that kernel's partial schema. Its channel
    carries the order: a chunk received means the schema was published. A head
    that saw no input publishes nothing (``input_schema`` stays None), and the
    group-by learns the schema from the other ranks.

    Attributes
    ----------
    head
        The name of the actor heading the chain.
    aggregate
        The name of the group-by actor that receives the partials.
    step
        The chain's last step, the group-by's partial aggregation.
    input_schema
        The schema of the rows aggregated, once published.
    """

    head: str
    aggregate: str
    step: PartialAggregate
    input_schema: pa.Schema | None = None

    def publish(self, schema: pa.Schema | None) -> None:
        """Publish the schema of the rows aggregated (from `CompiledPlan.aggregate_input_schema`)."""
        if schema is not None and self.input_schema is None:
            self.input_schema = schema
