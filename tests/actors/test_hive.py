"""Hive-partitioned datasets: typed partition columns, folder pruning, partition_by writes;
compared with Polars reading the same folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from ranks import run
from s3_server import S3Bucket, s3, s3_server

import actors
from streamnet import Context, Network, SchemaError

__all__ = ["s3", "s3_server"]  # fixtures, imported for pytest


def _scan(source: Any, **kwargs: Any) -> tuple[pl.DataFrame, actors.ParquetScanReport]:
    ctx = Context()
    ch = ctx.create_channel()
    scan = actors.read_parquet(ctx, ch, source, **kwargs)
    sink = actors.collect(ctx, ch, into="polars")
    Network(ctx, [scan, sink]).run()
    return sink.result(), scan.result()


def _dataset(root: Path) -> None:
    """year (int) x cat (string, one null) x day (date) folders, two row groups per file."""
    rng = np.random.default_rng(3)
    for year in (2023, 2024, 2025):
        for cat in ("a b", "x/y", None):
            folder = root / f"year={year}" / (
                "cat=__HIVE_DEFAULT_PARTITION__" if cat is None
                else "cat=" + cat.replace("/", "%2F")
            ) / "day=2024-01-0" f"{year % 10}"  # fmt: skip
            folder.mkdir(parents=True)
            pl.DataFrame({"v": rng.integers(0, 100, 40), "w": rng.normal(size=40)}).write_parquet(
                folder / "part-0.parquet", row_group_size=20
            )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hive") / "data"
    _dataset(root)
    return root


def test_partition_columns_are_typed_as_polars_types_them(dataset: Path) -> None:
    got, report = _scan(dataset)
    expected = pl.read_parquet(dataset)
    assert got.schema == expected.schema
    assert got.schema["year"] == pl.Int64 and got.schema["day"] == pl.Date
    assert_frame_equal(got, expected)
    assert report.files == 9


@pytest.mark.parametrize(
    "predicate",
    [
        pl.col("year") == 2024,
        (pl.col("year") >= 2024) & pl.col("cat").is_null(),
        pl.col("cat") == "x/y",
        (pl.col("year") == 2023) & (pl.col("v") > 50),
        pl.col("day") > pl.date(2024, 1, 4),
    ],
)
def test_filters_on_partitions_equal_polars_and_prune_folders(dataset: Path, predicate: pl.Expr) -> None:
    got, report = _scan(dataset, filters=predicate)
    expected = pl.scan_parquet(dataset).filter(predicate).collect()
    assert_frame_equal(got, expected)
    assert report.files < 9


def test_pruned_folders_are_never_opened(tmp_path: Path) -> None:
    """A file the partition values prune is garbage: reading it would fail."""
    root = tmp_path / "data"
    for year in (2023, 2024):
        (root / f"year={year}").mkdir(parents=True)
    pl.DataFrame({"v": [1, 2]}).write_parquet(root / "year=2024" / "part-0.parquet")
    (root / "year=2023" / "part-0.parquet").write_bytes(b"not parquet")
    got, report = _scan(root, filters=pl.col("year") == 2024)
    assert_frame_equal(got, pl.DataFrame({"v": [1, 2], "year": [2024, 2024]}))
    assert report.files == 1


def test_a_fused_filter_prunes_folders_too(dataset: Path) -> None:
    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    scan = actors.read_parquet(ctx, a, dataset)
    keep = actors.filter(ctx, a, b, pl.col("year") == 2025)
    sink = actors.collect(ctx, b, into="polars")
    Network(ctx, [scan, keep, sink]).run()
    assert_frame_equal(sink.result(), pl.read_parquet(dataset).filter(pl.col("year") == 2025))
    assert scan.result().files == 3


def test_every_folder_pruned_gives_the_schema_and_no_rows(dataset: Path) -> None:
    got, report = _scan(dataset, filters=pl.col("year") == 1999)
    assert got.height == 0 and got.schema == pl.read_parquet(dataset).schema
    assert report.row_groups_read == 0


def test_hive_partitioning_false_reads_the_files_alone(dataset: Path) -> None:
    got, _ = _scan(dataset, hive_partitioning=False)
    assert got.columns == ["v", "w"]


def test_folders_of_different_keys_are_an_error(tmp_path: Path) -> None:
    for folder in ("a=1", "b=1"):
        (tmp_path / folder).mkdir()
        pl.DataFrame({"v": [1]}).write_parquet(tmp_path / folder / "p.parquet")
    with pytest.raises(SchemaError, match=r"same `key=value` folders: `.*b=1/p\.parquet` is under \['b'\]"):
        _scan(tmp_path)


def test_hive_dataset_on_two_ranks(dataset: Path) -> None:
    async def job(ctx: Context) -> pl.DataFrame:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch, into="polars")
        scan = actors.read_parquet(ctx, ch, dataset, filters=pl.col("year") > 2023)
        await Network(ctx, [scan, sink]).run_async()
        result: pl.DataFrame = sink.result()
        return result

    parts = run(2, job)
    expected = pl.scan_parquet(dataset).filter(pl.col("year") > 2023).collect()
    assert_frame_equal(pl.concat(parts), expected)


def test_hive_dataset_on_s3_equals_polars(dataset: Path, s3: S3Bucket) -> None:
    fs = s3.filesystem
    for path in sorted(dataset.rglob("*.parquet")):
        key = f"{s3.name}/ds/{path.relative_to(dataset).as_posix()}"
        with fs.open_output_stream(key) as out:
            out.write(path.read_bytes())
    predicate = (pl.col("year") == 2024) & (pl.col("v") < 30)
    got, report = _scan(s3.uri("ds"), filters=predicate, storage_options=s3.storage_options)
    expected = pl.scan_parquet(dataset).filter(predicate).collect()
    assert_frame_equal(got, expected)
    assert report.files == 3
