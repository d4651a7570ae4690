"""Scan tasks joined into runs of row groups (`group_scan_tasks`), and the footers they
are planned from (`read_parquet_footers`)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamnet import (
    FileReadError,
    ScanTask,
    group_scan_tasks,
    read_parquet_footers,
    split_scan_tasks,
)

A, B = Path("a.parquet"), Path("b.parquet")


def _tasks(path: Path, sizes: list[int], *, skip: tuple[int, ...] = ()) -> list[ScanTask]:
    """One task per row group of ``sizes`` rows, leaving out the groups in ``skip``."""
    tasks, offset = [], 0
    for index, rows in enumerate(sizes):
        if index not in skip:
            tasks.append(ScanTask(path, (index,), offset, rows))
        offset += rows
    return tasks


def test_adjacent_row_groups_of_one_file_join_until_the_rows_are_reached() -> None:
    got = group_scan_tasks(_tasks(A, [10] * 5), 25)
    assert got == [ScanTask(A, (0, 1, 2), 0, 30), ScanTask(A, (3, 4), 30, 20)]


def test_files_and_pruned_row_groups_keep_runs_apart() -> None:
    tasks = _tasks(A, [10] * 4, skip=(2,)) + _tasks(B, [10, 10])
    got = group_scan_tasks(tasks, 100)
    assert got == [
        ScanTask(A, (0, 1), 0, 20),
        ScanTask(A, (3,), 30, 10),
        ScanTask(B, (0, 1), 0, 20),
    ]


def test_a_task_without_row_groups_stays_alone() -> None:
    schema_only = ScanTask(A, (), 0, 0)
    assert group_scan_tasks([schema_only, *_tasks(A, [5])], 10) == [schema_only, *_tasks(A, [5])]


@given(st.lists(st.integers(0, 50), max_size=30), st.integers(1, 120))
def test_grouping_keeps_every_row_group_once_in_order(sizes: list[int], rows: int) -> None:
    tasks = _tasks(A, sizes)
    got = group_scan_tasks(tasks, rows)
    assert [g for task in got for g in task.row_groups] == list(range(len(sizes)))
    assert sum(task.rows for task in got) == sum(sizes)
    for task in got:
        assert task.offset == sum(sizes[: task.row_groups[0]])
        # only the last task may stop short, and a task grows only while it is short
        assert sum(sizes[g] for g in task.row_groups[:-1]) < rows


@pytest.mark.parametrize("rows", [0, -1, 2.5, None])
def test_a_bad_row_count_is_refused(rows: object) -> None:
    with pytest.raises(ValueError, match="`rows` must be an int >= 1"):
        group_scan_tasks([], rows)  # type: ignore[arg-type]


def _sized(path: Path, sizes: list[int], row_bytes: int = 10) -> list[ScanTask]:
    tasks, offset = [], 0
    for index, rows in enumerate(sizes):
        tasks.append(ScanTask(path, (index,), offset, rows, nbytes=rows, decoded=rows * row_bytes))
        offset += rows
    return tasks


@given(st.lists(st.integers(0, 60), max_size=20), st.integers(1, 300))
def test_splitting_keeps_every_row_once_in_order_within_the_bytes(
    sizes: list[int], max_decoded: int
) -> None:
    tasks = _sized(A, sizes)
    got = split_scan_tasks(tasks, max_decoded)
    assert sum(t.rows for t in got) == sum(sizes)
    offset = 0
    for task in got:
        assert task.offset == offset
        assert task.rows >= 1 or sizes[task.row_groups[0]] == 0
        offset += task.rows
        assert task.decoded <= max(max_decoded, 10)  # a single row may be larger
        # a part reads the whole row group's column chunks
        (group,) = task.row_groups
        assert task.nbytes == sizes[group]


def test_a_row_group_that_fits_is_not_split_and_parts_join_no_other_task() -> None:
    tasks = _sized(A, [10, 40, 10])
    got = split_scan_tasks(tasks, 200)
    assert [t.rows for t in got] == [10, 20, 20, 10]
    # grouping joins whole row groups only, within the decoded bytes
    assert [t.row_groups for t in group_scan_tasks(got, 1000)] == [(0,), (1,), (1,), (2,)]
    whole = _sized(A, [10, 10, 10, 10])
    grouped = group_scan_tasks(whole, 1000, max_decoded=250)
    assert [t.row_groups for t in grouped] == [(0, 1), (2, 3)]
    assert [t.decoded for t in grouped] == [200, 200]


@pytest.mark.parametrize("value", [0, -5, 1.5])
def test_a_bad_size_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="`max_decoded` must be"):
        split_scan_tasks([], value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`max_decoded` must be"):
        group_scan_tasks([], 10, max_decoded=value)  # type: ignore[arg-type]


def test_the_decoded_bytes_of_a_row_group_are_those_of_its_rows(tmp_path: Path) -> None:
    import polars as pl

    from streamnet import TableChunk, plan_row_groups, read_parquet_footers

    rows = 5_000
    df = pl.DataFrame(
        {"i": range(rows), "f": [0.5] * rows, "s": [f"value-{i % 7}" for i in range(rows)]},
        schema={"i": pl.Int64, "f": pl.Float64, "s": pl.String},
    )
    path = tmp_path / "t.parquet"
    df.write_parquet(path, row_group_size=rows)
    (group,) = plan_row_groups(read_parquet_footers([path]), None, read_columns=["i", "f"])
    assert group.decoded == rows * 16  # fixed width: whatever the encoding
    (whole,) = plan_row_groups(read_parquet_footers([path]), None)
    held = TableChunk.from_polars(df).nbytes
    assert held * 0.8 <= whole.decoded <= held * 1.25  # strings: their bytes and views


def test_a_local_file_s_footer_is_read_once_until_the_file_is_written_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame({"x": range(30)}).write_parquet(path, row_group_size=10)
    first = read_parquet_footers([path]).metadata[0]
    assert read_parquet_footers([path]).metadata[0] is first  # kept
    pl.DataFrame({"x": range(50)}).write_parquet(path, row_group_size=25)
    again = read_parquet_footers([path]).metadata[0]
    assert again is not first and (again.num_rows, again.num_row_groups) == (50, 2)
    path.write_bytes(b"not parquet")
    with pytest.raises(FileReadError, match="cannot read"):
        read_parquet_footers([path])
