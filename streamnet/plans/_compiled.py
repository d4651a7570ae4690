"""A plan compiled by a backend for one input schema, and the values one run of it takes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamnet.plans._plan import Plan

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["NO_PARAMS", "CompiledPlan", "PlanParams"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanParams:
    """What one run of a plan takes beside its chunk: the values of a `Stamp` step.

    Attributes
    ----------
    rank
        The rank running the plan.
    sequence
        The chunk's place in its stream (its message's sequence number).
    """

    rank: int = 0
    sequence: int = 0


NO_PARAMS = PlanParams()
"""The parameters of a run that needs none (the default of `Backend.run`)."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CompiledPlan:
    """A plan checked and prepared by a backend for chunks of one schema (`Backend.compile`).

    Made by a backend and run by the same one (`Backend.run`); a backend keeps
    what it prepared in a subclass.

    Attributes
    ----------
    plan
        The plan compiled.
    input_schema
        The schema of the chunks it runs on (canonical, shared by equal schemas).
    output_schema
        The schema of every chunk it makes, shared by equal schemas so that the
        channels the chunks enter check them by identity; None when it is not
        ``certain``.
    certain
        Whether the output schema is known before any data is seen. It is not when
        a step's types depend on the data (a Python function in an expression, a
        ``Null`` or ``Object`` column): each output chunk's schema is then worked
        out from its data, and the channel it enters checks it.
    aggregate_input_schema
        For a plan ending in a `PartialAggregate`, the schema of the rows that step
        aggregates (from which a group-by builds the same kernel); None otherwise.
    """

    plan: Plan
    input_schema: pa.Schema
    output_schema: pa.Schema | None
    certain: bool
    aggregate_input_schema: pa.Schema | None = None
