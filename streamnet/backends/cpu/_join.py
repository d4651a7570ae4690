"""The CPU backend's joins: Polars' join, partition-wise or against a side broadcast whole."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pyarrow as pa

from streamnet._errors import ColumnNotFoundError, SchemaError
from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends._join_spec import JoinBuild, JoinSide, JoinSpec

__all__ = ["CpuJoins"]


def _check_keys(names: Sequence[str], keys: Sequence[str], side: str, spec: JoinSpec) -> None:
    missing = [k for k in keys if k not in names]
    if missing:
        listed = ", ".join(f"`{k}`" for k in missing)
        raise ColumnNotFoundError(
            f"join: {side} key column {listed} not found; the {side} columns are {list(names)}; "
            f"got left_on {list(spec.left_on)} and right_on {list(spec.right_on)}"
        )


SMALL_JOIN_ROWS = 1 << 14
"""Joins of at most this many rows in all run on Polars' in-memory engine: 3,000 rows
with 10,000 take 0.46 ms there, 1.07 ms on the streaming engine; from 20,000 rows on
the two are close, and from 300,000 the streaming engine is 2-3 times faster."""

SMALL_SIDE_ROWS, LARGE_SIDE_ROWS = 1 << 14, 1 << 18
"""A join of a side of at most `SMALL_SIDE_ROWS` rows with one of at most
`LARGE_SIDE_ROWS` runs on the in-memory engine too. Within these sizes it took 0.3-1.04
of the streaming engine's time in every case measured. Where most rows find no match it
is up to twice as fast or more: 747 rows with 200,000 take 1.1 ms against 2.4 ms on
the streaming engine, 8,000 to 16,000 rows with 200,000 0.4-0.7 of its time. Where
every row matches, 0.5-1.0 (10,664 parts with 172,667 lineitems: 4.8 ms against 7.9
ms). Beyond these sizes the streaming engine can win (25 nations with 319,404 rows,
all matching: 10.1 ms against 8.3 ms)."""


def _joined(left: pl.DataFrame, right: pl.DataFrame, spec: JoinSpec) -> pl.DataFrame:
    """Polars' join of the two frames (keys checked by the caller)."""
    if spec.left_on == spec.right_on:
        query = left.lazy().join(right.lazy(), on=list(spec.left_on), how=spec.how, suffix=spec.suffix)
    else:
        query = left.lazy().join(
            right.lazy(),
            left_on=list(spec.left_on),
            right_on=list(spec.right_on),
            how=spec.how,
            suffix=spec.suffix,
        )
    # Polars' streaming engine joins several times faster than its in-memory one, but
    # for the smallest joins, where its start costs more than the join, and for a small
    # side with a large one, where its start and the morsels it cuts the large side into
    # cost more than one hash table of a few rows.
    # Not on float keys: there Polars' in-memory engine matches a NaN key with a NaN or
    # not depending on the sizes and the other keys of the two frames (a NaN of three left
    # rows matched none of one right row), where the streaming engine, and Polars' own
    # query of the whole frames, always match them.
    smaller, larger = sorted((left.height, right.height))
    small = (
        smaller + larger <= SMALL_JOIN_ROWS
        or (smaller <= SMALL_SIDE_ROWS and larger <= LARGE_SIDE_ROWS)
    ) and not any(left.schema[key].is_float() for key in spec.left_on)
    try:
        return query.collect(engine="in-memory" if small else "streaming")
    except pl.exceptions.DuplicateError as exc:
        keys = set(spec.left_on) if spec.left_on == spec.right_on else set()
        both = sorted((set(left.columns) & set(right.columns)) - keys)
        raise SchemaError(
            f"join: both sides have the columns {both}, and the suffix {spec.suffix!r} does not "
            f"tell them apart ({str(exc).splitlines()[0]}); give another `suffix`, or rename one "
            "side's columns"
        ) from exc
    except pl.exceptions.SchemaError as exc:
        pairs = ", ".join(
            f"`{lk}` ({left.schema[lk]}) with `{rk}` ({right.schema[rk]})"
            for lk, rk in zip(spec.left_on, spec.right_on, strict=True)
        )
        raise SchemaError(
            f"join: the key types cannot be joined (Polars: {str(exc).splitlines()[0]}); "
            f"cast the keys to one type; got {pairs}"
        ) from exc


