"""The CPU backend's CSV reading: pyarrow's streaming CSV reader, and errors that name the line.

pyarrow parses; this module turns its errors into `FileReadError` s that name
the file, the line, the column and the fix, as Polars' messages do (what to
read and the line counting in bytes come from `streamnet.io`).
"""

from __future__ import annotations

import codecs
import io
import itertools
import re
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from streamnet._errors import FileReadError
from streamnet._schema import empty_table, frame_of_arrow
from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends._files import ChunkReader
from streamnet.io._csv_split import (
    CsvFormat,
    CsvPart,
    first_line,
    first_undecodable,
    line_breaks,
    odd_quotes_line,
    text_line,
)
from streamnet.io._stores import FilePath, StorePath, file_size, open_binary

__all__ = ["CpuCsv", "CpuCsvReader"]


class CpuCsv(Backend):
    """CSV files read with pyarrow's streaming reader."""

    def csv_reader(self, part: CsvPart, schema: pa.Schema | None, fmt: CsvFormat) -> ChunkReader:
        return CpuCsvReader(self, part, schema, fmt)


class CpuCsvReader(ChunkReader):
    """The rows of a `CsvPart` in record batches of about ``fmt.block_size`` bytes.

    It opens the whole file first (its schema, inferred from its first block
    unless given), then, for a byte range, the rows of the range typed alike.
    It holds one batch back, so that the last one is checked (with
    ``multiline``, for a quote that never closes) before it is given.
    """

    def __init__(
        self, backend: Backend, part: CsvPart, schema: pa.Schema | None, fmt: CsvFormat
    ) -> None:
        self._backend = backend  # whose chunks it makes
        self._part = part
        self._fmt = fmt
        self._parsed = _ParsedAfter(schema) if schema is not None else None
        if self._parsed is not None and not self._parsed.columns:
            self._parsed = None
        read = self._parsed.read_schema if self._parsed is not None else schema
        self._reader: Any = _open(part.path, read, fmt)
        self._schema: pa.Schema = self._reader.schema  # what pyarrow reads
        self._opened = part.span is None  # a byte range is opened at the first `next`
        self._rows = 0
        self._held: pa.RecordBatch | None = None
        self._held_before = 0  # the rows of the part before the batch held
        self._done = False
        self._checked = False  # for hexadecimal integers (`_holds_hex`)

    @property
    def schema(self) -> pa.Schema:
        return self._parsed.schema if self._parsed is not None else self._schema

    def _chunk(self, batch: pa.RecordBatch, rows_before: int) -> TableChunk:
        if self._parsed is not None:
            return self._parsed.chunk(self._backend, batch, self._part, self._fmt, rows_before)
        return self._backend.from_arrow(batch)

    def next(self) -> TableChunk | None:
        if self._done:
            return None
        part, fmt = self._part, self._fmt
        if not self._opened:
            self._reader = _open_part(part, self._schema, fmt)
            self._opened = True
        if not self._checked:  # see `_holds_hex`
            self._checked = True
            if not isinstance(self._reader, _TextReader) and _holds_hex(part, self._schema, fmt):
                self._reader = _TextReader(part, self._schema, fmt, skip=self._rows)
        while True:
            try:
                batch = _next_batch(self._reader, part, fmt, self._rows)
            except _QuotedEmpty:  # read on as text from here, ``""`` as null
                self._reader = _TextReader(part, self._schema, fmt, skip=self._rows)
                continue
            if batch is None:
                break
            before = self._rows
            self._rows += batch.num_rows
            if batch.num_rows == 0 and self._held is not None:
                continue
            held, self._held = self._held, batch
            held_before, self._held_before = self._held_before, before
            if held is not None and held.num_rows > 0:
                return self._chunk(held, held_before)
        self.close()
        held, self._held = self._held, None
        if held is None:
            return None
        if fmt.multiline:  # a quote open at the end took in every line after it
            unclosed = _unclosed_quote(part, held)
            if unclosed is not None:
                raise unclosed
        return self._chunk(held, self._held_before)

    def close(self) -> None:
        self._done = True
        self._reader = None


