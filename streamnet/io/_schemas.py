"""Schema arguments (`IntoSchema`) as readers and casts take them, read one way each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from channels.lowlevel import import_lazily
from streamnet._errors import SchemaError
from streamnet._schema import empty_table
from streamnet._table_chunk import TableChunk

if TYPE_CHECKING:
    import pyarrow as pa

    from streamnet._typing import IntoSchema
else:  # imported on first use: `import streamnet` stays light
    pa = import_lazily("pyarrow")

__all__ = ["arrow_schema", "polars_types"]


def arrow_schema(schema: IntoSchema, *, where: str) -> pa.Schema:
    """``schema`` as an Arrow schema: an Arrow schema as it is, a mapping of column
    names to Arrow types made into one; Polars types (a Polars schema, or in a mapping)
    become the Arrow types a chunk of them has.

    Raises
    ------
    TypeError
        ``schema`` is neither (the message starts with ``where``).
    """
    if isinstance(schema, pa.Schema):
        return schema
    if isinstance(schema, Mapping):
        if all(isinstance(tp, pa.DataType) for tp in schema.values()):
            return pa.schema([(name, tp) for name, tp in schema.items()])
        types = polars_types(schema, where=where)
        return TableChunk.from_polars(pl.DataFrame(schema=types)).schema
    raise TypeError(f"{where}: `schema` must be a pyarrow.Schema or a mapping, got {schema!r}")


def polars_types(schema: IntoSchema, *, where: str) -> dict[str, pl.DataType]:
    """``schema`` as column name -> Polars type (Arrow types are read as Polars reads them).

    Raises
    ------
    TypeError
        ``schema`` is no mapping or schema, a name is no str, or a type is neither a
        Polars nor an Arrow type (messages start with ``where``).
    SchemaError
        An Arrow type has no Polars type (the message names the column).
    """
    if isinstance(schema, pa.Schema):
        items: list[tuple[str, Any]] = [(field.name, field.type) for field in schema]
    elif isinstance(schema, Mapping):
        items = list(schema.items())
    else:
        raise TypeError(
            f"{where}: `schema` must be a mapping of column names to types, or a Polars or "
            f"Arrow schema, got {type(schema).__name__}"
        )
    types: dict[str, pl.DataType] = {}
    for name, dtype in items:
        if not isinstance(name, str):
            raise TypeError(f"{where}: column names must be str, got {name!r}")
        if isinstance(dtype, pa.DataType):
            empty = TableChunk.from_arrow(empty_table(pa.schema([(name, dtype)])))
            try:
                frame = empty.to_polars()
            except SchemaError as exc:
                raise SchemaError(
                    f"{where}: column `{name}` cannot be cast to {dtype}: casts are Polars' "
                    f"and Polars has no such type; give the Polars type it should have "
                    f'(`pl.Date`, `pl.Datetime("ms")`...); got {dtype}'
                ) from exc
            types[name] = frame.schema[name]
        elif isinstance(dtype, pl.DataType) or (
            isinstance(dtype, type) and issubclass(dtype, pl.DataType)
        ):
            types[name] = dtype if isinstance(dtype, pl.DataType) else dtype()
        else:
            raise TypeError(
                f"{where}: the type of column `{name}` must be a Polars or Arrow type, "
                f"got {dtype!r}"
            )
    return types
