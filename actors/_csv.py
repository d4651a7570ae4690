"""CSV: files streamed in blocks, with an explicit or inferred schema."""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from actors._commit import output_actor
from actors._parquet import PathLike
from actors._text_source import read_text_parts
from actors._typing import WriteMode
from actors._writing import WriteReport, check_write, write_stream
from streamnet import (
    Channel,
    ChunkWriter,
    Context,
    CsvFormat,
    CsvPart,
    FilePath,
    SchemaError,
    TableChunk,
    arrow_schema,
    csv_shares,
    define_actor,
    expand_paths,
    resolve_path,
)

if TYPE_CHECKING:
    from streamnet import ArrowSchema, FileSystem, IntoSchema, StorageOptions

__all__ = ["read_csv", "write_csv"]


def _emits(
    columns: Mapping[str, frozenset[str] | None], /, *, schema: object, **_: object
) -> frozenset[str] | None:
    """The columns of ``schema`` when given (the files' own are known once read)."""
    try:
        return None if schema is None else frozenset(arrow_schema(schema, where="read_csv").names)
    except Exception:  # the actor reports what is wrong when it runs
        return None


@define_actor(emits=_emits, pushdown=True)
async def read_csv(
    ctx: Context,
    ch_out: Channel[TableChunk],
    source: PathLike | Sequence[PathLike],
    *,
    schema: IntoSchema | None = None,
    delimiter: str = ",",
    has_header: bool = True,
    block_size: int = 1 << 22,
    encoding: str = "utf-8",
    multiline: bool = False,
    split: bool = True,
    filesystem: FileSystem | None = None,
    storage_options: StorageOptions | None = None,
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
        bytes) of the first file by Polars' rules (integers, floats, booleans,
        and text for anything else: ``+5``, ``0x10``, dates and times stay
        text; an integer too large for int64 is a ``decimal128(38, 0)``), and
        every other file must agree; a later value
        that does not fit its column's type raises `FileReadError` naming the
        column and the line, as Polars does. A column with no value there (a file
        with only its header, say) is a string column, as in Polars and DuckDB.
        An empty file (0 bytes) has no rows of ``schema``; without ``schema`` it
        names no columns and raises. As in Polars, an empty value is null, and a
        quoted empty value (``""``) is an empty string in a text column and null
        in any other (Python's ``csv`` module writes None so when it quotes
        every value).
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
    filesystem, storage_options
        Where ``source`` lives when it is not a local path: a
        ``pyarrow.fs.FileSystem`` its paths are in, or the keyword arguments of
        the filesystem that a URI's scheme (``s3://``, ``gs://``...) makes (see
        `actors.read_parquet`). An object is read as a stream as it is parsed;
        a byte range of it by range requests.

    Raises
    ------
    FileNotFoundError, FileReadError, SchemaError
        Naming the file (and the line, where it can be told).

    Examples
    --------
    >>> import tempfile, pathlib
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
    wanted = None if schema is None else arrow_schema(schema, where="read_csv")
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
    if not isinstance(delimiter, str) or len(delimiter) != 1 or not delimiter.isascii():
        raise ValueError(f"read_csv: `delimiter` must be one ASCII character, got {delimiter!r}")
    if not isinstance(multiline, bool):
        raise TypeError(f"read_csv: `multiline` must be True or False, got {multiline!r}")
    fmt = CsvFormat(block_size, delimiter, has_header, encoding, wanted is not None, multiline)
    backend = ctx.backend
    paths = await ctx.to_thread(
        expand_paths, source, ".csv", filesystem=filesystem, storage_options=storage_options
    )
    if split and ctx.nranks > 1:
        parts = await ctx.to_thread(
            csv_shares, paths, ctx.rank, ctx.nranks, has_header, whole_files=multiline
        )
    else:
        parts = [CsvPart(i, path) for i, path in enumerate(paths)]
    if any(part.span is not None for part in parts) and "\n".encode(encoding) != b"\n":
        raise ValueError(
            f"read_csv: a file split between ranks is cut at line breaks, which needs an "
            f"encoding that writes them as one byte; pass `split=False`, got encoding={encoding!r}"
        )
    await read_text_parts(
        ctx, ch_out, paths, parts, lambda part: backend.csv_reader(part, wanted, fmt),
        block_size=block_size, checked=lambda path, schema: _checked(path, schema, wanted),
    )  # fmt: skip


def _checked(path: FilePath, file_schema: ArrowSchema, wanted: ArrowSchema | None) -> ArrowSchema:
    if wanted is not None and file_schema.names != wanted.names:
        raise SchemaError(
            f"`{path}` has columns {file_schema.names}, but the schema names {wanted.names}"
        )
    return file_schema


@output_actor(check=check_write)
async def write_csv(
    ctx: Context,
    ch_in: Channel[TableChunk],
    path: PathLike,
    *,
    partitioned: bool = False,
    mode: WriteMode = "error",
    delimiter: str = ",",
    has_header: bool = True,
    filesystem: FileSystem | None = None,
    storage_options: StorageOptions | None = None,
) -> WriteReport:
    """Write the stream to CSV without holding it in memory, atomically (as Polars writes
    CSV), to a local path or an object of a store.

    Files are named, staged and published as `write_parquet` does (``path``,
    ``partitioned``, ``mode``, several ranks, ``filesystem`` and
    ``storage_options`` mean the same), with the suffix ``.csv``.

    Parameters
    ----------
    delimiter
        The character between values.
    has_header
        Whether each file starts with a line of the column names.

    Returns
    -------
    WriteReport
        Through ``node.result()``: this rank's files (their final paths), rows, chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import polars as pl
    >>> from streamnet import Context, Network
    >>> from actors import from_polars, write_csv
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> src = from_polars(ctx, ch, pl.DataFrame({"x": [1, 2], "y": ["a", "b"]}))
    >>> Network(ctx, [src, write_csv(ctx, ch, path)]).run()
    >>> print(path.read_text(), end="")
    x,y
    1,a
    2,b
    """
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"write_csv: `delimiter` must be one character, got {delimiter!r}")
    target = resolve_path(path, filesystem=filesystem, storage_options=storage_options)
    backend = ctx.backend

    def open_writer(file: FilePath, schema: ArrowSchema) -> ChunkWriter:
        return backend.csv_writer(file, schema, delimiter=delimiter, header=has_header)

    return await write_stream(
        ctx, ch_in, target, mode, partitioned=partitioned, suffix=".csv",
        open_writer=open_writer,
    )  # fmt: skip
