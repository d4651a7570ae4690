"""Where files live: local paths, or objects of a store reached by URI through ``pyarrow.fs``.

A local file is a `pathlib.Path`, read with Python's own file functions. An
object of a store (``s3://``, ``gs://``, ``az://``..., or any path under an
explicit ``filesystem=``) is a `StorePath`: a pyarrow filesystem and the path
in it. pyarrow's filesystems reach S3, Google Cloud Storage, Azure and HDFS;
a scheme pyarrow has no filesystem for is reached through fsspec, wrapped in
pyarrow's ``PyFileSystem``. Credentials come from the store's usual chain
(environment variables, configuration files, instance metadata) unless
``storage_options`` gives them.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeVar

from channels.lowlevel import import_lazily

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs
else:  # imported on first use: `import streamnet` stays light
    pa = import_lazily("pyarrow")
    pafs = import_lazily("pyarrow.fs")

from streamnet._errors import FileReadError

__all__ = [
    "FilePath",
    "StorePath",
    "file_size",
    "in_flight",
    "open_binary",
    "resolve_path",
    "store_error",
]

T = TypeVar("T")
R = TypeVar("R")

_PYARROW_SCHEMES = {
    "s3": "S3FileSystem",
    "s3a": "S3FileSystem",
    "gs": "GcsFileSystem",
    "gcs": "GcsFileSystem",
    "az": "AzureFileSystem",
    "abfs": "AzureFileSystem",
    "abfss": "AzureFileSystem",
}
"""URI schemes pyarrow has a filesystem for, and its class in ``pyarrow.fs``."""

IN_FLIGHT = 16
"""The most requests for metadata (listings, footers) sent to a store at once."""


@dataclass(frozen=True, slots=True, eq=False)
class StorePath:
    """A file (an object) in a store: a pyarrow filesystem and the path in it.

    ``str()`` gives its URI (``s3://bucket/key``), which messages show. Two
    are equal when their URIs are.

    Attributes
    ----------
    filesystem
        The ``pyarrow.fs.FileSystem`` that reaches it.
    path
        Its path in ``filesystem`` (``bucket/key`` for S3).
    scheme
        The scheme of its URI (``"s3"``...).
    polars_options
        See below.
    """

    filesystem: pafs.FileSystem
    path: str
    scheme: str = field(default="")
    polars_options: tuple[tuple[str, str], ...] | None = None
    """The same store's options as Polars' own object-store client takes them, when they
    translate (an S3 store reached by URI): Parquet is then read by Polars' reader."""

    @property
    def uri(self) -> str:
        """The URI: ``<scheme>://<path>``."""
        return f"{self.scheme}://{self.path}" if self.scheme else self.path

    @property
    def name(self) -> str:
        """The last part of the path (the object's name)."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> StorePath:
        """The folder (key prefix) that holds it."""
        head = self.path.rstrip("/").rsplit("/", 1)[0] if "/" in self.path.rstrip("/") else ""
        return StorePath(self.filesystem, head, self.scheme, self.polars_options)

    def at(self, path: str) -> StorePath:
        """Another object of the same store."""
        return StorePath(self.filesystem, path, self.scheme, self.polars_options)

    def kind(self) -> Literal["file", "directory"] | None:
        """What is at this path: an object, a folder (a prefix of objects), or nothing.

        Raises
        ------
        FileReadError
            The store refuses (a missing bucket, credentials); the message names the URI.
        """
        try:
            found = self.filesystem.get_file_info(self.path).type
        except (OSError, pa.ArrowException) as exc:
            raise store_error(self, "look up", exc) from exc
        if found == pafs.FileType.File:
            return "file"
        return "directory" if found == pafs.FileType.Directory else None

    def objects(self) -> list[StorePath]:
        """Every object under this folder (prefix), at any depth, sorted; none if there is none.

        Raises
        ------
        FileReadError
            The store refuses the listing; the message names the URI.
        """
        selector = pafs.FileSelector(self.path.rstrip("/"), recursive=True, allow_not_found=True)
        try:
            listed = self.filesystem.get_file_info(selector)
        except (OSError, pa.ArrowException) as exc:
            raise store_error(self, "list", exc) from exc
        return sorted(
            (self.at(i.path) for i in listed if i.type == pafs.FileType.File),
            key=lambda p: p.path,
        )

    def __truediv__(self, name: str) -> StorePath:
        return self.at(f"{self.path.rstrip('/')}/{name}")

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"StorePath({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StorePath) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)


FilePath = Path | StorePath
"""A file as sources and sinks take it: a local path, or an object of a store."""

_filesystems: dict[tuple[str, tuple[tuple[str, str], ...]], pafs.FileSystem] = {}
_filesystems_lock = threading.Lock()


def resolve_path(
    source: str | os.PathLike[str],
    *,
    filesystem: pafs.FileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> FilePath:
    """The file or folder that ``source`` names: a local `Path`, or a `StorePath`.

    A URI (``s3://bucket/key``) is an object of the store of its scheme,
    reached with ``storage_options`` (the keyword arguments of the filesystem:
    pyarrow's ``S3FileSystem(endpoint_override=..., access_key=...)``, or
    fsspec's for a scheme pyarrow has none for); ``file://`` and a plain path
    are local. With ``filesystem``, ``source`` is a path in it (a URI's scheme
    is dropped); a pyarrow ``LocalFileSystem`` means local paths.

    Raises
    ------
    TypeError
        ``filesystem`` is not a pyarrow filesystem, or ``storage_options`` not a mapping.
    ValueError
        A scheme that neither pyarrow nor fsspec knows, or a filesystem they cannot
        make from ``storage_options`` (the message names the URI).
    """
    if filesystem is not None and not isinstance(filesystem, pafs.FileSystem):
        raise TypeError(
            f"`filesystem` must be a pyarrow.fs.FileSystem (wrap an fsspec one in "
            f"pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(fs))), got {filesystem!r}"
        )
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise TypeError(f"`storage_options` must be a mapping, got {storage_options!r}")
    text = os.fspath(source)
    scheme, _, rest = text.partition("://") if "://" in text else ("", "", text)
    scheme = scheme.lower()
    if filesystem is not None:
        if isinstance(filesystem, pafs.LocalFileSystem):
            return Path(rest)
        return StorePath(filesystem, rest, scheme or filesystem.type_name)
    if not scheme or scheme == "file":
        return Path(rest)
    options = storage_options or {}
    return StorePath(
        _filesystem(scheme, text, options), rest, scheme, _polars_options(scheme, options)
    )


_POLARS_S3 = {
    "access_key": "aws_access_key_id",
    "secret_key": "aws_secret_access_key",
    "session_token": "aws_session_token",
    "region": "aws_region",
}


def _polars_options(
    scheme: str, options: Mapping[str, Any]
) -> tuple[tuple[str, str], ...] | None:
    """``options`` (pyarrow's S3FileSystem arguments) as Polars' object-store client takes
    them, or None when they do not all translate (another store, or an argument Polars'
    client has no name for): pyarrow then reads the objects."""
    if scheme not in ("s3", "s3a"):
        return None
    found: dict[str, str] = {}
    for key, value in options.items():
        if key in _POLARS_S3:
            found[_POLARS_S3[key]] = str(value)
        elif key == "endpoint_override":
            text = str(value)
            found["aws_endpoint_url"] = (
                text if "://" in text else f"{options.get('scheme', 'https')}://{text}"
            )
        elif key == "scheme":
            if value == "http":
                found["aws_allow_http"] = "true"
        else:
            return None
    return tuple(sorted(found.items()))


def _filesystem(scheme: str, uri: str, options: Mapping[str, Any]) -> pafs.FileSystem:
    """The filesystem of ``scheme`` made with ``options``, one per scheme and options
    (a filesystem holds its connections and credentials: made once, reused)."""
    key = (scheme, tuple(sorted((str(k), repr(v)) for k, v in options.items())))
    with _filesystems_lock:
        found = _filesystems.get(key)
    if found is not None:
        return found
    made = _make_filesystem(scheme, uri, options)
    with _filesystems_lock:
        return _filesystems.setdefault(key, made)


def _make_filesystem(scheme: str, uri: str, options: Mapping[str, Any]) -> pafs.FileSystem:
    kind = _PYARROW_SCHEMES.get(scheme)
    try:
        if kind is not None:
            if not options and kind == "AzureFileSystem":  # the account is in the URI
                return pafs.FileSystem.from_uri(uri)[0]
            made: pafs.FileSystem = getattr(pafs, kind)(**options)
            return made
        try:
            import fsspec
        except ImportError:
            raise ValueError(
                f"`{uri}`: pyarrow has no filesystem for `{scheme}://`, and fsspec, which "
                "may have one, is not installed; install fsspec (and the package of its "
                f"`{scheme}` filesystem), got scheme {scheme!r}"
            ) from None
        return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem(scheme, **options)))
    except (TypeError, ValueError, ImportError, pa.ArrowException) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(f"`{uri}`"):
            raise
        raise ValueError(
            f"`{uri}`: cannot make the filesystem of `{scheme}://` from `storage_options` "
            f"(the keyword arguments of its filesystem); got {dict(options)!r}: {exc}"
        ) from exc


def store_error(path: FilePath, what: str, exc: BaseException) -> FileReadError:
    """A `FileReadError` naming ``path`` for the failure ``exc`` of a store (a missing
    bucket, refused credentials, an object that cannot be read)."""
    return FileReadError(f"cannot {what} `{path}`: {exc}")


def file_size(path: FilePath) -> int:
    """The size of a file in bytes.

    Raises
    ------
    FileNotFoundError
        It does not exist.
    OSError
        The store cannot be reached or refuses.
    """
    if isinstance(path, Path):
        return os.path.getsize(path)
    info = path.filesystem.get_file_info(path.path)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"file `{path}` does not exist")
    return int(info.size)


def open_binary(path: FilePath) -> BinaryIO:
    """The file open for reading bytes, seekable, with Python's file methods (``readline``,
    iteration); an object of a store is read by range requests as it is read."""
    if isinstance(path, Path):
        return open(path, "rb")
    native = path.filesystem.open_input_file(path.path)
    return io.BufferedReader(_NativeRaw(native), buffer_size=1 << 16)


class _NativeRaw(io.RawIOBase):
    """A pyarrow input file as a raw Python file (Python's buffering adds the rest)."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._native.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._native.seek(offset, whence))

    def tell(self) -> int:
        return int(self._native.tell())

    def close(self) -> None:
        if not self.closed:
            self._native.close()
        super().close()


def in_flight(fn: Callable[[T], R], items: Iterable[T], *, remote: bool) -> list[R]:
    """``fn`` of each item, in order: up to `IN_FLIGHT` at once when ``remote`` (requests to
    a store wait mostly on latency), one after the other otherwise. The first error raises."""
    listed = list(items)
    if not remote or len(listed) <= 1:
        return [fn(item) for item in listed]
    with ThreadPoolExecutor(max_workers=min(IN_FLIGHT, len(listed))) as pool:
        return list(pool.map(fn, listed))
