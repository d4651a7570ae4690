"""Ready actors: sources, sinks, local transforms and flow control.

Expressions are Polars expressions (``pl.col("x") > 3``).
"""

from actors._allgather import allgather
from actors._cast import IntoSchema, cast
from actors._collect import CollectInto, collect
from actors._concat import concat
from actors._csv import read_csv
from actors._distinct import DistinctKeep, distinct
from actors._flow import fanout, lineariser, merge, throttle
from actors._groupby import Agg, AggHow, groupby_agg
from actors._join import BROADCAST_THRESHOLD, JoinHow, JoinReport, JoinStrategy, join
from actors._limit import limit
from actors._memory import from_arrow, from_pandas, from_polars
from actors._parquet import (
    ParquetScanReport,
    ParquetWriteReport,
    WriteMode,
    read_parquet,
    write_parquet,
)
from actors._rechunk import rechunk
from actors._shuffle import Placement, shuffle
from actors._sort import sort, top_k
from actors._transform import ChunkKind, filter, map_chunks, rename, select, with_columns
from channels._exports import publish

__all__ = [
    "Agg",
    "AggHow",
    "BROADCAST_THRESHOLD",
    "ChunkKind",
    "CollectInto",
    "DistinctKeep",
    "IntoSchema",
    "JoinHow",
    "JoinReport",
    "JoinStrategy",
    "ParquetScanReport",
    "ParquetWriteReport",
    "Placement",
    "WriteMode",
    "allgather",
    "cast",
    "collect",
    "concat",
    "distinct",
    "fanout",
    "filter",
    "from_arrow",
    "from_pandas",
    "from_polars",
    "groupby_agg",
    "lineariser",
    "join",
    "limit",
    "map_chunks",
    "merge",
    "read_csv",
    "read_parquet",
    "rechunk",
    "rename",
    "select",
    "shuffle",
    "sort",
    "throttle",
    "top_k",
    "with_columns",
    "write_parquet",
]

publish(globals(), "actors", __all__)