class _ParsedAfter:
    """The columns of a schema whose text pyarrow does not parse as Polars does, read as
    text and then parsed by Polars: a Categorical or an Enum (pyarrow makes dictionaries of
    int32 indices only), a timestamp (Polars reads more forms, such as ``2020/01/01``,
    truncates digits beyond its unit, and reads text without an offset as UTC when it has
    a zone, where pyarrow wants one), a date (more forms) and a decimal (Polars rounds
    digits beyond the scale, where pyarrow refuses them)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.columns = [field.name for field in schema if _parsed_by_polars(field.type)]
        self.read_schema = pa.schema(
            [field.with_type(pa.string()) if field.name in self.columns else field for field in schema]
        )
        self._types: Any = None  # the Polars types of the columns, once a chunk is made

    def chunk(
        self, backend: Backend, batch: pa.RecordBatch, part: CsvPart, fmt: CsvFormat, rows_before: int
    ) -> TableChunk:
        """``batch`` (of ``read_schema``, after ``rows_before`` rows of ``part``) parsed."""
        import polars as pl

        if self._types is None:
            self._types = frame_of_arrow(empty_table(self.schema)).schema
        frame = frame_of_arrow(pa.Table.from_batches([batch]))
        parsed = {name: self._parse(name, strict=True) for name in self.columns}
        try:
            frame = frame.with_columns(**parsed)
            wrong = [  # a timestamp with an offset, read as a column of no zone: its UTC time
                name for name in self.columns
                if isinstance(self._types[name], pl.Datetime) and self._types[name].time_zone is None
                and getattr(frame.schema[name], "time_zone", None) is not None
            ]  # fmt: skip
            if wrong:
                frame = frame.with_columns(
                    pl.col(wrong).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
                )
        except pl.exceptions.PolarsError as exc:
            raise self._failure(frame, part, fmt, rows_before, exc) from exc
        return backend.from_polars(frame, schema=self.schema)

    def _parse(self, name: str, *, strict: bool) -> Any:
        import polars as pl

        dtype = self._types[name]
        text = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            zone = dtype.time_zone
            moment = text.str.to_datetime(
                time_unit=dtype.time_unit, time_zone="UTC" if zone else None, strict=strict
            )
            return moment.dt.convert_time_zone(zone) if zone else moment
        if isinstance(dtype, pl.Date):
            return text.str.to_date(strict=strict)
        if isinstance(dtype, pl.Decimal):
            return text.str.strip_chars(" ").cast(dtype, strict=strict)
        return text.cast(dtype, strict=strict)

    def _failure(
        self, frame: Any, part: CsvPart, fmt: CsvFormat, rows_before: int, exc: Exception
    ) -> FileReadError:
        """The error for the first value that does not parse, naming its column and line as
        pyarrow's errors are named (`_failure`); Polars' own when none is found."""
        for name in self.columns:
            try:
                lax = frame.select(self._parse(name, strict=False)).to_series()
            except Exception:  # Polars cannot tell the values apart: its own error
                continue
            bad = frame[name].is_not_null() & lax.is_null()
            if bad.any():
                value = frame[name].filter(bad)[0]
                index = self.schema.names.index(name)
                kind = self._types[name]  # named as Polars names it
                found = pa.ArrowInvalid(
                    f"In CSV column #{index}: CSV conversion error to {kind}: invalid value '{value}'"
                )
                return _failure(part, found, fmt, names=self.schema.names, rows_before=rows_before)
        return FileReadError(f"cannot read {part.describe()} as CSV: {str(exc).splitlines()[0]}")


def _parsed_by_polars(kind: pa.DataType) -> bool:
    """Whether `_ParsedAfter` parses a column of Arrow type ``kind``."""
    return bool(
        pa.types.is_dictionary(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_date32(kind)
        or pa.types.is_decimal(kind)
    )


def _read_options(
    fmt: CsvFormat, schema: pa.Schema | None, *, part: bool = False, rename: bool = False
) -> Any:
    """How pyarrow reads the file (or, with ``part``, a byte range after its header): with
    ``rename``, the columns take ``schema``'s names in place of the header's."""
    import pyarrow.csv as pacsv  # loaded on first use: importing the package stays light

    named = schema is not None and (part or rename or not fmt.has_header)
    return pacsv.ReadOptions(
        block_size=fmt.block_size,
        autogenerate_column_names=not fmt.has_header and schema is None,
        column_names=schema.names if named else None,  # type: ignore[union-attr]
        skip_rows=1 if rename and fmt.has_header and not part else 0,
        encoding=fmt.encoding,
    )


def _parse_options(fmt: CsvFormat) -> Any:
    # An empty line is a row of nulls and "" an empty string, as Polars reads them.
    # With `multiline`, a file is cut into blocks at row ends, line breaks in quotes
    # included; otherwise at line breaks (the cheaper cut), and a value found holding
    # one is an error (see _line_break).
    import pyarrow.csv as pacsv

    return pacsv.ParseOptions(
        delimiter=fmt.delimiter, ignore_empty_lines=False, newlines_in_values=fmt.multiline
    )


_MESSAGE_LIMIT = 300
_ONE_LINE = (
    "every row must be on one line: a quote that is never closed takes in the lines after "
    "it; close the quote, or pass `multiline=True` to read quoted values that span lines"
)


def _failure(
    part: CsvPart,
    exc: BaseException,
    fmt: CsvFormat,
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
    ragged = _RAGGED.search(str(exc))
    if ragged is not None and (fmt.multiline or "\n" not in ragged["row"]):
        return _ragged(part, fmt, ragged, rows_before)  # (a row of lines: a quote lost, below)
    detail = str(exc)
    cut = "straddles" in detail or "out of sync" in detail
    spans = "CSV parse error" in detail and "\n" in detail.rstrip()  # a row of many lines
    if not fmt.multiline and (cut or spans):
        # Rows are one line each, so the rows read so far end on a known line. A block
        # cut inside quotes, or a row that runs over several lines, comes from a quote
        # that does not close on its line: look for it in the lines after.
        after = first_line(part, fmt) + rows_before
        line = odd_quotes_line(part, after, 2 * fmt.block_size)
        if line is not None:  # else a row longer than a block, or a quote beyond the search
            return FileReadError(
                f"cannot read {part.describe()} as CSV: the quoted value that opens on line "
                f"{line} does not close on that line; {_ONE_LINE}"
            )
    if len(detail) > _MESSAGE_LIMIT:
        detail = detail[:_MESSAGE_LIMIT] + "..."
    message = f"cannot read {part.describe()} as CSV: {detail}"
    if part.span is not None and "CSV parse error" in detail:
        message += _CUT_VALUE
    if "straddles" in detail:
        message += (
            f"; a row is longer than `block_size` (pass a larger one), or a quoted value "
            f"never closes, got block_size={fmt.block_size}"
        )
    return FileReadError(message)


# pyarrow's message for a value that does not convert to its column's type.
_CONVERSION = re.compile(
    r"In CSV column #(?P<column>\d+): (CSV conversion error to (?P<type>[^:]+): "
    r"invalid value '(?P<value>.*)'|The string '(?P<text>.*)' is not a valid "
    r"(?P<decimal>decimal\d+) number)$",
    re.DOTALL,
)


# A range of a file split between ranks may start inside a value.
_CUT_VALUE = (
    "; a quoted value with line breaks, cut where the file is split between ranks, "
    "looks like this: pass `multiline=True` if values span lines"
)

# pyarrow's message for a row with more or fewer values than the file has columns.
_RAGGED = re.compile(
    r"Expected (?P<expected>\d+) columns, got (?P<got>\d+): (?P<row>.*)$", re.DOTALL
)


def _ragged(part: CsvPart, fmt: CsvFormat, found: re.Match[str], rows_before: int) -> FileReadError:
    """The error for a row whose values are more or fewer than the columns, with its line."""
    expected, got, row = int(found["expected"]), int(found["got"]), found["row"]
    first = row.split("\n", 1)[0]  # with `multiline`, the line where the row starts
    line = text_line(
        part, first_line(part, fmt) + rows_before, first, fmt.encoding, 2 * fmt.block_size
    )
    where = f"line {line}" if line is not None else "a row"
    shown = row if len(row) <= 80 else row[:80] + "..."
    return FileReadError(
        f"cannot read {part.describe()} as CSV: {where} has {got} value{'s' * (got != 1)}, "
        f"where the file has {expected} columns; every row must have one value per column "
        f"(a delimiter inside a value needs quotes); got {shown!r}"
        + (_CUT_VALUE if part.span is not None else "")
    )


def _unconvertible(
    part: CsvPart,
    fmt: CsvFormat,
    found: re.Match[str],
    names: Sequence[str] | None,
    rows_before: int,
) -> FileReadError:
    """The error for a value that is not of its column's type: the column, the line, the
    type and where it came from, and how to read the value (as Polars says it)."""
    index = int(found["column"])
    kind = found["type"] or found["decimal"]
    value = found["value"] if found["value"] is not None else found["text"]
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
    part: CsvPart, fmt: CsvFormat, names: Sequence[str], column: int, value: str, rows_before: int
) -> int | None:
    """The line where the first row from row ``rows_before`` on whose value in ``column`` is
    ``value`` starts (``part`` read again, every column as text), or None if not found."""
    import pyarrow.compute as pc

    try:
        text = pa.schema([(name, pa.string()) for name in names])
        reader = _open_csv(*_source(part, fmt, text), text)
        row = breaks = 0
        for batch in reader:
            start: int = min(max(0, rows_before - row), batch.num_rows)
            at = int(pc.index(batch.column(column).slice(start), value).as_py())
            if at >= 0:
                breaks += _breaks(batch.slice(0, start + at))
                first = line_breaks(part.path, part.span[0]) if part.span is not None else 0
                header = 1 if fmt.has_header and part.span is None else 0
                return first + header + row + start + at + breaks + 1
            breaks += _breaks(batch)
            row += batch.num_rows
    except Exception:  # the line is a courtesy: never let looking for it hide the error
        return None
    return None


def _breaks(batch: pa.RecordBatch) -> int:
    """Line breaks inside the values of ``batch`` (every column text)."""
    import pyarrow.compute as pc

    return sum(int(pc.sum(pc.count_substring(c, "\n")).as_py() or 0) for c in batch.columns)


def _undecodable(part: CsvPart, fmt: CsvFormat) -> FileReadError:
    """The error for bytes that are not text in the file's encoding, with their line."""
    where = ""
    found = first_undecodable(part.path, fmt.encoding)
    if found is not None:
        line, offset = found
        where = f" on line {line} (byte {offset})"
    return FileReadError(
        f"cannot read `{part.path}` as CSV: it holds bytes that are not {fmt.encoding} text"
        f"{where}; pass `encoding=` with the file's encoding (e.g. encoding='latin-1'), "
        f"got encoding={fmt.encoding!r}"
    )


