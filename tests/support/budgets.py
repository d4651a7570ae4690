"""Budgets of a chosen size: the ``memory_limit`` that leaves operators exactly so many bytes."""

from __future__ import annotations

import math

from streamnet.memory._budget import HEADROOM


def asking_for(budget: int) -> int:
    """The ``Context(memory_limit=...)`` whose budget (`MemoryBudget.limit`: the limit less
    its headroom) is ``budget`` bytes."""
    asked = math.ceil(budget / (1 - HEADROOM))
    assert int(asked * (1 - HEADROOM)) == budget
    return asked