class _CpuJoinBuild(JoinBuild):
    """One side's frame, and the other side's frames waiting to be joined with it in one
    batch."""

    def __init__(self, built: pl.DataFrame, spec: JoinSpec, side: JoinSide) -> None:
        self._built = built
        self._spec = spec
        self._side: JoinSide = side
        self.batch: list[pl.DataFrame] = []
        self.batched = 0

    @property
    def spec(self) -> JoinSpec:
        return self._spec

    @property
    def side(self) -> JoinSide:
        return self._side

    @property
    def rows(self) -> int:
        return self._built.height

    @property
    def batch_rows(self) -> int:
        """Rows of the other side joined at once: at least twice the built side's."""
        return 2 * self._built.height

    def add(self, frame: pl.DataFrame) -> pl.DataFrame | None:
        self.batch.append(frame)
        self.batched += frame.height
        return self.take() if self.batched >= self.batch_rows else None

    def take(self) -> pl.DataFrame | None:
        """The join of the batched frames; None if there are none."""
        if not self.batch:
            return None
        batch = pl.concat(self.batch, how="vertical") if len(self.batch) > 1 else self.batch[0]
        self.batch = []
        self.batched = 0
        if self._side == "left":
            return _joined(self._built, batch, self._spec)
        return _joined(batch, self._built, self._spec)


class CpuJoins(Backend):
    """Joins with Polars (its streaming engine)."""

    def join_schema(self, left: pa.Schema, right: pa.Schema, spec: JoinSpec) -> pa.Schema:
        return self.join(self.empty(left), self.empty(right), spec).schema

    def join(self, left: TableChunk, right: TableChunk, spec: JoinSpec) -> TableChunk:
        left = self._own(left, "join")
        right = self._own(right, "join")
        _check_keys(left.column_names, spec.left_on, "left", spec)
        _check_keys(right.column_names, spec.right_on, "right", spec)
        return self.from_polars(_joined(left.to_polars(), right.to_polars(), spec))

    def join_fanout(self, right: TableChunk, keys: Sequence[str]) -> int:
        right = self._own(right, "join fanout")
        missing = [k for k in keys if k not in right.column_names]
        if missing:
            listed = ", ".join(f"`{k}`" for k in missing)
            raise ColumnNotFoundError(
                f"join fanout: key column {listed} not found; columns are {right.column_names}; "
                f"got keys {list(keys)}"
            )
        counts = (
            right.to_polars()
            .lazy()
            .select(list(keys))
            .drop_nulls()
            .group_by(list(keys))
            .len()
            .select(pl.col("len").max())
            .collect()
        )
        most = counts.item()
        return 0 if most is None else int(most)

    def join_build(
        self, built: TableChunk, spec: JoinSpec, *, side: JoinSide = "right"
    ) -> JoinBuild:
        built = self._own(built, "join build")
        if side not in ("left", "right"):
            raise ValueError(f"join build: `side` must be left or right, got {side!r}")
        if side == "right" and spec.how not in ("inner", "left", "semi", "anti"):
            raise ValueError(
                f"join build: a {spec.how} join keeps unmatched right rows, which every probe "
                f"would repeat; join partition-wise instead; got how={spec.how!r}"
            )
        if side == "left" and spec.how != "inner":
            raise ValueError(
                f"join build: only an inner join streams its right side against a left side "
                f"built whole (a {spec.how} join keeps or drops a left row by whether any "
                f"right row matches it, which no one right chunk tells); got how={spec.how!r}"
            )
        keys = spec.left_on if side == "left" else spec.right_on
        _check_keys(built.column_names, keys, side, spec)
        return _CpuJoinBuild(built.to_polars(), spec, side)

    def join_probe(self, build: JoinBuild, chunk: TableChunk) -> TableChunk | None:
        chunk = self._own(chunk, "join probe")
        streamed = "right" if build.side == "left" else "left"
        keys = build.spec.right_on if streamed == "right" else build.spec.left_on
        _check_keys(chunk.column_names, keys, streamed, build.spec)
        out = _cpu_build(build).add(chunk.to_polars())
        return None if out is None else self.from_polars(out)

    def join_flush(self, build: JoinBuild) -> TableChunk | None:
        out = _cpu_build(build).take()
        return None if out is None else self.from_polars(out)


def _cpu_build(build: JoinBuild) -> _CpuJoinBuild:
    if not isinstance(build, _CpuJoinBuild):
        raise TypeError(
            f"join probe: the build was not made by the `cpu` backend's `join_build`; got "
            f"{type(build).__module__}.{type(build).__name__}"
        )
    return build
