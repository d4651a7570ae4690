"""Which files a source reads: paths, directories and globs expanded to a sorted list."""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from channels.lowlevel import import_lazily

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs
else:  # imported on first use: `import streamnet` stays light
    pa = import_lazily("pyarrow")
    pafs = import_lazily("pyarrow.fs")

from streamnet.io._stores import FilePath, StorePath, resolve_path, store_error

__all__ = ["PathLike", "dataset_root", "expand_paths"]

PathLike = str | os.PathLike[str]
"""A path as a string or a path object."""


def expand_paths(
    source: PathLike | Sequence[PathLike],
    suffix: str,
    *,
    filesystem: pafs.FileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> list[FilePath]:
    """Files named by a path, a directory (every ``*suffix`` in it, recursively, but none
    whose name or folder starts with ``.`` or ``_``), a glob, or a list.

    A URI (``s3://bucket/data/``) or a path under ``filesystem`` names objects of a
    store (see `resolve_path`), listed once, as `StorePath` s; a local path is a `Path`.

    Raises
    ------
    FileNotFoundError
        A path does not exist or a pattern matches nothing; the message names it.
    FileReadError
        A store refuses the listing (a missing bucket, credentials); the message names
        the URI and gives the store's answer.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from streamnet import expand_paths
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.csv", "a.csv", "_SUCCESS.csv", ".part.csv"):
    ...     _ = (folder / name).write_text("x\\n1\\n")
    >>> [path.name for path in expand_paths(folder, ".csv")]
    ['a.csv', 'b.csv']
    """
    items = [source] if isinstance(source, str | os.PathLike) else list(source)
    if not items:
        raise FileNotFoundError("no files given")
    paths: list[FilePath] = []
    for item in items:
        where = resolve_path(item, filesystem=filesystem, storage_options=storage_options)
        if isinstance(where, StorePath):
            paths.extend(_expand_store(where, suffix))
            continue
        raw = os.fspath(item)
        text = os.fspath(where) if raw.startswith("file://") or filesystem is not None else raw
        if glob.has_magic(text):
            matched = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matched:
                raise FileNotFoundError(f"no files match `{text}`")
            paths.extend(matched)
        elif os.path.isdir(text):
            found = sorted(
                p
                for p in Path(text).rglob(f"*{suffix}")
                if p.is_file() and not _hidden(p.relative_to(text))
            )
            if not found:
                raise FileNotFoundError(f"directory `{text}` holds no `*{suffix}` files")
            paths.extend(found)
        elif os.path.isfile(text):
            paths.append(Path(text))
        else:
            raise FileNotFoundError(f"file `{text}` does not exist")
    return paths


def dataset_root(
    source: PathLike | Sequence[PathLike],
    *,
    filesystem: pafs.FileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> FilePath | None:
    """The directory ``source`` names when it is one directory (not a file, a glob or a
    list): the root of a dataset whose ``key=value`` folders may partition it; else None."""
    if not isinstance(source, str | os.PathLike):
        return None
    where = resolve_path(source, filesystem=filesystem, storage_options=storage_options)
    if isinstance(where, StorePath):
        if glob.has_magic(where.path):
            return None
        return where if where.kind() == "directory" else None
    text = os.fspath(where)
    return where if not glob.has_magic(text) and os.path.isdir(text) else None


def _expand_store(where: StorePath, suffix: str) -> list[FilePath]:
    """The objects ``where`` names in its store: itself, the ``*suffix`` objects under it
    (a folder, one listing), or those a glob matches (one listing of the folder before
    its first wildcard)."""
    fs = where.filesystem
    try:
        if glob.has_magic(where.path):
            parts = where.path.split("/")
            fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
            base = "/".join(parts[:fixed])
            pattern = where.path
            listed = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
            matched = sorted(
                (i.path for i in listed if i.type == pafs.FileType.File and _matches(i.path, pattern)),
            )
            if not matched:
                raise FileNotFoundError(f"no files match `{where}`")
            return [where.at(path) for path in matched]
        info = fs.get_file_info(where.path)
        if info.type == pafs.FileType.File:
            return [where]
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"file `{where}` does not exist")
        base = where.path.rstrip("/")
        listed = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    except (OSError, pa.ArrowException) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise store_error(where, "list", exc) from exc
    found = sorted(
        i.path
        for i in listed
        if i.type == pafs.FileType.File
        and i.path.endswith(suffix)
        and not _hidden(Path(i.path[len(base) + 1 :]))
    )
    if not found:
        raise FileNotFoundError(f"directory `{where}` holds no `*{suffix}` files")
    return [where.at(path) for path in found]


def _matches(path: str, pattern: str) -> bool:
    """Whether ``path`` matches the glob ``pattern`` as `glob.glob` with ``recursive``
    matches: ``*`` within one folder, ``**`` across folders."""
    if "**" not in pattern:
        return len(path.split("/")) == len(pattern.split("/")) and fnmatch.fnmatchcase(
            path, pattern
        )
    return fnmatch.fnmatchcase(path, pattern.replace("**/", "*").replace("**", "*"))


def _hidden(relative: Path) -> bool:
    """Whether a path inside a directory is skipped: a part of it starts with ``.`` or ``_``
    (temporary files of a write in progress, markers), as pyarrow and Spark skip them."""
    return any(part.startswith((".", "_")) for part in relative.parts)