def _line_break(part: CsvPart, fmt: CsvFormat, batch: pa.RecordBatch, rows_before: int) -> None:
    """Raise `FileReadError` if a text value of ``batch`` holds a line break (rows are one
    line each, as without ``multiline``): a quote that never closes took in the lines after
    it. ``batch`` follows ``rows_before`` rows of ``part``. One vectorised scan per column."""
    import pyarrow.compute as pc

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
    line = first_line(part, fmt) + rows_before + row
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


def _unclosed_quote(part: CsvPart, last: pa.RecordBatch) -> FileReadError | None:
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
    start, end = part.span if part.span is not None else (0, file_size(part.path))
    with open_binary(part.path) as file:
        file.seek(max(start, end - 16))
        tail = file.read(end - max(start, end - 16))
    for ending in (b"\r\n", b"\n", b"\r"):
        if tail.endswith(ending):
            tail = tail[: -len(ending)]
            break
    if tail.rstrip(b" \t").endswith(b'"'):
        return None
    line = line_breaks(part.path, end) - value.count("\n") + 1
    return FileReadError(
        f"cannot read `{part.path}` as CSV: the quoted value that opens on line {line} is "
        "never closed, so the rest of the file would be one value; close its quote"
    )


def _open(path: FilePath, schema: pa.Schema | None, fmt: CsvFormat) -> Any:
    """A reader of the whole file: typed with ``schema``, or with the types Polars infers
    from its first block (a column with no value at all is a string column). A header that
    names a column twice is read as Polars reads it (``a``, ``a_duplicated_0``)."""
    part = CsvPart(0, path)
    if file_size(path) == 0:
        if schema is None:
            raise FileReadError(
                f"cannot read `{path}` as CSV: the file is empty, so it names no columns; "
                "pass `schema=` to read it as no rows"
            )
        return pa.RecordBatchReader.from_batches(schema, [])
    renamed = False  # whether the columns take other names than the header's
    try:
        reader = _open_csv(
            _stream(path, fmt), _read_options(fmt, schema), _parse_options(fmt), schema
        )
        if schema is None:
            inferred = reader.schema
            if any(pa.types.is_binary(f.type) for f in inferred):  # not text in the encoding
                raise _undecodable(part, fmt)
            names = _unique_names(inferred.names)
            typed = pa.schema(zip(names, _as_polars_infers(path, fmt, inferred).types, strict=True))
            if typed != inferred:
                schema, renamed = typed, names != inferred.names
                read = _read_options(fmt, typed, rename=renamed)
                reader = _open_csv(_stream(path, fmt), read, _parse_options(fmt), typed)
        return reader
    except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError) as exc:
        if schema is not None and _is_quoted_empty(exc):
            return _TextReader(part, schema, fmt, skip=0, rename=renamed)
        raise _failure(part, exc, fmt, names=schema.names if schema else None) from exc


