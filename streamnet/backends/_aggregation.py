"""AggregationKernel: a backend's group-by (or global aggregation) split into partial, merge, finish."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

from streamnet._table_chunk import TableChunk
from streamnet.plans._aggregation import Agg

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["AggregationKernel"]


class AggregationKernel(ABC):
    """Aggregations ``aggs`` by ``keys`` of a stream of one schema, chunk by chunk.

    Made by `Backend.aggregation`. Each chunk becomes *partials* (`partial`),
    partials of any chunks merge into partials again (`merge`, associative: in
    any grouping, any number of times) and `finish` gives the result, equal to
    Polars' ``group_by(keys).agg(...)`` of the whole stream (with ``keys == ()``,
    its ``select(...)``: one row). Partials of one key can be merged on one rank
    only if every partial of that key goes there: a keyed group-by partitions
    them by ``keys``.

    Where a partial cannot be smaller than the rows (`decomposable` is False:
    ``n_unique`` on the CPU), the partials are the rows themselves, only the
    columns needed; `merge` concatenates them and `finish` aggregates them with
    `aggregate_rows`.

    Methods are thread-safe and block: run them in the Context's thread pool.
    Each raises `TypeError` for a chunk of another backend.

    Attributes
    ----------
    keys
        The key columns; ``()`` for the global aggregation.
    aggs
        The aggregations, in output order.
    ordered
        Whether the chunks given to `partial` and `aggregate_rows` carry the
        stream-order columns ``__rank`` and ``__seq`` (Int64): ``first`` and
        ``last`` follow them (rank, then sequence number, then row).
    output_schema
        The result's schema: the keys, then one column per aggregation, of Polars'
        result types for the input schema.
    partial_schema
        The schema of every chunk `partial` and `merge` return: the same for the
        same keys, aggregations and input schema, on every rank.
    decomposable
        Whether partials are smaller than the rows (else they are the rows).
    """

    keys: tuple[str, ...]
    aggs: tuple[Agg, ...]
    ordered: bool
    output_schema: pa.Schema
    partial_schema: pa.Schema
    decomposable: bool

    @abstractmethod
    def partial(self, chunk: TableChunk) -> TableChunk:
        """The partials of one chunk of the input (by key, or one row for ``keys == ()``).

        The chunk has the input schema's columns (others are ignored), and with
        `ordered` the stream-order columns. An empty chunk gives no partial rows.

        Raises
        ------
        ColumnNotFoundError
            A key or aggregated column (or, with `ordered`, an order column) is
            missing from the chunk.
        """

    @abstractmethod
    def merge(self, chunks: Sequence[TableChunk]) -> TableChunk:
        """Partials of partials (of `partial_schema`): one row per key among them.

        Associative: ``merge([merge([a, b]), c])`` finishes as ``merge([a, b, c])``.

        Raises
        ------
        ValueError
            ``chunks`` is empty.
        SchemaError
            A chunk is not of `partial_schema`.
        """

    @abstractmethod
    def finish(self, partials: TableChunk) -> TableChunk:
        """The result of ``partials``, merged or not (they are merged where needed),
        with `output_schema`; one row per key, and with ``keys == ()`` exactly one
        row (Polars' answer for an empty frame if ``partials`` has no rows).

        Raises
        ------
        SchemaError
            ``partials`` is not of `partial_schema`.
        """

    @abstractmethod
    def finish_pieces(self, pieces: Sequence[TableChunk]) -> TableChunk:
        """The result of several chunks of partials together, as `finish` of their
        concatenation gives it (rows in any order). A backend may finish apart the rows
        whose keys lie in no other piece's range of keys (keys that come clustered, as
        in a file sorted by them), which spares merging them all at once.

        Raises
        ------
        ValueError
            ``pieces`` is empty.
        SchemaError
            A piece is not of `partial_schema`.
        """

    @abstractmethod
    def aggregate_rows(self, chunk: TableChunk) -> TableChunk:
        """The result of the rows of ``chunk`` aggregated at once, with `output_schema`.

        Raises
        ------
        ColumnNotFoundError
            A key or aggregated column (or, with `ordered`, an order column) is
            missing from the chunk.
        """
