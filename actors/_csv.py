"""CSV: files streamed in blocks, with an explicit or inferred schema."""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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


def _share(
    paths: list[Path], rank: int, nranks: int, has_header: bool, *, whole_files: bool = False
) -> list[_Part]:
    """What ``rank`` reads: a run of whole files balanced by size when there are at least as
    many files as ranks (or ``whole_files``: rows may span lines, so a file cannot be cut at
    a line start); otherwise the rows of all files cut at line starts into ``nranks`` byte
    ranges of about the same size (a row goes to the range holding its first byte)."""
    try:
        sizes = [os.path.getsize(path) for path in paths]
        if len(paths) >= nranks or whole_files:
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


@dataclass(frozen=True, slots=True)
class _Format:
    """How the files are written: what :func:`read_csv` was told."""

    block_size: int
    delimiter: str
    has_header: bool
    encoding: str
    typed: bool
    """Whether ``schema=`` gave the types (else the first block of the first file did)."""
    multiline: bool = False
    """Whether quoted values may hold line breaks (else each row is one line)."""

    def read_options(self, schema: pa.Schema | None, *, part: bool = False) -> Any:
        named = schema is not None and (part or not self.has_header)
        return pacsv.ReadOptions(
            block_size=self.block_size,
            autogenerate_column_names=not self.has_header and schema is None,
            column_names=schema.names if named else None,  # type: ignore[union-attr]
            encoding=self.encoding,
        )

    def parse_options(self) -> Any:
        # An empty line is a row of nulls and "" an empty string, as Polars reads them.
        # With `multiline`, a file is cut into blocks at row ends, line breaks in quotes
        # included; otherwise at line breaks (the cheaper cut), and a value found holding
        # one is an error (see _line_break).
        return pacsv.ParseOptions(
            delimiter=self.delimiter, ignore_empty_lines=False, newlines_in_values=self.multiline
        )


_MESSAGE_LIMIT = 300
_ONE_LINE = (
    "every row must be on one line: a quote that is never closed takes in the lines after "
    "it; close the quote, or pass `multiline=True` to read quoted values that span lines"
)


def _failure(
    part: _Part,
    exc: BaseException,
    fmt: _Format,
    *,
    names: Sequence[str] | None = None,
    rows_before: int = 0,
) -> FileReadError:
    """A `FileReadError` naming the file (and the line where it can be told) for ``exc``,
    raised by a reader of ``part`` whose columns are ``names`` after ``rows_before`` rows."""
    if isinstance(exc, UnicodeDecodeError) or "invalid UTF8" in str(exc):
        return _undecodable(part, fmt)
    conversion = _CONVERSION.search(str(exc))
    if conversion is not None:
        return _unconvertible(part, fmt, conversion, names, rows_before)
    detail = str(exc)
    cut = "straddles" in detail or "out of sync" in detail
    spans = "CSV parse error" in detail and "\n" in detail.rstrip()  # a row of many lines
    if not fmt.multiline and (cut or spans):
        # Rows are one line each, so the rows read so far end on a known line. A block
        # cut inside quotes, or a row that runs over several lines, comes from a quote
        # that does not close on its line: look for it in the lines after.
        after = _first_line(part, fmt) + rows_before
        line = _odd_quotes_line(part, after, 2 * fmt.block_size)
        if line is not None or cut:
            where = f"on line {line}" if line is not None else f"after line {after - 1}"
            return FileReadError(
                f"cannot read {part.describe()} as CSV: the quoted value that opens {where} "
                f"does not close on that line; {_ONE_LINE}"
            )
    if len(detail) > _MESSAGE_LIMIT:
        detail = detail[:_MESSAGE_LIMIT] + "..."
    message = f"cannot read {part.describe()} as CSV: {detail}"
    if part.span is not None and "CSV parse error" in detail:  # it may start inside a value
        message += (
            "; a quoted value with line breaks, cut where the file is split between ranks, "
            "looks like this: pass `multiline=True` if values span lines"
        )
    if "straddles" in detail:
        message += (
            f"; a row is longer than `block_size` (pass a larger one), or a quoted value "
            f"never closes, got block_size={fmt.block_size}"
        )
    return FileReadError(message)