def _unique_names(names: Sequence[str]) -> list[str]:
    """``names`` with each repeat of a name renamed as Polars renames it (``a_duplicated_0``,
    ``a_duplicated_1``...)."""
    seen: dict[str, int] = {}
    unique: list[str] = []
    for name in names:
        if name in seen:
            unique.append(f"{name}_duplicated_{seen[name]}")
            seen[name] += 1
        else:
            unique.append(name)
            seen[name] = 0
    return unique


# The Arrow type of each type Polars infers for CSV text (without `try_parse_dates`).
# Polars' Int128 (an integer too large for Int64) has no Arrow type; a decimal of
# 38 digits holds every such value exactly.
_POLARS_INFERS = {
    "String": pa.string(),
    "Int64": pa.int64(),
    "Float64": pa.float64(),
    "Boolean": pa.bool_(),
    "Int128": pa.decimal128(38, 0),
    "Null": pa.string(),
}


def _as_polars_infers(path: FilePath, fmt: CsvFormat, inferred: pa.Schema) -> pa.Schema:
    """``inferred`` (pyarrow's types for the first block of ``path``) with the types that
    Polars infers from the same rows instead, so that a file reads as in Polars: pyarrow
    reads ``0x10``, ``+5`` and `` 1`` as numbers and ``12:30`` as a time, where Polars keeps
    text, and a 20-digit integer as a float, where Polars keeps every digit. A column with
    no value is a string column. Where Polars cannot read the block (a ragged row, say),
    pyarrow's types stay and reading the file names what is wrong."""
    import polars as pl

    text = _first_rows(path, fmt)
    types: list[pa.DataType] | None = None
    if text is not None and fmt.delimiter.isascii():
        try:
            found = pl.scan_csv(
                io.BytesIO(text), separator=fmt.delimiter, has_header=fmt.has_header,
                infer_schema_length=None, quote_char='"',
            ).collect_schema()  # fmt: skip
        except Exception:  # the read that follows names what is wrong with the file
            found = None
        if found is not None and len(found) == len(inferred):
            types = [_POLARS_INFERS.get(str(dtype)) for dtype in found.dtypes()]
    if types is None:
        types = [None] * len(inferred)
    return pa.schema(
        [
            (field.name, kind or (pa.string() if pa.types.is_null(field.type) else field.type))
            for field, kind in zip(inferred, types, strict=True)
        ]
    )


