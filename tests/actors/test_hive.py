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
from streamnet import Context, Message, Network, SchemaError, define_actor

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


def test_a_filter_the_network_moves_past_a_collective_prunes_folders(dataset: Path) -> None:
    ctx = Context()
    a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
    scan = actors.read_parquet(ctx, a, dataset)
    predicate = (pl.col("year") == 2025) & (pl.col("v") > 10)
    network = Network(
        ctx,
        [scan, actors.shuffle(ctx, a, b, "v"), actors.filter(ctx, b, c, predicate),
         sink := actors.collect(ctx, c, into="polars")],
    )  # fmt: skip
    network.run()
    expected = pl.read_parquet(dataset).filter(predicate)
    assert_frame_equal(sink.result().sort("v", "w"), expected.sort("v", "w"))
    assert scan.result().files == 3  # the folders of 2025 only
    assert "year" in network.explain()


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


# -- write_parquet(partition_by=...) -----------------------------------------------------------


def _events(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "id": range(n),
            "year": rng.choice([2023, 2024, 2025], n),
            "cat": [None if x == "" else x for x in rng.choice(["a b", "x/y", ""], n)],
            "v": rng.normal(size=n),
        }
    )


def _write(frame: pl.DataFrame, target: Any, *, chunk_rows: int = 100, **kwargs: Any) -> Any:
    ctx = Context()
    ch = ctx.create_channel()
    source = actors.from_polars(ctx, ch, frame, chunk_rows=chunk_rows)
    writer = actors.write_parquet(ctx, ch, target, **kwargs)
    Network(ctx, [source, writer]).run()
    return writer.result()


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("id")


@pytest.mark.parametrize(("max_open_files", "max_file_bytes"), [(64, None), (1, None), (2, 2000)])
def test_partition_by_writes_what_polars_reads_back(
    tmp_path: Path, max_open_files: int, max_file_bytes: int | None
) -> None:
    frame = _events(2000)
    target = tmp_path / "out"
    report = _write(frame, target, partition_by=["year", "cat"],
                    max_open_files=max_open_files, max_file_bytes=max_file_bytes)  # fmt: skip
    folders = sorted({p.parent.relative_to(target).as_posix() for p in target.rglob("*.parquet")})
    assert folders == [
        f"year={y}/cat={c}" for y in (2023, 2024, 2025)
        for c in ("__HIVE_DEFAULT_PARTITION__", "a b", "x%2Fy")
    ]  # fmt: skip
    assert (target / "_SUCCESS").exists()
    files = list(target.rglob("*.parquet"))
    assert len(report.files) == len(files)
    if max_open_files > 1 and max_file_bytes is None:
        assert len(files) == 9  # one per partition
    else:
        assert len(files) > 9  # closed early (bounded writers) or rolled over (size)
    assert pl.read_parquet(files[0]).columns == ["id", "v"]
    back = pl.read_parquet(target)
    assert_frame_equal(_sorted(back), _sorted(frame.select(back.columns)))
    got, _ = _scan(target, filters=pl.col("cat") == "x/y")
    assert_frame_equal(_sorted(got), _sorted(back.filter(pl.col("cat") == "x/y")))


def test_partition_by_on_two_ranks_names_files_by_rank(tmp_path: Path) -> None:
    frame = _events(1000)
    target = tmp_path / "out"

    async def job(ctx: Context) -> Any:
        ch = ctx.create_channel()
        part = frame.filter(pl.col("id") % 2 == ctx.rank)
        source = actors.from_polars(ctx, ch, part, chunk_rows=100)
        writer = actors.write_parquet(ctx, ch, target, partition_by=["year"])
        await Network(ctx, [source, writer]).run_async()
        return writer.result()

    run(2, job)
    assert sorted(p.name for p in (target / "year=2024").iterdir()) == [
        "part-r00000-00000.parquet", "part-r00001-00000.parquet"
    ]
    back = pl.read_parquet(target)
    assert_frame_equal(_sorted(back), _sorted(frame.select(back.columns)))