# pyarrow's message for a value that does not convert to its column's type.
_CONVERSION = re.compile(
    r"In CSV column #(?P<column>\d+): CSV conversion error to (?P<type>[^:]+): "
    r"invalid value '(?P<value>.*)'$",
    re.DOTALL,
)


def _unconvertible(
    part: _Part,
    fmt: _Format,
    found: re.Match[str],
    names: Sequence[str] | None,
    rows_before: int,
) -> FileReadError:
    """The error for a value that is not of its column's type: the column, the line, the
    type and where it came from, and how to read the value (as Polars says it)."""
    index, kind, value = int(found["column"]), found["type"], found["value"]
    name = names[index] if names is not None and index < len(names) else None
    column = f"column `{name}`" if name is not None else f"column {index + 1}"
    line = _line_of(part, fmt, names, index, value, rows_before) if names is not None else None
    where = f" on line {line}" if line is not None else ""
    wider = "pa.float64()" if _is_float(value) else "pa.string()"
    if fmt.typed:
        origin = "its type in `schema=`"
        fix = f"pass a type that holds it (such as {wider})"
    else:
        origin = (
            f"the type inferred from the first block of the file (`block_size`={fmt.block_size} "
            "bytes)"
        )
        fix = (
            f"pass `schema=` with a type that holds it (such as {wider}), or a larger "
            "`block_size` to infer the types from more rows"
        )
    return FileReadError(
        f"cannot read {part.describe()} as CSV: {column}{where} holds a value that is not "
        f"{kind}, {origin}; {fix}; got {value!r}"
    )


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _line_of(
    part: _Part, fmt: _Format, names: Sequence[str], column: int, value: str, rows_before: int
) -> int | None:
    """The line where the first row from row ``rows_before`` on whose value in ``column`` is
    ``value`` starts (``part`` read again, every column as text), or None if not found."""
    try:
        text = pa.schema([(name, pa.string()) for name in names])
        reader = _open_csv(*_source(part, fmt, text), text)
        row = breaks = 0
        for batch in reader:
            start: int = min(max(0, rows_before - row), batch.num_rows)
            at = int(pc.index(batch.column(column).slice(start), value).as_py())
            if at >= 0:
                breaks += _breaks(batch.slice(0, start + at))
                first = _line_breaks(part.path, part.span[0]) if part.span is not None else 0
                header = 1 if fmt.has_header and part.span is None else 0
                return first + header + row + start + at + breaks + 1
            breaks += _breaks(batch)
            row += batch.num_rows
    except Exception:  # the line is a courtesy: never let looking for it hide the error
        return None
    return None


def _breaks(batch: pa.RecordBatch) -> int:
    """Line breaks inside the values of ``batch`` (every column text)."""
    return sum(int(pc.sum(pc.count_substring(c, "\n")).as_py() or 0) for c in batch.columns)