def _first_rows(path: FilePath, fmt: CsvFormat) -> bytes | None:
    """The whole rows in the first ``fmt.block_size`` bytes of ``path`` (the block pyarrow
    infers its types from), as UTF-8; None where no row ends in the block."""
    with open_binary(path) as file:
        block = file.read(fmt.block_size)
        whole = len(file.read(1)) == 0
    try:
        text = codecs.getincrementaldecoder(fmt.encoding)().decode(block, final=whole)
    except UnicodeDecodeError:
        return None
    rows = text.encode("utf-8")
    if not whole:  # up to the last line break outside quotes (quotes escape by doubling)
        codes = np.frombuffer(rows, dtype=np.uint8)
        outside = np.cumsum(codes == ord('"')) % 2 == 0
        ends = np.flatnonzero((codes == ord("\n")) & outside)
        if ends.size == 0:
            return None
        rows = rows[: int(ends[-1]) + 1]
    return rows


def _open_csv(source: Any, read: Any, parse: Any, schema: pa.Schema | None) -> Any:
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(
        source,
        read_options=read,
        parse_options=parse,
        convert_options=pacsv.ConvertOptions(
            column_types=dict(zip(schema.names, schema.types, strict=True)) if schema else None,
            # Only an empty field is null, as in Polars: not pyarrow's "NA", "null", "NaN"...
            null_values=[""],
            # `true` and `false` in any case, as in Polars: not pyarrow's `1` and `0`
            true_values=_ANY_CASE["true"],
            false_values=_ANY_CASE["false"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    reader.schema.names  # noqa: B018 - names that are not text raise here, not downstream
    return reader


_ANY_CASE = {
    word: ["".join(letters) for letters in itertools.product(*((c, c.upper()) for c in word))]
    for word in ("true", "false")
}
"""Each word in every mix of cases (``tRuE``): the texts Polars reads as a boolean."""


def _stream(path: FilePath, fmt: CsvFormat) -> Any:
    """What :func:`_open_csv` reads for the whole of ``path``: the local file, or the
    object of a store as a stream (read as it is parsed, never downloaded first); with a
    line break after it if it has none (see `_missing_line_end`)."""
    size = file_size(path)
    ending = _missing_line_end(path, size, fmt)
    if ending:
        return _Window(open_binary(path), 0, size, ending)
    if isinstance(path, StorePath):
        return path.filesystem.open_input_stream(path.path)
    return path


def _missing_line_end(path: FilePath, end: int, fmt: CsvFormat) -> bytes:
    """The line break to add after the first ``end`` bytes of ``path`` (the end of the
    file), or nothing if they end with one. pyarrow reads an empty last value of a file
    without a final line break as an empty string where a quoted value comes before it in
    its row (null otherwise, and in Polars), and finds no columns in a file of one line
    without one (a header and no rows)."""
    twice, once = "\n\n".encode(fmt.encoding), "\n".encode(fmt.encoding)
    ending = twice[len(once) :]  # without a byte order mark
    if end < len(ending):
        return ending
    with open_binary(path) as file:
        file.seek(end - len(ending))
        last = file.read(len(ending))
    return b"" if last == ending or last.endswith(b"\r") else ending


def _source(part: CsvPart, fmt: CsvFormat, schema: pa.Schema | None) -> tuple[Any, Any, Any]:
    """What :func:`_open_csv` reads for ``part`` (the file, or the bytes of its range), and
    its read and parse options."""
    if part.span is None:
        return _stream(part.path, fmt), _read_options(fmt, schema), _parse_options(fmt)
    start, end = part.span
    ending = _missing_line_end(part.path, end, fmt) if end == file_size(part.path) else b""
    if isinstance(part.path, StorePath) or ending:  # the range, read as it is parsed
        window = _Window(open_binary(part.path), start, end, ending)
        return window, _read_options(fmt, schema, part=True), _parse_options(fmt)
    with pa.memory_map(str(part.path)) as mapped:
        mapped.seek(start)
        rows = mapped.read_buffer(end - start)  # no copy: the mapping stays
    return pa.BufferReader(rows), _read_options(fmt, schema, part=True), _parse_options(fmt)


class _Window(io.RawIOBase):
    """The bytes ``start`` to ``end`` of a file, then ``ending``, as a file of their own."""

    def __init__(self, file: BinaryIO, start: int, end: int, ending: bytes = b"") -> None:
        self._file = file
        self._left = end - start
        self._ending = ending
        file.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # As full a buffer as there are bytes: pyarrow takes a short read for the end.
        data = b""
        if self._left > 0:
            data = self._file.read(min(len(buffer), self._left))
            self._left = self._left - len(data) if data else 0
        if self._left == 0 and len(data) < len(buffer):
            more = len(buffer) - len(data)
            data, self._ending = data + self._ending[:more], self._ending[more:]
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def _open_part(part: CsvPart, schema: pa.Schema, fmt: CsvFormat) -> Any:
    """A reader of the rows in ``part``'s byte range, typed with ``schema``: the types a reader
    of the whole file inferred, so each range reads as it would in the whole file."""
    assert part.span is not None
    try:
        return _open_csv(*_source(part, fmt, schema), schema)
    except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError, OSError) as exc:
        if _is_quoted_empty(exc):
            return _TextReader(part, schema, fmt, skip=0)
        raise _failure(part, exc, fmt, names=schema.names) from exc


class _QuotedEmpty(Exception):
    """A quoted empty value (``""``) in a column that is not text: pyarrow cannot read it
    as null there (only for every column at once, text included, where Polars reads an
    empty string), so the reader goes on with a `_TextReader`."""


def _is_quoted_empty(exc: BaseException) -> bool:
    found = _CONVERSION.search(str(exc))
    return found is not None and "" in (found["value"], found["text"])


class _TextReader:
    """A reader of ``part`` from row ``skip`` on that reads the columns which are not text
    as text, then converts them to their types in ``schema``, a quoted empty value
    (``""``) to null as Polars reads it. Slower than pyarrow's own conversion: used from
    the first quoted empty value of a column that is not text on."""

    def __init__(
        self, part: CsvPart, schema: pa.Schema, fmt: CsvFormat, *, skip: int, rename: bool = True
    ) -> None:
        text = pa.schema([(f.name, f.type if _is_text(f.type) else pa.string()) for f in schema])
        if part.span is None:  # ``rename``: the names of ``schema``, not of the header
            source = _stream(part.path, fmt)
            read = _read_options(fmt, text, rename=rename)
        else:
            source, read, _ = _source(part, fmt, text)
        read.skip_rows_after_names = skip
        self._reader = _open_csv(source, read, _parse_options(fmt), text)
        # A header that names other columns shows as it is (and is refused as such).
        named = self._reader.schema.names == schema.names
        self.schema: pa.Schema = schema if named else self._reader.schema

    def read_next_batch(self) -> pa.RecordBatch:
        import pyarrow.compute as pc

        batch = self._reader.read_next_batch()
        columns = []
        for index, (column, field) in enumerate(zip(batch.columns, self.schema, strict=True)):
            if column.type != field.type:
                column = pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
                if pa.types.is_integer(field.type):
                    _refuse_hex(column, index, field.type)
                if pa.types.is_boolean(field.type):  # as `_open_csv` reads them
                    columns.append(_booleans(column, index))
                    continue
                try:
                    column = pc.cast(column, field.type)
                except pa.ArrowInvalid as exc:
                    found = _UNPARSED.search(str(exc))
                    if found is None:
                        raise
                    raise pa.ArrowInvalid(  # as pyarrow's CSV reader says it: see _failure
                        f"In CSV column #{index}: CSV conversion error to {field.type}: "
                        f"invalid value '{found['value'] or found['bare']}'"
                    ) from exc
            columns.append(column)
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)


def _booleans(column: pa.Array, index: int) -> pa.Array:
    """Text read as booleans as Polars reads them: ``true`` or ``false`` in any case."""
    import pyarrow.compute as pc

    lower = pc.utf8_lower(column)
    wrong = pc.invert(pc.is_in(lower, pa.array(["true", "false"])))
    if pc.any(pc.and_kleene(wrong, pc.is_valid(column))).as_py():
        value = column.filter(pc.fill_null(wrong, False))[0].as_py()
        raise pa.ArrowInvalid(  # as pyarrow's CSV reader says it: see _failure
            f"In CSV column #{index}: CSV conversion error to bool: invalid value '{value}'"
        )
    return pc.equal(lower, "true")


_HEX = r"^\s*[+-]?0[xX]"


def _holds_hex(part: CsvPart, schema: pa.Schema, fmt: CsvFormat) -> bool:
    """Whether ``part`` may hold a hexadecimal value (``0x10``) in an integer column of
    ``schema``: its bytes hold ``0x`` or ``0X`` somewhere. pyarrow reads such a value as
    an integer, where Polars refuses it (a `_TextReader` refuses it too, `_refuse_hex`);
    a file whose encoding is not ASCII's for these is read as text from the start."""
    if not any(pa.types.is_integer(field.type) for field in schema):
        return False
    if codecs.lookup(fmt.encoding).name not in _ASCII_ENCODINGS:
        return True
    start, stop = part.span if part.span is not None else (0, file_size(part.path))
    local = not isinstance(part.path, StorePath)
    file: Any = pa.memory_map(str(part.path)) if local else open_binary(part.path)
    read = file.read_buffer if local else file.read  # a mapped file: searched where it lies
    with file:
        for at in range(start, stop, _HEX_BLOCK):
            first = max(start, at - 1)  # the byte before too: a marker cut in two
            file.seek(first)
            if _has_hex_marker(read(min(stop, at + _HEX_BLOCK) - first)):
                return True
    return False


def _has_hex_marker(data: bytes | pa.Buffer) -> bool:
    """Whether ``data`` holds ``0x`` or ``0X``, searched by pyarrow where it lies (its
    search that ignores case: about 0.5 ms a MB, where the byte string's own search for
    ``0x`` takes 1.3 ms among digits and pyarrow's case-sensitive one 6 ms). Bytes
    without any ``x`` are told apart first, at memory speed."""
    import pyarrow.compute as pc

    if isinstance(data, bytes) and b"x" not in data and b"X" not in data:
        return False
    buffer = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    if buffer.size == 0:
        return False
    offsets = pa.array([0, buffer.size], pa.int64()).buffers()[1]
    texts = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buffer])
    return bool(pc.any(pc.match_substring(texts, "0x", ignore_case=True)).as_py())


