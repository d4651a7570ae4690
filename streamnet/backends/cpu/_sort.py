"""The CPU backend's sorting, merging and range partitioning, with Polars' sort."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import polars as pl
import pyarrow as pa

from streamnet._errors import ColumnNotFoundError
from streamnet._schema import unused_name
from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends._sort_order import SortOrder
from streamnet.backends.cpu._table import check_one_schema

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
    taken = set(frame.columns)  # scratch columns named apart from the frame's own
    bound, row, part = (unused_name(name, taken) for name in ("__bound", "__row", "__partition"))
    marked = pl.concat(
        [
            bounds.select(keys).with_columns(
                pl.lit(1, pl.Int8).alias(bound), pl.lit(None, pl.UInt32).alias(row)
            ),
            frame.select(keys).with_columns(
                pl.lit(0, pl.Int8).alias(bound),
                pl.int_range(pl.len(), dtype=pl.UInt32).alias(row),
            ),
        ],
        how="vertical",
    )
    ordered = marked.sort(
        [*keys, bound],
        descending=[*order.descending, True],
        nulls_last=[*order.nulls_last, False],
        maintain_order=True,
    )
    placed = ordered.with_columns(pl.col(bound).cum_sum().alias(part)).filter(pl.col(bound) == 0)
    ids = placed.sort(row).get_column(part)
    pieces = frame.with_columns(ids.alias(part)).partition_by(part, as_dict=True, include_key=False)
    return {int(key[0]): piece for key, piece in pieces.items()}


class _Merge:
    """The k-way merge of sorted runs, a slice of each at a time.

    The rows read and not yet sent out are kept sorted. A run's slice ends at
    its *frontier* (its last row): rows of that run after it may come before
    later rows of other runs, so only the rows up to the earliest frontier of a
    run not read to its end can go out. One sort of the kept rows with each
    frontier marked (a stable sort of the rows, then the marks, puts each mark
    after the rows equal to it) finds them: they are the rows before the first
    mark. The run of that frontier then has no row kept, and
    its next slice is read; so is the next slice of every run with fewer than
    half a slice of rows kept, so that every step sends out many rows while
    each run keeps at most one and a half slices in memory.
    """

    def __init__(
        self, backend: CpuSorting, runs: list[TableChunk], order: SortOrder, slice_rows: int
    ) -> None:
        self.order = order
        self.keys = list(order.keys)
        self.slice_rows = slice_rows
        taken = set(runs[0].schema.names)
        self.run_col = unused_name("__run", taken)
        self.mark_col = unused_name("__mark", taken)
        self.readers = [backend.iter_slices(run, slice_rows) for run in runs]
        self.unread = [run.num_rows for run in runs]
        self.kept = [0] * len(runs)  # rows of each run read and not sent out
        self.frontiers: dict[int, pl.DataFrame] = {}  # of the runs not read to their end
        self.carried: pl.DataFrame | None = None

    @property
    def done(self) -> bool:
        return self.carried is None and not any(self.unread)

    def _read(self) -> pl.DataFrame | None:
        """The next slice of every run that has few rows kept and more to read, with the
        run of each row in `run_col` (None if there is none to read)."""
        slices: list[pl.DataFrame] = []
        ids: list[int] = []
        for i, reader in enumerate(self.readers):
            if not self.unread[i] or (self.kept[i] and 2 * self.kept[i] >= self.slice_rows):
                continue
            piece = next(reader).to_polars()
            self.unread[i] -= piece.height
            self.kept[i] += piece.height
            if self.unread[i]:
                self.frontiers[i] = piece.slice(piece.height - 1, 1)
            else:
                self.frontiers.pop(i, None)
                _close(reader)
            slices.append(piece)
            ids.append(i)
        if not slices:
            return None
        new = pl.concat(slices, how="vertical", rechunk=False) if len(slices) > 1 else slices[0]
        runs = np.repeat(np.array(ids, np.uint32), [piece.height for piece in slices])
        return new.hstack([pl.Series(self.run_col, runs)])

    def step(self) -> pl.DataFrame:
        """The next rows in order (at least the rows of one slice); ``done`` once all went."""
        new = self._read()
        parts = [part for part in (self.carried, new) if part is not None]
        rows = pl.concat(parts, how="vertical", rechunk=False) if len(parts) > 1 else parts[0]
        order = self.order
        if not self.frontiers:  # every run read to its end: all the rest goes out
            self.carried = None
            out = rows.sort(
                self.keys, descending=list(order.descending), nulls_last=list(order.nulls_last)
            )
            out.drop_in_place(self.run_col)  # (`drop` would run a query)
            return out
        mark = self.mark_col
        marks = pl.concat(list(self.frontiers.values()), how="vertical")
        marks = marks.hstack(
            [
                pl.Series(self.run_col, np.zeros(marks.height, np.uint32)),
                pl.Series(mark, np.ones(marks.height, np.int8)),
            ]
        )
        rows = rows.hstack([pl.Series(mark, np.zeros(rows.height, np.int8))])
        # a stable sort keeps each mark after the rows equal to it (cheaper than a sort key)
        ordered = pl.concat([rows, marks], how="vertical", rechunk=False).sort(
            self.keys,
            descending=list(order.descending),
            nulls_last=list(order.nulls_last),
            maintain_order=True,
        )
        # the first mark (not `arg_max`: of a column flagged sorted, Polars gives the last)
        cut = int((ordered.get_column(mark) == 1).arg_true()[0])
        # filtered, not sliced: both are copies, so that neither keeps the whole sort alive
        # (a chunk sent out would hold every row of this step in memory)
        before = pl.int_range(pl.len()) < cut
        carried = ordered.filter(~before & (pl.col(mark) == 0))
        carried.drop_in_place(mark)
        self.carried = carried if carried.height else None
        counts = np.bincount(carried.get_column(self.run_col).to_numpy(), minlength=len(self.kept))
        self.kept = [int(count) for count in counts]
        out = ordered.filter(before)
        out.drop_in_place(mark)
        out.drop_in_place(self.run_col)
        return out

    def close(self) -> None:
        for reader in self.readers:
            _close(reader)


def _close(iterator: Iterator[TableChunk]) -> None:
    """Close a generator early (its file closes with it)."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


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

    def merge_sorted(
        self,
        runs: Sequence[TableChunk],
        order: SortOrder,
        *,
        rows: int,
        slice_rows: int | None = None,
    ) -> Iterator[TableChunk]:
        runs = [self._checked(run, order.keys, "merge_sorted") for run in runs]
        for name, value in (("rows", rows), ("slice_rows", slice_rows)):
            if (value is not None or name == "rows") and (type(value) is not int or value < 1):
                raise ValueError(f"merge_sorted: `{name}` must be an int >= 1, got {value!r}")
        check_one_schema(runs, "merge_sorted", "run")
        return self._merged([run for run in runs if run.num_rows], order, rows, slice_rows or rows)

    def _merged(
        self, runs: list[TableChunk], order: SortOrder, rows: int, slice_rows: int
    ) -> Iterator[TableChunk]:
        if len(runs) <= 1:  # nothing to merge
            for run in runs:
                yield from self.iter_slices(run, rows)
            return
        schema = runs[0].schema
        merge = _Merge(self, runs, order, slice_rows)
        waiting: list[pl.DataFrame] = []  # rows merged, not yet in a chunk
        count = 0
        try:
            while not merge.done:
                out = merge.step()
                if not out.height:
                    continue
                waiting.append(out)
                count += out.height
                while count >= rows:
                    whole = pl.concat(waiting, rechunk=False) if len(waiting) > 1 else waiting[0]
                    yield self._merged_chunk(whole.head(rows), schema)
                    rest = whole.slice(rows)
                    waiting, count = ([rest] if rest.height else []), count - rows
            if count:
                yield self._merged_chunk(pl.concat(waiting, rechunk=False), schema)
        finally:
            merge.close()

    def _merged_chunk(self, frame: pl.DataFrame, schema: pa.Schema) -> TableChunk:
        return self.from_polars(frame, schema=schema)

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