def _undecodable(part: _Part, fmt: _Format) -> FileReadError:
    """The error for bytes that are not text in the file's encoding, with their line."""
    where = ""
    found = _first_undecodable(part.path, fmt.encoding)
    if found is not None:
        line, offset = found
        where = f" on line {line} (byte {offset})"
    return FileReadError(
        f"cannot read `{part.path}` as CSV: it holds bytes that are not {fmt.encoding} text"
        f"{where}; pass `encoding=` with the file's encoding (e.g. encoding='latin-1'), "
        f"got encoding={fmt.encoding!r}"
    )


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int] | None:
    """The line and byte offset of the first bytes of ``path`` that ``encoding`` cannot decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = offset = 0
    with open(path, "rb") as file:
        while True:
            block = file.read(1 << 20)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                # The decoder may hold back up to a few bytes of a previous block.
                bad = max(0, exc.start - len(exc.object) + len(block))
                return lines + block.count(b"\n", 0, bad) + 1, offset + bad
            if not block:
                return None
            lines += block.count(b"\n")
            offset += len(block)


def _first_line(part: _Part, fmt: _Format) -> int:
    """The line number, in its file, of the first row of ``part``."""
    if part.span is not None:
        return _line_breaks(part.path, part.span[0]) + 1
    return 2 if fmt.has_header else 1


def _line_break(part: _Part, fmt: _Format, batch: pa.RecordBatch, rows_before: int) -> None:
    """Raise `FileReadError` if a text value of ``batch`` holds a line break (rows are one
    line each, as without ``multiline``): a quote that never closes took in the lines after
    it. ``batch`` follows ``rows_before`` rows of ``part``. One vectorised scan per column."""
    first: tuple[int, int] | None = None
    for index, column in enumerate(batch.columns):
        if not _may_hold_a_break(column):
            continue
        found = pc.index(pc.match_substring_regex(column, r"[\r\n]"), True).as_py()
        if found >= 0 and (first is None or found < first[0]):
            first = (found, index)
    if first is None:
        return
    row, index = first
    value = str(batch.column(index)[row].as_py())
    shown = value if len(value) <= 80 else value[:80] + "..."
    line = _first_line(part, fmt) + rows_before + row
    raise FileReadError(
        f"cannot read {part.describe()} as CSV: the value of column "
        f"`{batch.schema.names[index]}` on line {line} holds a line break; {_ONE_LINE}; "
        f"got {shown!r}"
    )


def _may_hold_a_break(column: pa.Array) -> bool:
    """Whether the text bytes of ``column`` hold a CR or LF: one pass over its data buffer,
    several times cheaper than a string kernel (which then finds the row, if any)."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return False
    data = column.buffers()[2]
    if data is None or data.size == 0:
        return False
    text = np.frombuffer(data, dtype=np.uint8)
    return bool((text == 10).any() or (text == 13).any())


def _odd_quotes_line(part: _Part, from_line: int, within: int) -> int | None:
    """The first line from line ``from_line`` on, in the ``within`` bytes that follow its
    start and in ``part``, with an odd number of quotes (a quoted value that does not close
    on it), or None."""
    end = part.span[1] if part.span is not None else os.path.getsize(part.path)
    done = 0
    limit: int | None = None
    with open(part.path, "rb") as file:
        for line, text in enumerate(file, start=1):
            if line >= from_line:
                if text.count(b'"') % 2:
                    return line
                limit = done + within if limit is None else limit
            done += len(text)
            if done >= end or (limit is not None and done >= limit):
                return None
    return None


def _unclosed_quote(part: _Part, last: pa.RecordBatch) -> FileReadError | None:
    """The error for a quoted value that never closes, or None (with ``multiline``).

    Such a value takes in the rest of the file as the last value of its last
    row: a value with line breaks, where the text does not end with the closing
    quote. (A file is never split between ranks by bytes in this mode.)
    """
    if last.num_rows == 0 or last.num_columns == 0:
        return None
    column = last.column(last.num_columns - 1)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return None
    value = column[-1].as_py()
    if value is None or "\n" not in value:
        return None
    start, end = part.span if part.span is not None else (0, os.path.getsize(part.path))
    with open(part.path, "rb") as file:
        file.seek(max(start, end - 16))
        tail = file.read(end - max(start, end - 16))
    for ending in (b"\r\n", b"\n", b"\r"):
        if tail.endswith(ending):
            tail = tail[: -len(ending)]
            break
    if tail.rstrip(b" \t").endswith(b'"'):
        return None
    line = _line_breaks(part.path, end) - value.count("\n") + 1
    return FileReadError(
        f"cannot read `{part.path}` as CSV: the quoted value that opens on line {line} is "
        "never closed, so the rest of the file would be one value; close its quote"
    )


def _line_breaks(path: Path, end: int) -> int:
    """Line breaks in the first ``end`` bytes of ``path``."""
    count = done = 0
    with open(path, "rb") as file:
        while done < end and (block := file.read(min(1 << 20, end - done))):
            count += block.count(b"\n")
            done += len(block)
    return count


