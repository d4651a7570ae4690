"""The CPU backend's text formats written, and NDJSON read: Polars' CSV and JSON on streams.

A text file is written chunk by chunk into one stream (a local file, or an
object of a store uploaded as it is written), each chunk encoded by Polars.
NDJSON is read in blocks of whole lines, each parsed by Polars with the one
schema of the stream (given, or inferred from the first block of the file).
"""

from __future__ import annotations

import io
from typing import Any, Literal

import polars as pl
import pyarrow as pa

from streamnet._errors import FileReadError
from streamnet._table_chunk import TableChunk
from streamnet.backends._base import Backend
from streamnet.backends._files import ChunkReader, ChunkWriter
from streamnet.io._csv_split import CsvPart, line_breaks
from streamnet.io._stores import FilePath, StorePath, file_size, open_binary

__all__ = ["CpuNdjsonReader", "CpuText", "CpuTextWriter"]


def _open_output(path: FilePath) -> Any:
    """A binary stream that creates ``path`` (an object of a store: uploaded as written)."""
    if isinstance(path, StorePath):
        return path.filesystem.open_output_stream(path.path)
    return open(path, "wb")


class CpuTextWriter(ChunkWriter):
    """One CSV or NDJSON file, each chunk encoded by Polars and appended to its stream."""

    def __init__(
        self, backend: Backend, path: FilePath, schema: pa.Schema,
        kind: Literal["csv", "ndjson"], *, delimiter: str = ",", header: bool = True,
    ) -> None:  # fmt: skip
        self._backend = backend
        self._schema = schema
        self._kind = kind
        self._delimiter = delimiter
        self._header = header
        self._stream: Any = _open_output(path)

    def write(self, chunk: TableChunk, *, row_group_rows: int | None = None) -> None:
        if self._stream is None:
            raise ValueError(f"write: the {self._kind} writer is closed")
        if not chunk.schema.equals(self._schema):
            raise ValueError(
                f"write: the chunk does not have the schema the writer was opened with; "
                f"got {chunk.schema}"
            )
        frame = self._backend.to_polars(chunk)
        text = io.BytesIO()
        if self._kind == "csv":
            frame.write_csv(text, include_header=self._header, separator=self._delimiter)
            self._header = False  # once, at the top of the file
        else:
            frame.write_ndjson(text)
        self._stream.write(text.getvalue())

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            if self._kind == "csv" and self._header:  # no chunk: the header alone
                frame = self._backend.to_polars(self._backend.empty(self._schema))
                stream.write(frame.write_csv(separator=self._delimiter).encode())
            stream.close()


class CpuNdjsonReader(ChunkReader):
    """The lines of a `CsvPart` of an NDJSON file, in chunks of about ``block_size`` bytes."""

    def __init__(
        self, backend: Backend, part: CsvPart, schema: pa.Schema | None, block_size: int
    ) -> None:
        self._backend = backend
        self._part = part
        self._block = block_size
        start, end = part.span if part.span is not None else (0, file_size(part.path))
        self._left = end - start
        self._line = 1 + (line_breaks(part.path, start) if start else 0)
        self._file: Any = open_binary(part.path)
        self._file.seek(start)
        self._carry = b""
        if schema is None:
            self._types = _inferred(part.path)
        else:
            empty = backend.to_polars(backend.empty(schema))
            self._types = empty.schema
        self._schema = backend.from_polars(pl.DataFrame(schema=self._types)).schema

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def next(self) -> TableChunk | None:
        while self._file is not None:
            data = self._file.read(min(self._block, self._left)) if self._left > 0 else b""
            self._left -= len(data)
            text = self._carry + data
            cut = text.rfind(b"\n") + 1 if data else len(text)
            lines, self._carry = text[:cut], text[cut:]
            if not data:
                self.close()
            if lines.strip():
                return self._parse(lines)
        return None

    def _parse(self, lines: bytes) -> TableChunk:
        first = self._line
        self._line += lines.count(b"\n")
        try:
            frame = pl.read_ndjson(io.BytesIO(lines), schema=self._types)
        except pl.exceptions.PolarsError as exc:
            last = self._line - (0 if lines.endswith(b"\n") else -1) - 1
            raise FileReadError(
                f"cannot read `{self._part.path}` as NDJSON: a line among lines {first} to "
                f"{last} is not a JSON object of the stream's schema "
                f"{dict(self._types)}; pass `schema=` with types that hold it; got: {exc}"
            ) from exc
        return self._backend.from_polars(frame, schema=self._schema)

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


INFER_LINES = 100
"""Lines whose values give the types of an NDJSON file read without a schema: Polars'
default (``infer_schema_length``), so that the types are those Polars infers."""


def _inferred(path: FilePath) -> pl.Schema:
    """The types of the first `INFER_LINES` lines of ``path``, inferred by Polars."""
    lines = []
    with open_binary(path) as file:
        for line in file:
            if line.strip():
                lines.append(line if line.endswith(b"\n") else line + b"\n")
            if len(lines) == INFER_LINES:
                break
    if not lines:
        raise FileReadError(
            f"cannot read `{path}` as NDJSON: it has no line to infer the types from; "
            "pass `schema=` to read it as no rows"
        )
    try:
        return pl.read_ndjson(io.BytesIO(b"".join(lines)), infer_schema_length=None).schema
    except pl.exceptions.PolarsError as exc:
        raise FileReadError(f"cannot read `{path}` as NDJSON: {exc}") from exc


class CpuText(Backend):
    """CSV and NDJSON files written, and NDJSON read, with Polars."""

    def csv_writer(
        self, path: FilePath, schema: pa.Schema, *, delimiter: str = ",", header: bool = True
    ) -> ChunkWriter:
        return CpuTextWriter(self, path, schema, "csv", delimiter=delimiter, header=header)

    def ndjson_writer(self, path: FilePath, schema: pa.Schema) -> ChunkWriter:
        return CpuTextWriter(self, path, schema, "ndjson")

    def ndjson_reader(
        self, part: CsvPart, schema: pa.Schema | None, *, block_size: int
    ) -> ChunkReader:
        return CpuNdjsonReader(self, part, schema, block_size)
