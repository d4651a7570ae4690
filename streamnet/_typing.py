"""Type aliases: every set of choices the runtime's options and states take, in one place,
and the host types that user code hands to the runtime (tables, schemas).

The aliases of Arrow types are made when first asked for (`__getattr__`), so that
importing streamnet does not import pyarrow; type checkers see them as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import polars as pl

__all__ = [
    "ActorState",
    "ArrowSchema",
    "ArrowTable",
    "BackendName",
    "FileSystem",
    "HostKind",
    "HostTable",
    "IntoSchema",
    "JoinHow",
    "NetworkState",
    "PersistentActorState",
    "PictureEngine",
    "PolarsFrame",
    "RestartType",
    "Role",
    "SpanKind",
    "StorageOptions",
    "SupervisionStrategy",
    "SupervisorState",
    "Tier",
]

BackendName = Literal["cpu", "gpu"]
"""Where tables live and kernels run: the name of a `Backend`."""

JoinHow = Literal["inner", "left", "right", "full", "semi", "anti"]
"""Which rows a join keeps, as Polars' ``join(how=...)``."""

Tier = Literal["device", "host", "disk"]
"""A memory tier a chunk's data can be in, fastest first (the CPU backend has host and disk)."""

ActorState = Literal["created", "running", "done", "failed", "cancelled"]
"""Where an actor is in its run."""

Role = Literal["input", "output"]
"""What a channel parameter of an actor is: where it receives from, or sends into."""

NetworkState = Literal["built", "running", "done", "failed", "cancelled"]
"""Where a network is: built, then running, then how its one run ended."""

PictureEngine = Literal["auto", "graphviz", "python"]
"""Who draws the SVG: Graphviz's ``dot`` if found (``auto``), or the pure-Python layout."""

SpanKind = Literal[
    "busy", "blocked on input", "blocked on output", "blocked on memory", "queued for a thread"
]
"""What an actor was doing during a span of a timeline (``"queued for a thread"``: a
kernel of its waited for a free thread of the Context's pool)."""

PersistentActorState = Literal[
    "launched", "active", "inactive", "terminating", "terminated", "failed"
]
"""Where a persistent actor is in its life (a network's actor has an `ActorState`)."""

RestartType = Literal["permanent", "transient", "temporary"]
"""When a supervisor restarts a child that exited: always, after an abnormal exit, never."""

SupervisionStrategy = Literal["one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"]
"""Which children restart with a child that exited (see `streamnet.Supervisor`)."""

SupervisorState = Literal["created", "running", "stopped", "failed"]
"""Where a supervisor is: made, started, stopped on request, or given up."""

FileSystem: TypeAlias = "pafs.FileSystem"  # a name for annotations, as pyarrow's is private
"""A pyarrow filesystem (``pyarrow.fs.S3FileSystem(...)``), as sources and sinks take
``filesystem=``; an fsspec one goes in ``pyarrow.fs.PyFileSystem(FSSpecHandler(fs))``."""

StorageOptions: TypeAlias = Mapping[str, Any]
"""The keyword arguments of the filesystem a URI's scheme makes (``storage_options=``)."""

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.fs as pafs

    ArrowSchema: TypeAlias = pa.Schema
    """A chunk's schema (`TableChunk.schema`): an Arrow schema, whatever the backend."""

    ArrowTable: TypeAlias = pa.Table | pa.RecordBatch
    """An Arrow table or record batch, as ``from_arrow`` takes it."""

    HostTable: TypeAlias = pa.Table | pa.RecordBatch | pl.DataFrame | pd.DataFrame
    """A table in host memory, as the sources and the host boundary take it
    (`Backend.from_host`): an Arrow table or record batch, a Polars or a pandas DataFrame."""

    IntoSchema: TypeAlias = Mapping[str, Any] | pa.Schema
    """Column types: ``{"name": type}`` with Polars or Arrow types, or a Polars or Arrow schema."""
else:

    def __getattr__(name: str) -> Any:
        """The aliases of Arrow types, made (importing pyarrow) when first asked for. At
        run time a host table is not a pandas frame (pandas is optional; it is one to
        type checkers)."""
        if name not in ("ArrowSchema", "ArrowTable", "HostTable", "IntoSchema"):
            raise AttributeError(f"module `{__name__}` has no attribute `{name}`")
        import pyarrow as pa

        made = {
            "ArrowSchema": pa.Schema,
            "ArrowTable": pa.Table | pa.RecordBatch,
            "HostTable": pa.Table | pa.RecordBatch | pl.DataFrame,
            "IntoSchema": Mapping[str, Any] | pa.Schema,
        }
        globals().update(made)
        return made[name]


PolarsFrame: TypeAlias = pl.DataFrame
"""A Polars DataFrame, as ``from_polars`` takes it and ``collect(into="polars")`` gives it."""

HostKind = Literal["arrow", "polars", "pandas"]
"""Which kind of host table a value is (`host_kind`), or which one a sink gives."""
