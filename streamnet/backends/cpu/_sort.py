"""The CPU backend's sorting and range partitioning, with Polars' sort."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from streamnet._errors import ColumnNotFoundError
from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends._sort_order import SortOrder

__all__ = ["CpuSorting"]


def _sorted(frame: pl.DataFrame, order: SortOrder) -> pl.DataFrame:
    return frame.sort(
        list(order.keys),
        descending=list(order.descending),
        nulls_last=list(order.nulls_last),
        maintain_order=True,
    )


def _boundaries(samples: pl.DataFrame, order: SortOrder, parts: int) -> pl.DataFrame:
    """``parts - 1`` rows that cut the sorted samples into ``parts`` equal ranges."""
    if samples.height == 0 or parts == 1:
        return samples.head(0)
    ordered = _sorted(samples, order)
    picks = [min(ordered.height - 1, (i * ordered.height) // parts) for i in range(1, parts)]
    return ordered[picks]


def _range_partition(
    frame: pl.DataFrame, bounds: pl.DataFrame, order: SortOrder
) -> dict[int, pl.DataFrame]:
    """Rows by range: partition i holds the rows ordered after i boundaries.

    Sorting the rows together with the boundary rows (boundaries first among
    equals) gives each row the number of boundaries before it, under exactly the
    order the sort uses: descending keys, nulls first or last, any key types.
    """
    if bounds.height == 0:
        return {0: frame} if frame.height else {}
    keys = list(order.keys)
    marked = pl.concat(
        [
            bounds.select(keys).with_columns(
                pl.lit(1, pl.Int8).alias("__bound"), pl.lit(None, pl.UInt32).alias("__row")
            ),
            frame.select(keys).with_columns(
                pl.lit(0, pl.Int8).alias("__bound"),
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("__row"),
            ),
        ],
        how="vertical",
    )
    ordered = marked.sort(
        [*keys, "__bound"],
        descending=[*order.descending, True],
        nulls_last=[*order.nulls_last, False],
        maintain_order=True,
    )
    placed = ordered.with_columns(pl.col("__bound").cum_sum().alias("__partition")).filter(
        pl.col("__bound") == 0
    )
    ids = placed.sort("__row").get_column("__partition")
    pieces = frame.with_columns(ids.alias("__partition")).partition_by(
        "__partition", as_dict=True, include_key=False
    )
    return {int(key[0]): piece for key, piece in pieces.items()}


class CpuSorting(Backend):
    """Sort, top-k, sampling and range partitioning with Polars."""

    def _checked(self, chunk: TableChunk, columns: Sequence[str], operation: str) -> TableChunk:
        chunk = self._own(chunk, operation)
        names = chunk.column_names
        missing = [c for c in columns if c not in names]
        if missing:
            listed = ", ".join(f"`{c}`" for c in missing)
            raise ColumnNotFoundError(
                f"{operation}: column {listed} not found; columns are {names}; got {list(columns)}"
            )
        return chunk

    def sort(self, chunk: TableChunk, order: SortOrder) -> TableChunk:
        chunk = self._checked(chunk, order.keys, "sort")
        return self.from_polars(_sorted(chunk.to_polars(), order))

    def top_k(self, chunk: TableChunk, order: SortOrder, k: int) -> TableChunk:
        chunk = self._checked(chunk, order.keys, "top_k")
        if type(k) is not int or k < 0:
            raise ValueError(f"top_k: `k` must be an int >= 0, got {k!r}")
        return self.from_polars(_sorted(chunk.to_polars(), order).head(k))

    def sample(self, chunk: TableChunk, columns: Sequence[str], n: int, *, seed: int) -> TableChunk:
        chunk = self._checked(chunk, columns, "sample")
        if type(n) is not int or n < 0:
            raise ValueError(f"sample: `n` must be an int >= 0, got {n!r}")
        frame = chunk.to_polars().select(columns)
        take = min(frame.height, n)
        return self.from_polars(frame.sample(take, seed=seed) if take else frame.head(0))

    def range_boundaries(self, samples: TableChunk, order: SortOrder, parts: int) -> TableChunk:
        samples = self._checked(samples, order.keys, "range_boundaries")
        if type(parts) is not int or parts < 1:
            raise ValueError(f"range_boundaries: `parts` must be an int >= 1, got {parts!r}")
        frame = samples.to_polars().select(order.keys)
        return self.from_polars(_boundaries(frame, order, parts))

    def range_partition(
        self, chunk: TableChunk, boundaries: TableChunk, order: SortOrder
    ) -> dict[int, TableChunk]:
        chunk = self._checked(chunk, order.keys, "range_partition")
        boundaries = self._checked(boundaries, order.keys, "range_partition")
        pieces = _range_partition(chunk.to_polars(), boundaries.to_polars(), order)
        return {p: self.from_polars(piece) for p, piece in pieces.items()}
