"""JoinSpec: what a join matches and keeps; JoinBuild: the prepared build side of a broadcast join."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from streamnet._typing import JoinHow

__all__ = ["JoinBuild", "JoinSpec", "JoinSide"]

JoinSide = Literal["left", "right"]
"""One input of a join."""

_HOWS: tuple[str, ...] = get_args(JoinHow)


@dataclass(frozen=True, slots=True)
class JoinSpec:
    """Left rows matched to right rows where ``left_on`` equals ``right_on``, key by key.

    ``how`` says which rows are kept, as in Polars' ``join``; null keys never
    match. A column of the right side whose name is also on the left gets
    ``suffix``.

    Examples
    --------
    >>> JoinSpec.of("id", how="left")
    JoinSpec(left_on=('id',), right_on=('id',), how='left', suffix='_right')

    Raises
    ------
    ValueError
        No key, ``left_on`` and ``right_on`` of different lengths, a key that is
        not a string, or ``how`` none of inner, left, right, full, semi, anti.
    """

    left_on: tuple[str, ...]
    right_on: tuple[str, ...]
    how: JoinHow = "inner"
    suffix: str = "_right"

    def __post_init__(self) -> None:
        for name in ("left_on", "right_on"):
            keys = getattr(self, name)
            if not isinstance(keys, tuple) or not keys or not all(isinstance(k, str) for k in keys):
                raise ValueError(
                    f"JoinSpec: `{name}` must be a tuple of one or more column names, got {keys!r}"
                )
        if len(self.left_on) != len(self.right_on):
            raise ValueError(
                f"JoinSpec: `left_on` {list(self.left_on)} and `right_on` {list(self.right_on)} "
                "differ in length"
            )
        if self.how not in _HOWS:
            raise ValueError(
                f"JoinSpec: `how` must be inner, left, right, full, semi or anti, got {self.how!r}"
            )
        if not isinstance(self.suffix, str):
            raise ValueError(f"JoinSpec: `suffix` must be a string, got {self.suffix!r}")

    @classmethod
    def of(
        cls,
        on: str | Sequence[str] | None = None,
        *,
        left_on: str | Sequence[str] | None = None,
        right_on: str | Sequence[str] | None = None,
        how: JoinHow = "inner",
        suffix: str = "_right",
    ) -> JoinSpec:
        """The spec of a join on ``on`` (the same names on both sides), or on ``left_on`` and
        ``right_on``; a single name stands for one key."""

        def names(keys: str | Sequence[str] | None) -> tuple[str, ...]:
            return (keys,) if isinstance(keys, str) else tuple(keys or ())

        if on is not None:
            if left_on is not None or right_on is not None:
                raise ValueError("JoinSpec: give `on`, or `left_on` and `right_on`, not both")
            return cls(names(on), names(on), how, suffix)
        return cls(names(left_on), names(right_on), how, suffix)


    def origins(
        self, left: Iterable[str], right: Iterable[str]
    ) -> dict[str, tuple[JoinSide, str] | None] | None:
        """Per column of the join of inputs with columns ``left`` and ``right``, in order,
        the input column whose values it holds: a suffixed right column its right one, a
        key that Polars coalesces the side it keeps (the left for inner, left, semi and
        anti joins, the right for a right join), None for the right key of a full join (it
        holds the keys of both sides' rows). None when Polars would refuse the names (two
        columns of one name).

        Polars' naming: a semi or anti join gives the left columns; the others give the
        left columns (a right join without its keys), then the right ones (an inner or
        left join without its keys), a right column named as a left one given gets
        ``suffix``.

        Examples
        --------
        >>> JoinSpec.of("k", how="inner").origins(["k", "x"], ["k", "x", "y"])
        {'k': ('left', 'k'), 'x': ('left', 'x'), 'x_right': ('right', 'x'), 'y': ('right', 'y')}
        """
        left, right = list(dict.fromkeys(left)), list(dict.fromkeys(right))
        found: dict[str, tuple[JoinSide, str] | None] = {}
        dropped = self.left_on if self.how == "right" else ()
        found.update((name, ("left", name)) for name in left if name not in dropped)
        if self.how in ("semi", "anti"):
            return found
        given = set(found)
        for name in right:
            if name in self.right_on and self.how in ("inner", "left"):
                continue  # coalesced into the left key
            named = name + self.suffix if name in given else name
            if named in found:
                return None
            key_of_full = self.how == "full" and name in self.right_on
            found[named] = None if key_of_full else ("right", name)
        return found


class JoinBuild(ABC):
    """One side of a broadcast join, whole, prepared once to be probed by the other
    side's chunks: the right side, or for an inner join the left one (`side`).

    Made by `Backend.join_build`; `Backend.join_probe` joins the other side's chunks
    against it and `Backend.join_flush` gives what it still holds at the end of that
    stream. A build keeps state between probes (the CPU batches chunks), so one
    caller uses it at a time, in stream order.

    Attributes
    ----------
    spec
        The join it was built for.
    side
        The side it holds whole.
    rows
        Rows of that side.
    """

    @property
    @abstractmethod
    def spec(self) -> JoinSpec:
        """The join it was built for."""

    @property
    @abstractmethod
    def side(self) -> JoinSide:
        """The side it holds whole (the other streams by)."""

    @property
    @abstractmethod
    def rows(self) -> int:
        """Rows of the side it holds."""
