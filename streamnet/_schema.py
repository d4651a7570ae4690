"""Schemas: the canonical Arrow types the library emits, and one schema per stream.

Canonical types. The library computes with Polars, so a table that went through
any transform comes out as Polars exports it (``DataFrame.to_arrow()`` at its
oldest compatibility level): ``large_string``, ``large_binary``, ``large_list``,
``dictionary<uint32, large_string>`` for categoricals, every field nullable.
Every chunk the library emits uses these types: a chunk made from an Arrow table
is cast to them when it is made (no copy when it already has them), so a source
stream and a transformed stream of one table have equal schemas. String views
would spare Polars one copy on export, but pyarrow 16 (the oldest supported)
can neither write them to Parquet nor cast strings to them, and not every Arrow
consumer reads them; the large flavours are Polars' own default export.

One schema per stream. Every chunk of a stream has the schema of its first
chunk, as in Polars. A TableChunk entering a channel is checked against the
first chunk that entered it (a comparison of schemas, never of data, and a chunk
held by Polars is not converted to Arrow for it); one that differs raises
`SchemaError` naming the actor, the channel, the columns and both types.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from streamnet._actor import current_actor_name
from streamnet._errors import SchemaError

if TYPE_CHECKING:
    import polars as pl

    from streamnet._table_chunk import TableChunk

__all__ = [
    "StreamSchema",
    "arrow_schema_of",
    "canonical_schema",
    "canonical_table",
    "check_stream",
    "describe_schema",
    "polars_to_arrow",
    "schema_differences",
]


def polars_to_arrow(frame: pl.DataFrame) -> pa.Table:
    """``frame`` as Arrow, with the canonical types (Polars' own export)."""
    import polars as pl

    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


@functools.lru_cache(maxsize=512)
def canonical_schema(schema: pa.Schema) -> pa.Schema:
    """The canonical form of ``schema``: what Polars exports for a table of that schema.

    A schema Polars cannot hold (a union, an extension type) is its own canonical form.
    """
    import polars as pl

    try:
        frame = pl.from_arrow(schema.empty_table())
    except Exception:  # Polars cannot hold these types: the library never transforms them
        return schema
    assert isinstance(frame, pl.DataFrame)
    return polars_to_arrow(frame).schema


# The last schemas seen and their canonical forms: comparing schemas is much cheaper than
# hashing one for the cache, and a stream's chunks share a handful of schemas. Replaced
# whole, never mutated, so kernel threads may read it while another thread updates it.
_recent: tuple[tuple[pa.Schema, pa.Schema], ...] = ()


def _canonical_of(schema: pa.Schema) -> pa.Schema:
    global _recent
    for seen, target in _recent:
        if schema.equals(seen, check_metadata=False):
            return target
    target = canonical_schema(schema)
    _recent = ((schema, target), *_recent[:7])
    return target


def canonical_table(table: pa.Table) -> pa.Table:
    """``table`` with the canonical types (itself when it has them already)."""
    target = _canonical_of(table.schema)
    if table.schema.equals(target, check_metadata=False):
        return table
    try:
        return table.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        import polars as pl

        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return polars_to_arrow(frame)


@functools.lru_cache(maxsize=512)
def _arrow_schema_of(items: tuple[tuple[str, Any], ...]) -> pa.Schema:
    import polars as pl

    return polars_to_arrow(pl.DataFrame(schema=list(items))).schema


def arrow_schema_of(schema: pl.Schema) -> pa.Schema:
    """The canonical Arrow schema of a Polars schema, without any data."""
    items = tuple(schema.items())
    try:
        return _arrow_schema_of(items)
    except TypeError:  # a dtype that cannot be a cache key
        return _arrow_schema_of.__wrapped__(items)


# ----------------------------------------------------------------------- describing
def _type_names(schema: pa.Schema) -> dict[str, str]:
    """Column name -> type as a Polars user reads it (``Int64``, ``String``), else Arrow's."""
    names = {field.name: str(field.type) for field in schema}
    try:
        import polars as pl

        frame = pl.from_arrow(schema.empty_table())
        assert isinstance(frame, pl.DataFrame)
        names.update({name: str(dtype) for name, dtype in frame.schema.items()})
    except Exception:  # types Polars cannot hold keep their Arrow names
        pass
    return names


def describe_schema(schema: pa.Schema) -> str:
    """``{name: type, ...}`` with Polars' type names, for error messages."""
    names = _type_names(schema)
    return "{" + ", ".join(f"{field.name}: {names[field.name]}" for field in schema) + "}"


def schema_differences(expected: pa.Schema, got: pa.Schema, *, of: str = "the stream") -> list[str]:
    """How ``got`` differs from ``expected`` (the schema ``of`` something), one phrase per column.

    Empty when they are equal. Types are compared without metadata; column order
    counts, as in Polars.
    """
    want, have = _type_names(expected), _type_names(got)
    out: list[str] = []
    for field in got:
        if field.name not in want:
            out.append(f"column `{field.name}` ({have[field.name]}) is not in {of}")
        elif not field.type.equals(expected.field(field.name).type):
            out.append(
                f"column `{field.name}` has type {have[field.name]} where {of} has "
                f"{want[field.name]}"
            )
    out.extend(
        f"column `{field.name}` ({want[field.name]}) is missing"
        for field in expected
        if field.name not in have
    )
    if not out and expected.names != got.names:
        out.append(f"columns come in the order {got.names} where {of} has {expected.names}")
    if not out and not got.equals(expected, check_metadata=False):
        out.append(f"fields differ from {of} in nullability")
    return out


# ----------------------------------------------------------------------- one per stream
@dataclass(slots=True)
class StreamSchema:
    """The schema of a stream, set by its first chunk: what a channel remembers."""

    arrow: pa.Schema
    sequence_number: int
    actor: str | None
    polars: tuple[list[str], list[pl.DataType]] | None = None
    """Names and Polars types of a Polars-held chunk that matched: a cheaper comparison."""


def check_stream(
    state: StreamSchema | None, chunk: TableChunk, channel: str, sequence_number: int
) -> StreamSchema:
    """The stream's schema once ``chunk`` entered the channel ``channel``.

    Raises
    ------
    SchemaError
        ``chunk`` does not have the schema of the stream's first chunk.
    """
    polars_schema = chunk._names_and_dtypes()
    if state is None:
        return StreamSchema(chunk.schema, sequence_number, current_actor_name(), polars_schema)
    if polars_schema is not None and polars_schema == state.polars:
        return state
    schema = chunk.schema
    if schema is state.arrow or schema.equals(state.arrow, check_metadata=False):
        if polars_schema is not None:
            state.polars = polars_schema
        return state
    actor = current_actor_name()
    where = f"actor `{actor}`, channel `{channel}`" if actor else f"channel `{channel}`"
    origin = str(state.sequence_number)
    if state.actor is not None and state.actor != actor:
        origin += f", sent by `{state.actor}`"
    problems = "; ".join(schema_differences(state.arrow, schema))
    raise SchemaError(
        f"{where}: chunk {sequence_number} does not match the schema the stream's first chunk "
        f"({origin}) set: {problems}; every chunk of a stream must share one schema (to combine "
        "streams of different types, cast them explicitly first, with `actors.cast`); "
        f"got {describe_schema(schema)}"
    )
