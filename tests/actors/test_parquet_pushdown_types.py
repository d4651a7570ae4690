"""Predicates on every column type the Parquet reader holds, in `filters=` and in a fused
`filter` actor: the rows Polars keeps, and row groups skipped where statistics allow."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

import actors
from streamnet import Context, Network

ROWS, GROUP = 40, 10
UTC = dt.UTC


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = pa.table({
        "sv": pa.array([f"s{i % 5}" for i in range(ROWS)], pa.string_view()),
        "ls": pa.array([f"l{i // 10}" for i in range(ROWS)], pa.large_string()),
        "dec": pa.array([decimal.Decimal(i) / 4 for i in range(ROWS)], pa.decimal128(10, 2)),
        "d": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(ROWS)], pa.date32()),
        "tz": pa.array(
            [dt.datetime(2020, 1, 1, tzinfo=UTC) + dt.timedelta(hours=i) for i in range(ROWS)],
            pa.timestamp("us", tz="Europe/Paris"),
        ),
        "dic": pa.array([f"c{i % 3}" for i in range(ROWS)]).dictionary_encode(),
    })  # fmt: skip
    target = tmp_path_factory.mktemp("types") / "t.parquet"
    pq.write_table(table, target, row_group_size=GROUP)
    return target


NOON = pl.lit(dt.datetime(2020, 1, 1, 12, tzinfo=UTC)).dt.convert_time_zone("Europe/Paris")
CASES = {  # predicate, row groups read at most
    "string_view": (pl.col("sv") == "s3", 4),
    "large_string": (pl.col("ls").is_in(["l1", "l2"]), 2),
    "decimal": (pl.col("dec") > 5, 2),
    "date": (pl.col("d") >= dt.date(2020, 1, 20), 3),
    "timestamp with zone": (pl.col("tz") < NOON, 2),
    "dictionary": (pl.col("dic") == "c1", 4),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("how", ["filters", "filter actor"])
def test_a_predicate_on_each_type_keeps_polars_rows_and_skips_row_groups(
    path: Path, case: str, how: str
) -> None:
    predicate, most = CASES[case]
    want = pl.read_parquet(path).filter(predicate)
    assert 0 < want.height < ROWS
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        nodes: list[Any]
        if how == "filters":
            scan = actors.read_parquet(ctx, b, path, filters=predicate)
            nodes = [scan, sink]
        else:
            scan = actors.read_parquet(ctx, a, path)
            nodes = [scan, actors.filter(ctx, a, b, predicate), sink]
        Network(ctx, nodes).run(progress=False)
    assert_frame_equal(sink.result(), want)
    assert scan.result().row_groups_read <= most


ORDER = pl.Enum(["lo", "mid", "hi"])
CATEGORY_CASES = {
    "enum above": pl.col("e") > "mid",
    "enum at least": pl.col("e") >= "lo",
    "enum below": pl.col("e") < "hi",
    "enum between": pl.col("e").is_between(pl.lit("mid"), pl.lit("hi")),
    "enum equal": pl.col("e") == "hi",
    "categorical above": pl.col("c") > "m",
    "categorical equal": pl.col("c") == "z",
}


@pytest.mark.parametrize("case", list(CATEGORY_CASES))
@pytest.mark.parametrize("how", ["filters", "filter actor"])
def test_enum_and_categorical_predicates_keep_polars_rows(case: str, how: str, tmp_path: Path) -> None:
    """Statistics order a dictionary column's strings as text, an Enum's values compare in
    its categories' order: row groups of "hi" then "lo" then "mid" must not be skipped."""
    target = tmp_path / "c.parquet"
    pl.DataFrame({
        "e": pl.Series(["hi", "hi", "lo", "lo", "mid", "mid"], dtype=ORDER),
        "c": pl.Series(["z", "z", "a", "a", "m", "m"], dtype=pl.Categorical),
    }).write_parquet(target, row_group_size=2)  # fmt: skip
    predicate = CATEGORY_CASES[case]
    want = pl.scan_parquet(target).filter(predicate).collect()
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        if how == "filters":
            nodes: list[Any] = [actors.read_parquet(ctx, b, target, filters=predicate), sink]
        else:
            nodes = [actors.read_parquet(ctx, a, target), actors.filter(ctx, a, b, predicate), sink]
        Network(ctx, nodes).run(progress=False)
    assert_frame_equal(sink.result(), want, check_row_order=False)
