"""Scan tasks joined into runs of row groups (`group_scan_tasks`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamnet import ScanTask, group_scan_tasks

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
