"""The CPU backend's distinct: Polars' ``unique``, in stream order where a row to keep is chosen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from streamnet._errors import ColumnNotFoundError
from streamnet._schema import unused_name
from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend

__all__ = ["CpuDistinct"]


class CpuDistinct(Backend):
    """Duplicate rows dropped with Polars."""

    def distinct(
        self,
        chunk: TableChunk,
        subset: Sequence[str] | None,
        keep: Literal["any", "first", "last"],
        *,
        order: Sequence[str] = (),
    ) -> TableChunk:
        chunk = self._own(chunk, "distinct")
        if keep not in ("any", "first", "last"):
            raise ValueError(f"distinct: `keep` must be 'any', 'first' or 'last', got {keep!r}")
        order = list(order)
        names = chunk.column_names
        keys = [subset] if isinstance(subset, str) else list(subset or ())
        missing = [c for c in [*keys, *order] if c not in names]
        if missing:
            listed = ", ".join(f"`{c}`" for c in missing)
            raise ColumnNotFoundError(
                f"distinct: column {listed} not found; columns are {names}; "
                f"got subset {keys or None} and order {order}"
            )
        frame = chunk.to_polars()
        keys = keys or [c for c in names if c not in order]
        if keep == "any":
            return self.from_polars(frame.unique(subset=keys, keep="any"))
        if order:  # stream order first, then the row order within the chunk
            row = unused_name("__row", names)
            frame = frame.with_row_index(row).sort([*order, row], maintain_order=True).drop(row)
        return self.from_polars(frame.unique(subset=keys, keep=keep, maintain_order=True))