def _open(path: Path, schema: pa.Schema | None, fmt: _Format) -> Any:
    """A reader of the whole file: typed with ``schema``, or with the types inferred from its
    first block, where a column with no value at all is a string column (as in Polars)."""
    part = _Part(0, path)
    if os.path.getsize(path) == 0:
        if schema is None:
            raise FileReadError(
                f"cannot read `{path}` as CSV: the file is empty, so it names no columns; "
                "pass `schema=` to read it as no rows"
            )
        return pa.RecordBatchReader.from_batches(schema, [])
    try:
        reader = _open_csv(path, fmt.read_options(schema), fmt.parse_options(), schema)
        if schema is None:
            inferred = reader.schema
            if any(pa.types.is_binary(f.type) for f in inferred):  # not text in the encoding
                raise _undecodable(part, fmt)
            empty = {f.name: pa.string() for f in inferred if pa.types.is_null(f.type)}
            if empty:
                typed = pa.schema([(f.name, empty.get(f.name, f.type)) for f in inferred])
                reader = _open_csv(path, fmt.read_options(None), fmt.parse_options(), typed)
        return reader
    except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError) as exc:
        raise _failure(part, exc, fmt, names=schema.names if schema else None) from exc


def _open_csv(source: Any, read: Any, parse: Any, schema: pa.Schema | None) -> Any:
    reader = pacsv.open_csv(
        source,
        read_options=read,
        parse_options=parse,
        convert_options=pacsv.ConvertOptions(
            column_types=dict(zip(schema.names, schema.types, strict=True)) if schema else None,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    reader.schema.names  # noqa: B018 - names that are not text raise here, not downstream
    return reader


def _source(part: _Part, fmt: _Format, schema: pa.Schema | None) -> tuple[Any, Any, Any]:
    """What :func:`_open_csv` reads for ``part`` (the file, or the bytes of its range), and
    its read and parse options."""
    if part.span is None:
        return part.path, fmt.read_options(schema), fmt.parse_options()
    start, end = part.span
    with pa.memory_map(str(part.path)) as mapped:
        mapped.seek(start)
        rows = mapped.read_buffer(end - start)  # no copy: the mapping stays
    return pa.BufferReader(rows), fmt.read_options(schema, part=True), fmt.parse_options()


def _open_part(part: _Part, schema: pa.Schema, fmt: _Format) -> Any:
    """A reader of the rows in ``part``'s byte range, typed with ``schema``: the types a reader
    of the whole file inferred, so each range reads as it would in the whole file."""
    assert part.span is not None
    try:
        return _open_csv(*_source(part, fmt, schema), schema)
    except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError, OSError) as exc:
        raise _failure(part, exc, fmt, names=schema.names) from exc


def _next_batch(reader: Any, part: _Part, fmt: _Format, rows_before: int) -> pa.RecordBatch | None:
    """The next batch of ``reader``, which read ``rows_before`` rows of ``part`` so far
    (checked to have no value spanning lines, unless ``multiline``)."""
    try:
        batch = reader.read_next_batch()
    except StopIteration:
        return None
    except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError) as exc:
        names = reader.schema.names
        raise _failure(part, exc, fmt, names=names, rows_before=rows_before) from exc
    if not fmt.multiline:
        _line_break(part, fmt, batch, rows_before)
    return batch


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
    encoding: str = "utf-8",
    multiline: bool = False,
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
        when None, the types are inferred from the first block (``block_size``
        bytes) of the first file and every other file must agree; a later value
        that does not fit its column's type raises `FileReadError` naming the
        column and the line, as Polars does. A column with no value there (a file
        with only its header, say) is a string column, as in Polars and DuckDB.
        An empty file (0 bytes) has no rows of ``schema``; without ``schema`` it
        names no columns and raises.
    has_header
        Whether the first line names the columns (without it, names come from
        ``schema`` or are generated as ``f0, f1, ...``).
    encoding
        The files' text encoding (a Python codec name: ``"latin-1"``,
        ``"cp1252"``...). Bytes that are not text in it raise `FileReadError`
        naming the file and the line, never a silent binary column.
    multiline
        Whether quoted values may hold line breaks (Spark's ``multiLine``). By
        default each row is one line, and a value holding a line break raises
        `FileReadError` naming the file and the line: it is most often a quote
        that never closes, which would take in the rows after it (Polars
        raises too). With True, such values are read (files are then never
        split between ranks by bytes, see ``split``), and a quote still open at
        the end of the file raises `FileReadError` naming the line where it opens.
    split
        With several ranks: True (the default) gives each rank a contiguous
        share, balanced by bytes, so that the ranks' outputs concatenated in
        rank order are the whole input in order. With at least as many files as
        ranks, or with ``multiline``, a share is a run of whole files. Otherwise,
        with fewer files than ranks, the rows are cut at line starts into byte
        ranges (a row goes to the rank whose range holds its first byte; a range
        is typed as its whole file is). A rank with no share sends one empty
        chunk with the schema of the first file. False makes every rank read
        everything. Every rank must see the same files. With one rank, both are
        the same.

    Raises
    ------
    FileNotFoundError, FileReadError, SchemaError
        Naming the file (and the line, where it can be told).

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
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ValueError(
            f"read_csv: `encoding` must name a Python codec, got {encoding!r}"
        ) from None
    if not isinstance(multiline, bool):
        raise TypeError(f"read_csv: `multiline` must be True or False, got {multiline!r}")
    fmt = _Format(block_size, delimiter, has_header, encoding, wanted is not None, multiline)
    paths = await ctx.to_thread(expand_paths, source, ".csv")
    if split and ctx.nranks > 1:
        parts = await ctx.to_thread(
            _share, paths, ctx.rank, ctx.nranks, has_header, whole_files=multiline
        )
    else:
        parts = [_Part(i, path) for i, path in enumerate(paths)]
    if any(part.span is not None for part in parts) and "\n".encode(encoding) != b"\n":
        raise ValueError(
            f"read_csv: a file split between ranks is cut at line breaks, which needs an "
            f"encoding that writes them as one byte; pass `split=False`, got encoding={encoding!r}"
        )
    first = paths[0]
    seen: pa.Schema | None = None
    if not parts or parts[0].file != 0:  # every rank checks against the first file's schema
        reader = await ctx.to_thread(_open, first, wanted, fmt)
        seen = _checked(first, reader.schema, wanted)
    ctx.progress.expect(None)  # CSV cannot tell its row count without reading it
    seq = 0
    try:
        for part in parts:
            path = part.path
            reader = await ctx.to_thread(_open, path, wanted, fmt)
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
                reader = await ctx.to_thread(_open_part, part, file_schema, fmt)
            # Each batch waits for the next: the last one of a part is checked before it goes.
            held: pa.RecordBatch | None = None
            rows = 0
            while (batch := await ctx.to_thread(_next_batch, reader, part, fmt, rows)) is not None:
                rows += batch.num_rows
                if batch.num_rows == 0 and held is not None:
                    continue
                if held is not None and held.num_rows > 0:
                    seq = await _send(ctx, ch_out, seq, held)
                held = batch
            if held is not None:
                if multiline:  # a quote open at the end took in every line after it
                    unclosed = await ctx.to_thread(_unclosed_quote, part, held)
                    if unclosed is not None:
                        raise unclosed
                seq = await _send(ctx, ch_out, seq, held)
        if seq == 0 and seen is not None:
            await ch_out.send(ctx, Message(0, TableChunk.from_arrow(seen.empty_table())))
        await ch_out.drain(ctx)
    except ChannelBroken:
        pass  # downstream needs no more


async def _send(ctx: Context, ch_out: Channel[TableChunk], seq: int, batch: pa.RecordBatch) -> int:
    """Send ``batch`` as message ``seq``; the next sequence number."""
    await ch_out.send(ctx, Message(seq, TableChunk.from_arrow(batch)))
    ctx.progress.advance(batch.num_rows)
    return seq + 1


def _checked(path: Path, file_schema: pa.Schema, wanted: pa.Schema | None) -> pa.Schema:
    if wanted is not None and file_schema.names != wanted.names:
        raise SchemaError(
            f"`{path}` has columns {file_schema.names}, but the schema names {wanted.names}"
        )
    return file_schema
