"""SortOrder: the order a sort, a top-k or a range partitioning puts rows in."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SortOrder"]


@dataclass(frozen=True, slots=True)
class SortOrder:
    """Rows ordered by ``keys``, each ascending or descending, nulls first or last.

    Examples
    --------
    >>> SortOrder.of(["a", "b"], descending=[False, True])
    SortOrder(keys=('a', 'b'), descending=(False, True), nulls_last=(False, False))

    Raises
    ------
    ValueError
        No key, or ``descending`` / ``nulls_last`` without one bool per key.
    """

    keys: tuple[str, ...]
    descending: tuple[bool, ...]
    nulls_last: tuple[bool, ...]

    def __post_init__(self) -> None:
        n = len(self.keys)
        if not n or not all(isinstance(key, str) for key in self.keys):
            raise ValueError(
                f"SortOrder: `keys` must be one or more column names, got {self.keys!r}"
            )
        for name in ("descending", "nulls_last"):
            flags = getattr(self, name)
            if len(flags) != n or not all(isinstance(flag, bool) for flag in flags):
                raise ValueError(
                    f"SortOrder: `{name}` must hold one bool per key {list(self.keys)}, got {flags!r}"
                )

    @classmethod
    def of(
        cls,
        keys: str | list[str] | tuple[str, ...],
        *,
        descending: bool | list[bool] | tuple[bool, ...] = False,
        nulls_last: bool | list[bool] | tuple[bool, ...] = False,
    ) -> SortOrder:
        """The order of ``keys``, a single flag standing for every key."""
        names = (keys,) if isinstance(keys, str) else tuple(keys)

        def flags(value: bool | list[bool] | tuple[bool, ...]) -> tuple[bool, ...]:
            return (value,) * len(names) if isinstance(value, bool) else tuple(value)

        return cls(names, flags(descending), flags(nulls_last))
