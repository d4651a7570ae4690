"""CSV: files streamed in blocks, with an explicit or inferred schema."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from actors._columns import describe_schema
from actors._parquet import PathLike, expand_paths
from actors._split import rank_share
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


@dataclass(frozen=True, slots=True)
class _Part:
    """What one rank reads of file number ``file``: all of it, or the rows that start in
    the bytes ``span = (start, end)``, end excluded (always after the header line)."""

    file: int
    path: Path
    span: tuple[int, int] | None = None

    def describe(self) -> str:
        if self.span is None:
            return f"`{self.path}`"
        return f"`{self.path}` (the rows in bytes {self.span[0]} to {self.span[1]})"


def _row_start(path: Path, pos: int) -> int:
    """The first byte at or after ``pos`` that starts a line (0 or just after a line break);
    the file size when no line starts there."""
    if pos <= 0:
        return 0
    with open(path, "rb") as file:
        offset = pos - 1
        file.seek(offset)
        while block := file.read(1 << 16):
            found = block.find(b"\n")
            if found >= 0:
                return offset + found + 1
            offset += len(block)
    return offset


def _share(paths: list[Path], rank: int, nranks: int, has_header: bool) -> list[_Part]:
    """What ``rank`` reads: a run of whole files balanced by size when there are at least as
    many files as ranks; otherwise the rows of all files cut at line starts into ``nranks``
    byte ranges of about the same size (a row goes to the range holding its first byte)."""
    try:
        sizes = [os.path.getsize(path) for path in paths]
        if len(paths) >= nranks:
            share = rank_share(sizes, rank, nranks)
            return [_Part(i, paths[i]) for i in share]
        starts = [_row_start(path, 1) if has_header else 0 for path in paths]
    except OSError as exc:
        raise FileReadError(f"cannot read CSV file: {exc}") from exc
    lengths = [size - start for size, start in zip(sizes, starts, strict=True)]
    befores = [sum(lengths[:i]) for i in range(len(paths))]
    total = sum(lengths)

    def line_start(at: int) -> int:
        """The offset, in the rows of all files one after the other, of the first row from ``at``."""
        for path, start, length, before in zip(paths, starts, lengths, befores, strict=True):
            if at < before + length:
                return before + _row_start(path, start + at - before) - start
        return total

    lo = line_start(total * rank // nranks) if rank > 0 else 0
    hi = line_start(total * (rank + 1) // nranks) if rank < nranks - 1 else total
    parts = []
    for i, (path, start, length, before) in enumerate(
        zip(paths, starts, lengths, befores, strict=True)
    ):
        if length == 0:  # no rows: read whole (for its schema) by the rank where it lies
            if lo <= before < hi or (before == total and rank == nranks - 1):
                parts.append(_Part(i, path))
            continue
        first, last = max(lo, before), min(hi, before + length)
        if first >= last:
            continue
        if first == before and last == before + length:
            parts.append(_Part(i, path))
        else:
            parts.append(_Part(i, path, (start + first - before, start + last - before)))
    return parts


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
    try:
        return pacsv.open_csv(
            path,
            read_options=read,
            parse_options=_parse(delimiter),
            convert_options=_convert(schema),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise FileReadError(f"cannot read `{path}` as CSV: {exc}") from exc


def _open_part(part: _Part, schema: pa.Schema, block_size: int, delimiter: str) -> Any:
    """A reader of the rows in ``part``'s byte range, typed with ``schema``: the types a reader
    of the whole file inferred, so each range reads as it would in the whole file."""
    assert part.span is not None
    start, end = part.span
    read = pacsv.ReadOptions(block_size=block_size, column_names=schema.names)
    try:
        with pa.memory_map(str(part.path)) as mapped:
            mapped.seek(start)
            rows = mapped.read_buffer(end - start)  # no copy: the mapping stays
        return pacsv.open_csv(
            pa.BufferReader(rows),
            read_options=read,
            parse_options=_parse(delimiter),
            convert_options=_convert(schema),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, OSError) as exc:
        raise FileReadError(_part_error(part, exc)) from exc


def _part_error(part: _Part, exc: Exception) -> str:
    message = f"cannot read {part.describe()} as CSV: {exc}"
    if part.span is not None:
        message += (
            "; a file split between ranks must not have line breaks inside values "
            "(pass `split=False`, or write more files than ranks)"
        )
    return message


def _parse(delimiter: str) -> pacsv.ParseOptions:
    # An empty line is a row of nulls and "" an empty string, as Polars reads them.
    return pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False)


def _convert(schema: pa.Schema | None) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types=dict(zip(schema.names, schema.types, strict=True)) if schema else None,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )


def _next_batch(reader: Any, part: _Part) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise FileReadError(_part_error(part, exc)) from exc


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
    split: bool = True,
) -> None:
    """Stream CSV files in blocks of about ``block_size`` bytes, in file and row order.

    On several ranks, each rank reads its own share of the rows (see ``split``);
    together the ranks read every row exactly once.

    Parameters
    ----------
    source
        A file, a directory (every ``*.csv`` in it, skipping names that start
        with ``.`` or ``_``), a glob, or a list of these.
    schema
        Column names and Arrow types (``pa.schema`` or ``{"name": pa.int64()}``);
        when None, the types are inferred from the first block of the first file
        and every other file must agree.
    has_header
        Whether the first line names the columns (without it, names come from
        ``schema`` or are generated as ``f0, f1, ...``).
    split
        With several ranks: True (the default) gives each rank a contiguous
        share, balanced by bytes, so that the ranks' outputs concatenated in
        rank order are the whole input in order. With at least as many files as
        ranks, a share is a run of whole files. With fewer files than ranks, the
        rows are cut at line starts into byte ranges (a row goes to the rank
        whose range holds its first byte; a range is typed as its whole file
        is); values must then not contain line breaks, which streaming in
        blocks needs anyway. A rank with no share sends one empty chunk with
        the schema of the first file. False makes every rank read everything.
        Every rank must see the same files. With one rank, both are the same.

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
    if not isinstance(split, bool):
        raise TypeError(f"read_csv: `split` must be True or False, got {split!r}")
    paths = await ctx.to_thread(expand_paths, source, ".csv")
    if split and ctx.nranks > 1:
        parts = await ctx.to_thread(_share, paths, ctx.rank, ctx.nranks, has_header)
    else:
        parts = [_Part(i, path) for i, path in enumerate(paths)]
    first = paths[0]
    seen: pa.Schema | None = None
    if not parts or parts[0].file != 0:  # every rank checks against the first file's schema
        reader = await ctx.to_thread(_open, first, wanted, block_size, delimiter, has_header)
        seen = _checked(first, reader.schema, wanted)
    ctx.progress.expect(None)  # CSV cannot tell its row count without reading it
    seq = 0
    try:
        for part in parts:
            path = part.path
            reader = await ctx.to_thread(_open, path, wanted, block_size, delimiter, has_header)
            file_schema = _checked(path, reader.schema, wanted)
            if seen is None:
                seen = file_schema
            elif not file_schema.equals(seen):
                raise SchemaError(
                    f"`{path}` does not have the schema of `{first}`: "
                    f"{describe_schema(file_schema)} versus {describe_schema(seen)}; "
                    "pass `schema=` to read both alike"
                )
            if part.span is not None:
                reader = await ctx.to_thread(_open_part, part, file_schema, block_size, delimiter)
            sent_from_file = False
            while (batch := await ctx.to_thread(_next_batch, reader, part)) is not None:
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


def _checked(path: Path, file_schema: pa.Schema, wanted: pa.Schema | None) -> pa.Schema:
    if wanted is not None and file_schema.names != wanted.names:
        raise SchemaError(
            f"`{path}` has columns {file_schema.names}, but the schema names {wanted.names}"
        )
    return file_schema
