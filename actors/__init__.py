"""Ready actors: sources, sinks, local transforms and flow control.

Expressions are Polars expressions (``pl.col("x") > 3``). The choices options take
are `Literal` aliases (``_typing.py``); renamed names keep working for one release with
a `DeprecationWarning`.
"""

from typing import TYPE_CHECKING

from actors._allgather import allgather
from actors._cast import cast
from actors._collect import collect
from actors._concat import concat
from actors._distinct import distinct
from actors._flow import fanout, lineariser, merge, throttle
from actors._groupby import Agg, groupby_agg
from actors._join import BROADCAST_THRESHOLD, JoinReport, join
from actors._limit import limit
from actors._memory import from_arrow, from_pandas, from_polars
from actors._parquet import ParquetScanReport, ParquetWriteReport, read_parquet, write_parquet
from actors._rechunk import rechunk
from actors._shuffle import shuffle
from actors._sort import sort, top_k
from actors._transform import filter, map_chunks, rename, select, with_columns
from actors._typing import (
    AggHow,
    DistinctKeep,
    JoinHow,
    JoinMethod,
    JoinStrategy,
    Placement,
    TableKind,
    WriteMode,
)
from actors._writing import WriteReport
from channels.lowlevel import export_lazily, publish
from streamnet.lowlevel import renamed_names

if TYPE_CHECKING:
    from actors._csv import read_csv, write_csv
    from actors._delta import read_delta, write_delta
    from actors._ndjson import read_ndjson, write_ndjson
    from actors._query import (
        QueryNetwork,
        collect_query,
        collect_query_async,
        from_polars_query,
        scan_channel,
    )
    from streamnet import IntoSchema

__all__ = [
    "Agg",
    "AggHow",
    "BROADCAST_THRESHOLD",
    "DistinctKeep",
    "IntoSchema",
    "JoinHow",
    "JoinMethod",
    "JoinReport",
    "JoinStrategy",
    "ParquetScanReport",
    "ParquetWriteReport",
    "Placement",
    "QueryNetwork",
    "TableKind",
    "WriteMode",
    "WriteReport",
    "allgather",
    "cast",
    "collect",
    "collect_query",
    "collect_query_async",
    "concat",
    "distinct",
    "fanout",
    "filter",
    "from_arrow",
    "from_pandas",
    "from_polars",
    "from_polars_query",
    "groupby_agg",
    "lineariser",
    "join",
    "limit",
    "map_chunks",
    "merge",
    "read_csv",
    "read_delta",
    "read_ndjson",
    "read_parquet",
    "rechunk",
    "rename",
    "scan_channel",
    "select",
    "shuffle",
    "sort",
    "throttle",
    "top_k",
    "with_columns",
    "write_csv",
    "write_delta",
    "write_ndjson",
    "write_parquet",
]

_LAZY = {
    "IntoSchema": "streamnet",
    **dict.fromkeys(["read_csv", "write_csv"], "actors._csv"),
    **dict.fromkeys(["read_ndjson", "write_ndjson"], "actors._ndjson"),
    **dict.fromkeys(["read_delta", "write_delta"], "actors._delta"),
    **dict.fromkeys(
        ["QueryNetwork", "collect_query", "collect_query_async", "from_polars_query", "scan_channel"],
        "actors._query",
    ),
}
"""Names imported when first used: streamnet makes its Arrow aliases then (with pyarrow);
the text and Delta sources and the Polars query front-end load with their first use."""

# Old names, for one release (`streamnet.lowlevel`), after the lazily imported ones.
__getattr__, __dir__ = export_lazily(
    globals(), "actors", _LAZY, otherwise=renamed_names(__name__)
)

publish(globals(), "actors", [name for name in __all__ if name not in _LAZY])
