"""Which files a source reads: paths, directories and globs expanded to a sorted list."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PathLike", "expand_paths"]

PathLike = str | os.PathLike[str]
"""A path as a string or a path object."""


def expand_paths(source: PathLike | Sequence[PathLike], suffix: str) -> list[Path]:
    """Files named by a path, a directory (every ``*suffix`` in it, recursively, but none
    whose name or folder starts with ``.`` or ``_``), a glob, or a list.

    Raises
    ------
    FileNotFoundError
        A path does not exist or a pattern matches nothing; the message names it.

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
    paths: list[Path] = []
    for item in items:
        text = os.fspath(item)
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


def _hidden(relative: Path) -> bool:
    """Whether a path inside a directory is skipped: a part of it starts with ``.`` or ``_``
    (temporary files of a write in progress, markers), as pyarrow and Spark skip them."""
    return any(part.startswith((".", "_")) for part in relative.parts)
