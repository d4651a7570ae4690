"""CSV: files streamed in blocks, with an explicit or inferred schema."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from actors._columns import describe_schema
from actors._parquet import PathLike, expand_paths
from streamnet import (
    Channel,
    ChannelBroken,
    Context,
    FileReadError,
    Message,
    SchemaError,
    TableChunk,
    define_actor,
)

__all__ = ["read_csv"]


def _open(
    path: os.PathLike[str],
    schema: pa.Schema | None,
    block_size: int,
    delimiter: str,
    has_header: bool,
) -> Any:
    read = pacsv.ReadOptions(
        block_size=block_size,
        autogenerate_column_names=not has_header and schema is None,
        column_names=schema.names if (schema is not None and not has_header) else None,
    )
    # An empty line is a row of nulls and "" an empty string, as Polars reads them.
    parse = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False)
    convert = pacsv.ConvertOptions(
        column_types=dict(zip(schema.names, schema.types, strict=True)) if schema else None,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    try:
        return pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise FileReadError(f"cannot read `{path}` as CSV: {exc}") from exc


def _next_batch(reader: Any, path: os.PathLike[str]) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise FileReadError(f"cannot read `{path}` as CSV: {exc}") from exc


def _as_schema(schema: pa.Schema | Mapping[str, Any] | None) -> pa.Schema | None:
    if schema is None or isinstance(schema, pa.Schema):
        return schema
    if isinstance(schema, Mapping):
        return pa.schema([(name, tp) for name, tp in schema.items()])
    raise TypeError(f"read_csv: `schema` must be a pyarrow.Schema or a mapping, got {schema!r}")


@define_actor
async def read_csv(
    ctx: Context,
    ch_out: Channel[TableChunk],
    source: PathLike | Sequence[PathLike],
    *,
    schema: pa.Schema | Mapping[str, Any] | None = None,
    delimiter: str = ",",
    has_header: bool = True,
    block_size: int = 1 << 22,
) -> None:
    """Stream CSV files in blocks of about ``block_size`` bytes, in file and row order.

    Parameters
    ----------
    source
        A file, a directory (every ``*.csv``), a glob, or a list of these.
    schema
        Column names and Arrow types (``pa.schema`` or ``{"name": pa.int64()}``);
        when None, the types are inferred from the first block of the first file
        and every other file must agree.
    has_header
        Whether the first line names the columns (without it, names come from
        ``schema`` or are generated as ``f0, f1, ...``).

    Raises
    ------
    FileNotFoundError, FileReadError, SchemaError
        Naming the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import pyarrow as pa
    >>> from streamnet import Context, Network
    >>> from actors import collect, read_csv
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("a,b\\n1,x\\n2,y\\n")
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> sink = collect(ctx, ch)
    >>> Network(ctx, [read_csv(ctx, ch, path, schema={"a": pa.int32(), "b": pa.string()}), sink]).run()
    >>> sink.result().to_pydict()
    {'a': [1, 2], 'b': ['x', 'y']}
    """
    wanted = _as_schema(schema)
    if type(block_size) is not int or block_size < 1:
        raise ValueError(f"read_csv: `block_size` must be an int >= 1, got {block_size!r}")
    paths = await ctx.to_thread(expand_paths, source, ".csv")
    seen: pa.Schema | None = None
    first = paths[0]
    ctx.progress.expect(None)  # CSV cannot tell its row count without reading it
    seq = 0
    try:
        for path in paths:
            reader = await ctx.to_thread(_open, path, wanted, block_size, delimiter, has_header)
            file_schema = reader.schema
            if wanted is not None and file_schema.names != wanted.names:
                raise SchemaError(
                    f"`{path}` has columns {file_schema.names}, but the schema names {wanted.names}"
                )
            if seen is None:
                seen = file_schema
            elif not file_schema.equals(seen):
                raise SchemaError(
                    f"`{path}` does not have the schema of `{first}`: "
                    f"{describe_schema(file_schema)} versus {describe_schema(seen)}; "
                    "pass `schema=` to read both alike"
                )
            sent_from_file = False
            while (batch := await ctx.to_thread(_next_batch, reader, path)) is not None:
                if batch.num_rows == 0 and sent_from_file:
                    continue
                await ch_out.send(ctx, Message(seq, TableChunk.from_arrow(batch)))
                ctx.progress.advance(batch.num_rows)
                seq += 1
                sent_from_file = True
        if seq == 0 and seen is not None:
            await ch_out.send(ctx, Message(0, TableChunk.from_arrow(seen.empty_table())))
        await ch_out.drain(ctx)
    except ChannelBroken:
        pass  # downstream needs no more
