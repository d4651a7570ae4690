"""NDJSON (one JSON object per line): files streamed in blocks of lines, and a streamed writer."""

from __future__ import annotations

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
    CsvPart,
    FilePath,
    TableChunk,
    arrow_schema,
    csv_shares,
    define_actor,
    expand_paths,
    resolve_path,
)

if TYPE_CHECKING:
    from streamnet import ArrowSchema, FileSystem, IntoSchema, StorageOptions

__all__ = ["read_ndjson", "write_ndjson"]


def _emits(
    columns: Mapping[str, frozenset[str] | None], /, *, schema: object, **_: object
) -> frozenset[str] | None:
    """The columns of ``schema`` when given (the files' own are known once read)."""
    try:
        return (
            None if schema is None else frozenset(arrow_schema(schema, where="read_ndjson").names)
        )
    except Exception:  # the actor reports what is wrong when it runs
        return None


@define_actor(emits=_emits, pushdown=True)
async def read_ndjson(
    ctx: Context,
    ch_out: Channel[TableChunk],
    source: PathLike | Sequence[PathLike],
    *,
    schema: IntoSchema | None = None,
    block_size: int = 1 << 22,
    split: bool = True,
    filesystem: FileSystem | None = None,
    storage_options: StorageOptions | None = None,
) -> None:
    """Stream NDJSON files (one JSON object per line) in blocks of about ``block_size``
    bytes of whole lines, in file and line order, each parsed by Polars.

    Parameters
    ----------
    source
        A file, a directory (every ``*.ndjson`` in it, skipping names that start
        with ``.`` or ``_``), a glob, a URI of a store, or a list of these.
    schema
        Column names and types (Arrow or Polars); when None they are inferred
        from the first 100 lines of each file, as Polars infers them, and every
        file must agree with the first.
        A field that a line lacks is null; a value that does not fit its type
        raises `FileReadError` naming the file and the lines.
    split
        With several ranks: as `read_csv` splits (whole files when there are at
        least as many files as ranks, else byte ranges cut at line starts);
        False makes every rank read everything.
    filesystem, storage_options
        Where ``source`` lives when it is not a local path (see `read_parquet`).

    Raises
    ------
    FileNotFoundError, FileReadError, SchemaError
        Naming the file (and the lines, where they can be told).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from streamnet import Context, Network
    >>> from actors import collect, read_ndjson
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.ndjson"
    >>> _ = path.write_text('{"a": 1, "b": "x"}\\n{"a": 2, "b": null}\\n')
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> sink = collect(ctx, ch, into="polars")
    >>> Network(ctx, [read_ndjson(ctx, ch, path), sink]).run()
    >>> sink.result().to_dicts()
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': None}]
    """
    wanted = None if schema is None else arrow_schema(schema, where="read_ndjson")
    if type(block_size) is not int or block_size < 1:
        raise ValueError(f"read_ndjson: `block_size` must be an int >= 1, got {block_size!r}")
    if not isinstance(split, bool):
        raise TypeError(f"read_ndjson: `split` must be True or False, got {split!r}")
    backend = ctx.backend
    paths = await ctx.to_thread(
        expand_paths, source, ".ndjson", filesystem=filesystem, storage_options=storage_options
    )
    if split and ctx.nranks > 1:
        parts = await ctx.to_thread(csv_shares, paths, ctx.rank, ctx.nranks, False)
    else:
        parts = [CsvPart(i, path) for i, path in enumerate(paths)]
    await read_text_parts(
        ctx, ch_out, paths, parts,
        lambda part: backend.ndjson_reader(part, wanted, block_size=block_size),
        block_size=block_size,
    )  # fmt: skip


@output_actor(check=check_write)
async def write_ndjson(
    ctx: Context,
    ch_in: Channel[TableChunk],
    path: PathLike,
    *,
    partitioned: bool = False,
    mode: WriteMode = "error",
    filesystem: FileSystem | None = None,
    storage_options: StorageOptions | None = None,
) -> WriteReport:
    """Write the stream as NDJSON (one JSON object per row and line, as Polars writes it)
    without holding it in memory, atomically, to a local path or an object of a store.

    Files are named, staged and published as `write_parquet` does (``path``,
    ``partitioned``, ``mode``, several ranks, ``filesystem`` and
    ``storage_options`` mean the same), with the suffix ``.ndjson``.

    Returns
    -------
    WriteReport
        Through ``node.result()``: this rank's files (their final paths), rows, chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import polars as pl
    >>> from streamnet import Context, Network
    >>> from actors import from_polars, write_ndjson
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.ndjson"
    >>> ctx = Context()
    >>> ch = ctx.create_channel()
    >>> src = from_polars(ctx, ch, pl.DataFrame({"x": [1, 2], "y": ["a", None]}))
    >>> Network(ctx, [src, write_ndjson(ctx, ch, path)]).run()
    >>> print(path.read_text(), end="")
    {"x":1,"y":"a"}
    {"x":2,"y":null}
    """
    target = resolve_path(path, filesystem=filesystem, storage_options=storage_options)
    backend = ctx.backend

    def open_writer(file: FilePath, schema: ArrowSchema) -> ChunkWriter:
        return backend.ndjson_writer(file, schema)

    return await write_stream(
        ctx, ch_in, target, mode, partitioned=partitioned, suffix=".ndjson",
        open_writer=open_writer,
    )  # fmt: skip
