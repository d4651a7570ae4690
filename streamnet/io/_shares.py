"""How a source divides its work among ranks: contiguous shares balanced by weight."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["rank_share"]


def rank_share(weights: Sequence[int], rank: int, nranks: int) -> range:
    """The items of ``weights`` (in order) that ``rank`` of ``nranks`` takes.

    Item ``i`` goes to the rank whose equal part of the total weight holds the
    midpoint of the item. So each rank takes a contiguous run of items, the runs
    of ranks 0, 1, ... concatenate to all items in order, every item goes to
    exactly one rank, and a rank's weight is within one item's weight of
    ``total / nranks``. Items of weight 0 go with their position; when every
    weight is 0, items are dealt by count. A rank may take nothing.

    Examples
    --------
    >>> from streamnet import rank_share
    >>> [rank_share([5, 5, 5, 5], r, 2) for r in range(2)]
    [range(0, 2), range(2, 4)]
    >>> [rank_share([9, 1, 1, 1], r, 2) for r in range(2)]
    [range(0, 1), range(1, 4)]
    >>> [rank_share([3], r, 3) for r in range(3)]
    [range(0, 0), range(0, 1), range(1, 1)]
    """
    if nranks < 1 or not 0 <= rank < nranks:
        raise ValueError(f"rank {rank!r} of {nranks!r}: need 0 <= rank < nranks")
    if any(w < 0 for w in weights):
        raise ValueError(f"weights must not be negative, got {list(weights)!r}")
    if nranks == 1:
        return range(len(weights))
    total = sum(weights)
    if total == 0:
        weights, total = [1] * len(weights), len(weights)
    start = stop = 0
    before = 0
    for index, weight in enumerate(weights):
        owner = min(nranks - 1, (2 * before + weight) * nranks // (2 * total)) if total else 0
        before += weight
        if owner < rank:
            start = stop = index + 1
        elif owner == rank:
            stop = index + 1
        else:
            break
    return range(start, stop)
