"""File planning: which files a source reads and what each rank reads of them.

Host code on paths, footers and bytes; no table is read here. Every backend
reads and writes files (its files facet, see `Backend`) from what is planned here.

- ``_stores.py``: `StorePath`, an object of a store reached through ``pyarrow.fs`` (or
  fsspec), and `resolve_path`, which tells a URI's store from a local path.
- ``_paths.py``: `expand_paths` (paths, directories, globs, on disk or in a store;
  hidden files skipped).
- ``_shares.py``: `rank_share`, contiguous shares of weighted items between ranks.
- ``_parquet_meta.py``: `read_parquet_footers` (`ParquetFiles`, one schema checked),
  `plan_row_groups` (`RowGroup` s, pruned by `row_group_statistics` with Polars'
  own `skip_predicate`), `ScanTask`, one unit of a scan, `group_scan_tasks` and `split_scan_tasks`.
- ``_csv_split.py``: `CsvPart` and `csv_shares` (whole files, or byte ranges cut at
  line starts), `CsvFormat`, and the line counting that CSV errors report.
- ``_hive.py``: `HivePartitions`, the typed ``key=value`` folders of a dataset
  (`hive_partitions`), and `hive_folder`, the folders of a partition written.
- ``_delta.py``: Delta Lake tables: `plan_delta` (a version's files, pruned by partition
  values and the log's statistics) and `commit_delta` (new files in one transaction).
- ``_schemas.py``: `arrow_schema`, `polars_types`: schema arguments (`IntoSchema`) read
  as readers and casts need them.
"""

from typing import TYPE_CHECKING

from channels.lowlevel import export_lazily, publish
from streamnet.io._hive import HivePartitions, hive_folder, hive_partitions
from streamnet.io._parquet_meta import (
    ParquetFiles,
    RowGroup,
    ScanTask,
    group_scan_tasks,
    plan_row_groups,
    prune_partitions,
    read_parquet_footers,
    row_group_statistics,
    skip_predicate,
    split_scan_tasks,
)
from streamnet.io._paths import dataset_root, expand_paths
from streamnet.io._schemas import arrow_schema, polars_types
from streamnet.io._shares import rank_share
from streamnet.io._stores import FilePath, StorePath, file_size, resolve_path

if TYPE_CHECKING:
    from streamnet.io._csv_split import CsvFormat, CsvPart, csv_shares
    from streamnet.io._delta import (
        DeltaFiles,
        check_delta_target,
        commit_delta,
        delta_add_action,
        delta_schema,
        delta_storage_options,
        plan_delta,
    )

__all__ = [
    "FilePath",
    "CsvFormat",
    "CsvPart",
    "DeltaFiles",
    "check_delta_target",
    "commit_delta",
    "delta_add_action",
    "delta_schema",
    "delta_storage_options",
    "plan_delta",
    "HivePartitions",
    "ParquetFiles",
    "RowGroup",
    "ScanTask",
    "StorePath",
    "arrow_schema",
    "csv_shares",
    "dataset_root",
    "expand_paths",
    "file_size",
    "group_scan_tasks",
    "split_scan_tasks",
    "hive_folder",
    "hive_partitions",
    "plan_row_groups",
    "prune_partitions",
    "polars_types",
    "rank_share",
    "read_parquet_footers",
    "resolve_path",
    "row_group_statistics",
    "skip_predicate",
]

_LAZY = {
    **dict.fromkeys(["CsvFormat", "CsvPart", "csv_shares"], "streamnet.io._csv_split"),
    **dict.fromkeys(
        [
            "DeltaFiles",
            "check_delta_target",
            "commit_delta",
            "delta_add_action",
            "delta_schema",
            "delta_storage_options",
            "plan_delta",
        ],
        "streamnet.io._delta",
    ),
}
"""Names imported when first used: CSV and Delta planning load with the sources that use them."""

__getattr__, __dir__ = export_lazily(globals(), "streamnet", _LAZY)

publish(globals(), "streamnet", [name for name in __all__ if name not in _LAZY])