def test_partition_by_on_s3_round_trips_and_a_failure_leaves_nothing(s3: S3Bucket) -> None:
    frame = _events(600)
    uri = s3.uri("ds")
    _write(frame, uri, partition_by=["year"], storage_options=s3.storage_options)
    assert [k for k in s3.objects() if k.startswith("ds/year=2023/")] == ["ds/year=2023/part-00000.parquet"]
    back = pl.read_parquet(uri + "/", storage_options=s3.polars_options, hive_partitioning=True)
    assert_frame_equal(_sorted(back), _sorted(frame.select(back.columns)))
    got, _ = _scan(uri, storage_options=s3.storage_options)
    assert_frame_equal(_sorted(got), _sorted(back))

    before = s3.objects()

    @define_actor
    async def fails_midway(ctx: Context, ch_out: Any) -> None:
        for seq in range(6):
            if seq == 3:
                raise RuntimeError("injected after three chunks")
            rows = frame.slice(seq * 100, 100)
            await ch_out.send(ctx, Message(seq, ctx.backend.from_polars(rows)))

    ctx = Context()
    ch = ctx.create_channel()
    writer = actors.write_parquet(ctx, ch, s3.uri("failed"), partition_by=["year"],
                                  storage_options=s3.storage_options)  # fmt: skip
    with pytest.raises(RuntimeError, match="injected after three chunks"):
        Network(ctx, [fails_midway(ctx, ch), writer]).run()
    assert s3.objects() == before


@pytest.mark.parametrize("dtype", [pl.Float64, pl.Float32])
def test_float_partition_keys_are_named_as_polars_names_them(tmp_path: Path, dtype: Any) -> None:
    """``NaN`` (it was ``nan``: the column read back as text) and a Float32 by its own
    shortest text (``0.1``, it was ``0.10000000149011612``)."""
    frame = pl.DataFrame({"id": range(6), "f": [0.1, 2.5, float("nan"), float("inf"), -0.0, 1e20]})
    frame = frame.with_columns(pl.col("f").cast(dtype))
    _write(frame, tmp_path / "ours", partition_by=["f"])
    frame.write_parquet(tmp_path / "theirs", partition_by="f")
    folders = {p.name for p in (tmp_path / "ours").iterdir() if p.is_dir()}
    assert folders == {p.name for p in (tmp_path / "theirs").iterdir()}
    assert "f=NaN" in folders and "f=0.1" in folders
    got, _ = _scan(tmp_path / "ours")  # keys typed from their text: Float64, NaN a float
    assert_frame_equal(_sorted(got), _sorted(frame.with_columns(pl.col("f").cast(pl.Float64))))


def test_a_binary_partition_key_is_refused(tmp_path: Path) -> None:
    """Bytes have no text to name a folder by (they were named by their Python repr)."""
    with pytest.raises(SchemaError, match="column `b` holds Binary values.*cast it to String"):
        _write(pl.DataFrame({"b": [b"ab", b"cd"], "v": [1, 2]}), tmp_path / "o", partition_by=["b"])
    assert not (tmp_path / "o").exists()


def test_partition_by_every_column_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no column would be left to write"):
        _write(pl.DataFrame({"year": [1, 2]}), tmp_path / "o", partition_by=["year"])


def test_partitions_whose_files_differ_in_schema_name_both(tmp_path: Path) -> None:
    for year, frame in ((2023, pl.DataFrame({"v": [1]})), (2024, pl.DataFrame({"v": ["x"]}))):
        (tmp_path / f"year={year}").mkdir()
        frame.write_parquet(tmp_path / f"year={year}" / "p.parquet")
    with pytest.raises(SchemaError, match=r"`.*year=2024/p\.parquet` does not have the schema of `.*year=2023/p\.parquet`"):
        _scan(tmp_path)


FOLDER_VALUES = {
    "datetimes": ["2024-01-01 10:00:00", "2024-01-02 00:00:00"],
    "datetimes with a zone": ["2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"],
    "booleans": ["true", "false"],
    "capitalised booleans": ["True", "False"],
    "nan is text": ["nan", "1.5"],
    "a plus sign is text": ["+5", "6"],
    "a space is text": [" 1", "2"],
    "an empty value is null": ["", "1"],
    "negative integers": ["-3", "4"],
    "floats": ["1.5", "2"],
}


@pytest.mark.parametrize("case", list(FOLDER_VALUES))
def test_folder_values_are_read_as_polars_reads_them(case: str, tmp_path: Path) -> None:
    for i, value in enumerate(FOLDER_VALUES[case]):
        folder = tmp_path / f"p={value}"
        folder.mkdir()
        pl.DataFrame({"x": [i]}).write_parquet(folder / "f.parquet")
    got, _ = _scan(tmp_path)
    want = pl.read_parquet(tmp_path)
    assert got.schema == want.schema
    assert_frame_equal(got.sort("x"), want.sort("x"))
    predicate = pl.col("p").is_not_null()  # pruning by the typed values keeps the same rows
    assert_frame_equal(_scan(tmp_path, filters=predicate)[0].sort("x"), want.filter(predicate).sort("x"))


