"""TPC-H tables as Parquet, generated once per scale factor with ``tpchgen-cli`` and cached.

``tpchgen-cli`` (PyPI: ``tpchgen-cli``) reproduces dbgen's data exactly, so a
scale factor always gives the same rows. Its Parquet holds prices as
``decimal128(15, 2)`` and text as ``string_view``; the cached copy stores them
as ``float64`` and ``string`` so that every engine (pandas and Dask included)
reads native types and computes the same floating-point arithmetic: Polars
keeps a product of two decimals at two decimal places, DuckDB at four, which
would make their answers differ by more than a rounding error. Dates stay
``date32``; keys are ``int64``. Each table is rewritten in row groups of
250,000 rows (zstd), the layout of the other Parquet workloads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ROW_GROUP_ROWS", "TABLES", "tables", "tpchgen"]

TABLES = ("lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region")
ROW_GROUP_ROWS = 250_000


def tpchgen() -> str:
    """The ``tpchgen-cli`` executable: next to this Python's, or on ``PATH``.

    Raises
    ------
    FileNotFoundError
        It is not installed (``pip install tpchgen-cli``).
    """
    beside = Path(sys.executable).parent / "tpchgen-cli"
    if beside.exists():
        return str(beside)
    found = shutil.which("tpchgen-cli")
    if found is None:
        raise FileNotFoundError(
            "tpchgen-cli is not installed; `pip install tpchgen-cli` (it writes the TPC-H tables)"
        )
    return found


def _native(schema: pa.Schema) -> pa.Schema:
    """The schema with decimals as float64 and string views as strings."""
    fields = []
    for field in schema:
        dtype = field.type
        if pa.types.is_decimal(dtype):
            dtype = pa.float64()
        elif pa.types.is_string_view(dtype) or pa.types.is_large_string(dtype):
            dtype = pa.string()
        fields.append(pa.field(field.name, dtype, nullable=field.nullable))
    return pa.schema(fields)


def _rewrite(raw: Path, out: Path) -> None:
    """Copy ``raw`` to ``out`` with native types, in row groups of ``ROW_GROUP_ROWS`` rows."""
    source = pq.ParquetFile(raw)
    schema = _native(source.schema_arrow)
    pending: list[pa.RecordBatch] = []
    rows = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in source.iter_batches(batch_size=ROW_GROUP_ROWS):
            pending.append(batch.cast(schema))
            rows += batch.num_rows
            if rows >= ROW_GROUP_ROWS:
                table = pa.Table.from_batches(pending)
                whole = rows - rows % ROW_GROUP_ROWS
                writer.write_table(table.slice(0, whole), row_group_size=ROW_GROUP_ROWS)
                rest = table.slice(whole)
                pending, rows = rest.to_batches(), rest.num_rows
        if rows:
            writer.write_table(
                pa.Table.from_batches(pending, schema), row_group_size=ROW_GROUP_ROWS
            )


def tables(
    scale_factor: float, data_dir: str | os.PathLike[str] = ".cache/bench"
) -> dict[str, Path]:
    """Paths of the eight TPC-H tables at ``scale_factor``, generating them on first use.

    The files live in ``<data_dir>/tpch-sf<scale_factor>/<table>.parquet``; the
    folder appears only once every table is written, so an interrupted run
    leaves nothing half-made behind. Generation streams (bounded memory): scale
    factor 10 (60M lineitem rows) needs about a minute per core and 3 GiB of disk.
    """
    folder = Path(data_dir) / f"tpch-sf{scale_factor:g}"
    paths = {name: folder / f"{name}.parquet" for name in TABLES}
    if all(p.exists() for p in paths.values()):
        return paths
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".tpch-") as scratch:
        raw, done = Path(scratch) / "raw", Path(scratch) / "done"
        done.mkdir()
        subprocess.run(
            [tpchgen(), "parquet", "--scale-factor", f"{scale_factor:g}",
             "--output-dir", str(raw), "--quiet"],
            check=True,
        )  # fmt: skip
        for name in TABLES:
            _rewrite(raw / f"{name}.parquet", done / f"{name}.parquet")
            (raw / f"{name}.parquet").unlink()
        if folder.exists():  # an older, incomplete copy
            shutil.rmtree(folder)
        done.rename(folder)
    return paths
