"""Plans are values: steps compare and hash by what they do, chain in order, name their actors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import polars as pl
import pyarrow as pa
import pytest

from streamnet import (
    Cast,
    Filter,
    ParquetScan,
    Plan,
    Rename,
    Select,
    Slices,
    Stamp,
    TableChunk,
    WithColumns,
)


def test_steps_compare_and_hash_by_their_expressions() -> None:
    a = Filter(pl.col("x") > 1, actor="filter#0")
    assert a == Filter(pl.col("x") > 1, actor="filter#0")
    assert hash(a) == hash(Filter(pl.col("x") > 1, actor="filter#0"))
    assert a != Filter(pl.col("x") > 2, actor="filter#0")
    assert a != Filter(pl.col("x") > 1, actor="filter#1")
    assert len({a, Filter(pl.col("x") > 1, actor="filter#0"), Select((pl.col("x"),))}) == 2
    as_list = cast(Any, [pl.col("x") + 1])  # the runtime takes any sequence and keeps a tuple
    assert WithColumns(as_list) == WithColumns((pl.col("x") + 1,))
    assert Rename({"a": "b"}) == Rename({"a": "b"}) != Rename({"a": "c"})
    assert Cast({"a": pl.Int32}, strict=False) != Cast({"a": pl.Int32})
    assert Stamp() == Stamp(columns=("__rank", "__seq"))


def test_steps_are_immutable() -> None:
    step = Rename({"a": "b"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.actor = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        step.mapping["a"] = "c"  # type: ignore[index]


def test_a_plan_chains_steps_and_names_its_actors_in_order() -> None:
    # a str path and a list of columns, as users write them: the scan keeps tuples of Paths
    scan = ParquetScan(cast(Any, "data.parquet"), columns=cast(Any, ["x"]), actor="read_parquet#0")
    head = Plan(scan, (Filter(pl.col("x") > 1, actor="filter#0"),))
    tail = Plan(steps=(
        WithColumns((pl.col("x") * 2,), actor="with_columns#0"),
        Select((pl.col("x"),), actor="with_columns#0"),
    ))  # fmt: skip
    plan = head.then(tail)
    assert plan.source == ParquetScan((Path("data.parquet"),), ("x",), actor="read_parquet#0")
    assert plan.steps == head.steps + tail.steps
    assert plan.actors() == ("read_parquet#0", "filter#0", "with_columns#0")
    with pytest.raises(ValueError, match="has a source \\(of actor `read_parquet#0`\\)"):
        tail.then(head)


def test_an_in_memory_source_compares_by_its_table() -> None:
    table = TableChunk.from_arrow(pa.table({"x": [1]}))
    same = TableChunk.from_arrow(pa.table({"x": [1]}))
    assert Slices(table, actor="from_arrow#0") == Slices(table, actor="from_arrow#0")
    assert Slices(table) != Slices(same)
    assert len({Slices(table), Slices(table)}) == 1


# Each step gets bad input on purpose (hence the ignores): its check runs at runtime.
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Filter("x > 1", actor="filter#0"), TypeError,  # type: ignore[arg-type]
         "Filter step of actor `filter#0`: `predicate` must be a Polars expression, got str"),
        (lambda: Select(()), TypeError, "`exprs` must be one or more Polars expressions"),
        (lambda: Select("x"), TypeError, "`exprs` must be Polars expressions, got str"),  # type: ignore[arg-type]
        (lambda: WithColumns((pl.col("x"), 3)), TypeError, "got int"),  # type: ignore[arg-type]
        (lambda: Rename({"a": 1}), TypeError, "new names must be str"),  # type: ignore[dict-item]
        (lambda: Cast({"a": "int"}, actor="cast#0"), TypeError,
         "Cast step of actor `cast#0`: `types` must map columns to Polars types"),
        (lambda: Stamp(columns=("a", "a")), ValueError, "two distinct column names"),
        (lambda: ParquetScan(()), ValueError, "`paths` names no file"),
        (lambda: ParquetScan("f", predicate="x"), TypeError, "`predicate` must be None or"),  # type: ignore[arg-type]
        (lambda: Slices(pa.table({"x": [1]})), TypeError, "`table` must be a TableChunk"),
        (lambda: Plan(steps=(pl.col("x"),)), TypeError, "`steps` must be plan steps"),  # type: ignore[arg-type]
        (lambda: Plan(source=pl.col("x")), TypeError, "`source` must be None"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_a_bad_step_names_its_actor_and_what_it_got(
    make: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", "\\(").replace(")", "\\)")):
        make()