_HEX_BLOCK = 1 << 24
_ASCII_ENCODINGS = frozenset({"utf-8", "ascii", "latin-1", "iso8859-1", "cp1252"})


def _refuse_hex(column: pa.Array, index: int, kind: pa.DataType) -> None:
    """Raise pyarrow's conversion error for the first hexadecimal value of ``column`` (text
    to be read as the integer type ``kind``), which pyarrow's cast would take."""
    import pyarrow.compute as pc

    found = pc.match_substring_regex(column, _HEX)
    if pc.any(found).as_py():
        value = column.filter(found)[0].as_py()
        raise pa.ArrowInvalid(  # as pyarrow's CSV reader says it: see _failure
            f"In CSV column #{index}: CSV conversion error to {kind}: invalid value '{value}'"
        )


# pyarrow's message for a text that does not convert to a type (`pyarrow.compute.cast`);
# to a boolean, it does not quote the text.
_UNPARSED = re.compile(
    r"Failed to parse string: '(?P<value>.*)' as a scalar of type|"
    r"^Failed to parse value: (?P<bare>.*)$",
    re.DOTALL,
)


def _is_text(dtype: pa.DataType) -> bool:
    return bool(pa.types.is_string(dtype) or pa.types.is_large_string(dtype))


def _next_batch(
    reader: Any, part: CsvPart, fmt: CsvFormat, rows_before: int
) -> pa.RecordBatch | None:
    """The next batch of ``reader``, which read ``rows_before`` rows of ``part`` so far
    (checked to have no value spanning lines, unless ``multiline``)."""
    try:
        batch = reader.read_next_batch()
    except StopIteration:
        return None
    except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError) as exc:
        if _is_quoted_empty(exc) and not isinstance(reader, _TextReader):
            raise _QuotedEmpty from exc
        names = reader.schema.names
        raise _failure(part, exc, fmt, names=names, rows_before=rows_before) from exc
    if not fmt.multiline:
        _line_break(part, fmt, batch, rows_before)
    return batch