def test_a_partition_value_that_reads_back_as_null_is_refused(tmp_path: Path) -> None:
    """The text of the null folder comes back as null, from the same folder as the nulls
    (one file would replace the other): it is refused, naming the column."""
    frame = pl.DataFrame({"k": [None, "__HIVE_DEFAULT_PARTITION__"], "v": [0, 1]})
    with pytest.raises(ValueError, match="partition column `k` holds the text '__HIVE_DEFAULT_PARTITION__'"):
        _write(frame, tmp_path / "o", partition_by=["k"])
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.parquet"))


@pytest.mark.parametrize("nranks", [1, 2])
def test_a_partition_column_the_files_hold_too_is_read_as_polars_reads_it(
    tmp_path: Path, nranks: int
) -> None:
    """Polars' own ``write_parquet(partition_by=...)`` keeps the keys in the files: such a
    dataset reads as Polars reads it, the column in the files' place and of their type,
    with the folders' values (which win where a file disagrees), pruned by them."""
    written = tmp_path / "polars"
    frame = pl.DataFrame({"k": [i % 3 for i in range(30)], "v": range(30), "s": ["x"] * 30})
    frame.write_parquet(written, partition_by=["k"])
    made = tmp_path / "made"
    for y, z, rows in ((5, 1, {"y": [7.5, None], "a": [1, 2]}), (6, 2, {"y": [6.0], "a": [3]})):
        (made / f"y={y}" / f"z={z}").mkdir(parents=True)
        pl.DataFrame(rows).write_parquet(made / f"y={y}" / f"z={z}" / "f.parquet")

    cases: list[tuple[Path, dict[str, Any], pl.LazyFrame]] = [
        (written, {}, pl.scan_parquet(written)),
        (written, {"filters": pl.col("k") == 1}, pl.scan_parquet(written).filter(pl.col("k") == 1)),
        (made, {}, pl.scan_parquet(made)),
        (made, {"filters": pl.col("y") > 5.5}, pl.scan_parquet(made).filter(pl.col("y") > 5.5)),
        (made, {"columns": ["a", "y"]}, pl.scan_parquet(made).select("a", "y")),
    ]

    async def job(ctx: Context) -> list[pl.DataFrame]:
        found = []
        for source, kwargs, _ in cases:
            ch = ctx.create_channel()
            sink = actors.collect(ctx, ch, into="polars")
            await Network(ctx, [actors.read_parquet(ctx, ch, source, **kwargs), sink]).run_async()
            found.append(sink.result())
        return found

    per_rank = run(nranks, job, within=60)
    for i, (_, _, want) in enumerate(cases):
        got = pl.concat([frames[i] for frames in per_rank])
        expected = want.collect()
        assert got.schema == expected.schema
        assert_frame_equal(got, expected, check_row_order=False)
    _, report = _scan(written, filters=pl.col("k") == 1)
    assert report.files == 1  # the other folders are pruned by their values
    _, report = _scan(made, filters=pl.col("y") > 5.5)
    assert report.files == 1  # y=5 is pruned by its folder's value, not the file's 7.5


@pytest.mark.parametrize(
    ("predicate", "files"),
    [
        (pl.col("cat").str.starts_with("x"), 3),
        ((pl.col("year") * 2 > 4048) | pl.col("cat").is_null(), 5),
        (pl.col("day").dt.day() == 4, 3),
        (pl.col("cat").is_in(["a b"]) & (pl.col("year") != 2024), 2),
        (pl.col("w") > 0, 9),  # a file column: its statistics, not the folders, can prune
    ],
)
def test_any_row_wise_predicate_on_partition_columns_prunes_folders_as_polars_filters(
    dataset: Path, predicate: pl.Expr, files: int
) -> None:
    """Polars' tests of statistics know comparisons; the folders' values answer any
    row-wise expression of the partition columns, a string function, arithmetic or a
    null test, and nothing the folders' values rule out is opened."""
    got, report = _scan(dataset, filters=predicate)
    assert_frame_equal(got, pl.scan_parquet(dataset).filter(predicate).collect(), check_row_order=False)
    assert report.files == files
