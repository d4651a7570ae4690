"""Arrow types through sources, transforms and sinks: kept (up to flavour), or a clear error.

A type is never changed implicitly. Flavours of one logical type (``string`` /
``large_string``...) come out in their canonical form. A type Polars does not
hold exactly passes through the actors that work on Arrow (``collect``,
``write_parquet``) untouched, and the actors that compute with Polars refuse it
with a `SchemaError` naming the column and the type; ``actors.cast`` converts it
on purpose, with Polars' result.
"""

from __future__ import annotations

import datetime
import decimal
import re
import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ranks
from polars.testing import assert_frame_equal

import actors
from streamnet import Context, Network, SchemaError, TableChunk
from streamnet._schema import canonical_type

N = 5


def _column(dtype: pa.DataType, value: Any) -> pa.Array:
    return pa.array([value if i % 3 else None for i in range(N)], dtype)


def _optional(name: str, *args: Any) -> pa.DataType | None:
    make = getattr(pa, name, None)
    return make(*args) if make is not None else None


# name: (column, whether Polars holds its type exactly, the Polars type `cast` converts it to)
CASES: dict[str, tuple[pa.Array, bool, Any]] = {
    "int8": (_column(pa.int8(), 7), True, None),
    "string": (_column(pa.string(), "a"), True, None),
    "string_view": (_column(_optional("string_view") or pa.string(), "a"), True, None),
    "binary": (_column(pa.binary(), b"a"), True, None),
    "list": (_column(pa.list_(pa.string()), ["a", None]), True, None),
    "struct": (_column(pa.struct([("x", pa.string())]), {"x": "a"}), True, None),
    "dictionary": (
        pa.array(["a", None, "b", "a", "b"])
        .dictionary_encode()
        .cast(pa.dictionary(pa.int8(), pa.string())),
        True,
        None,
    ),
    "date32": (_column(pa.date32(), datetime.date(2020, 1, 2)), True, None),
    "timestamp_us_tz": (
        _column(pa.timestamp("us", "UTC"), datetime.datetime(2020, 1, 2, 3, 4, 5)),
        True,
        None,
    ),
    "decimal128": (_column(pa.decimal128(10, 2), decimal.Decimal("1.25")), True, None),
    "date64": (_column(pa.date64(), datetime.date(2020, 1, 2)), False, pl.Date),
    "timestamp_s": (
        _column(pa.timestamp("s"), datetime.datetime(2020, 1, 2, 3, 4, 5)),
        False,
        pl.Datetime("us"),
    ),
    "duration_s": (
        _column(pa.duration("s"), datetime.timedelta(seconds=3)),
        False,
        pl.Duration("us"),
    ),
    "time32_s": (_column(pa.time32("s"), datetime.time(1, 2, 3)), False, pl.Time),
    "fixed_size_binary": (_column(pa.binary(2), b"ab"), False, pl.Binary),
    "decimal256": (_column(pa.decimal256(50, 2), decimal.Decimal("1.25")), False, None),
}
if _optional("uuid") is not None:
    CASES["uuid"] = (
        pa.array([uuid.UUID(int=i).bytes if i % 3 else None for i in range(N)], pa.uuid()),
        False,
        pl.Binary,
    )


def _table(name: str) -> pa.Table:
    return pa.table({"k": pa.array(range(N), pa.int64()), name: CASES[name][0]})


def _run(table: pa.Table, middle: Any = None, sink: Any = None) -> Any:
    ctx = Context()
    a, b = ctx.create_channel(name="in"), ctx.create_channel(name="out")
    nodes = [actors.from_arrow(ctx, a, table, chunk_rows=2)]
    end = a
    if middle is not None:
        nodes.append(middle(ctx, a, b))
        end = b
    last = sink(ctx, end) if sink is not None else actors.collect(ctx, end)
    Network(ctx, [*nodes, last]).run()
    return last.result()


def _polars(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


@pytest.mark.parametrize("name", sorted(CASES))
def test_collect_keeps_every_type_up_to_its_flavour(name: str) -> None:
    table = _table(name)
    out = _run(table)
    assert out.schema.field(name).type.equals(canonical_type(table.schema.field(name).type))
    assert out.column(name).to_pylist() == table.column(name).to_pylist()


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_polars_transform_keeps_a_type_polars_holds_and_refuses_the_others(name: str) -> None:
    """Before, date64 came out as a timestamp, timestamp[s] as timestamp[ms], a UUID as
    large_binary, and decimal256(50, 2) panicked (an uncaught BaseException)."""
    table = _table(name)
    _, exact, _ = CASES[name]

    def keep_odd(ctx: Context, a: Any, b: Any) -> Any:
        return actors.filter(ctx, a, b, pl.col("k") % 2 == 1)

    if not exact:
        dtype = re.escape(str(table.schema.field(name).type))
        with pytest.raises(
            SchemaError,
            match=rf"^actor `filter#0`: column `{name}` has type {dtype}, and .*(`actors.cast`|pyarrow)",
        ):
            _run(table, keep_odd)
        return
    out = _run(table, keep_odd)
    assert out.schema.field(name).type.equals(canonical_type(table.schema.field(name).type))
    expected = _polars(table).filter(pl.col("k") % 2 == 1)
    assert_frame_equal(_polars(out), expected)


@pytest.mark.parametrize("name", sorted(CASES))
def test_write_parquet_writes_what_pyarrow_writes(name: str, tmp_path: Path) -> None:
    """The file holds the types pyarrow's own writer gives the same table (Parquet has no
    date64 or seconds: pyarrow stores dates and milliseconds, with either writer)."""
    table = _table(name)
    _run(table, sink=lambda ctx, ch: actors.write_parquet(ctx, ch, tmp_path / "ours.parquet"))
    ours = pq.read_table(tmp_path / "ours.parquet")
    pq.write_table(table, tmp_path / "pyarrow.parquet")
    theirs = pq.read_table(tmp_path / "pyarrow.parquet")
    for field in theirs.schema:
        assert canonical_type(ours.schema.field(field.name).type).equals(
            canonical_type(field.type)
        ), field.name
    assert ours.to_pylist() == theirs.to_pylist()


@pytest.mark.parametrize("name", sorted(n for n, (_, exact, to) in CASES.items() if to is not None))
def test_cast_converts_a_type_polars_does_not_hold_as_polars_would(name: str) -> None:
    table = _table(name)
    _, _, to = CASES[name]
    out = _run(table, lambda ctx, a, b: actors.cast(ctx, a, b, {name: to}))
    expected = _polars(table).cast({name: to})  # Polars' own reading of the table
    assert_frame_equal(_polars(out), expected)


def test_cast_refuses_an_arrow_target_type_polars_does_not_hold() -> None:
    with pytest.raises(SchemaError, match=r"cast: column `d` cannot be cast to date64\[ms\]"):
        _run(_table("date32").rename_columns(["k", "d"]),
             lambda ctx, a, b: actors.cast(ctx, a, b, {"d": pa.date64()}))  # fmt: skip


def test_a_type_polars_cannot_read_is_refused_even_by_cast_never_a_panic() -> None:
    """Polars panics (a BaseException) reading decimal256(50, 2) data: cast refuses it."""
    with pytest.raises(
        SchemaError,
        match=r"column `decimal256` has type decimal256\(50, 2\), and Polars cannot hold it; "
        r".*cast the source table with pyarrow",
    ):
        _run(
            _table("decimal256"),
            lambda ctx, a, b: actors.cast(ctx, a, b, {"decimal256": pl.Float64}),
        )


POLARS_DICTIONARIES = {
    "enum": pl.Series(["b", None, "a"], dtype=pl.Enum(["a", "b", "c"])),
    "enum of 300": pl.Series(["7", "299", None], dtype=pl.Enum([str(i) for i in range(300)])),
    "categorical": pl.Series(["x", "y", None], dtype=pl.Categorical),
    "list of enum": pl.Series([["a"], None, ["b", "a"]], dtype=pl.List(pl.Enum(["a", "b"]))),
    "struct of enum": pl.Series(
        [{"e": "a"}, {"e": None}, None], dtype=pl.Struct({"e": pl.Enum(["a", "b"])})
    ),
}


@pytest.mark.parametrize("name", sorted(POLARS_DICTIONARIES))
def test_a_polars_enum_or_categorical_comes_back_from_arrow_as_it_was(name: str) -> None:
    """Polars exports an Enum or a Categorical as an Arrow dictionary with metadata that
    names it; a chunk holding that Arrow (sent between ranks, spilled from a table) is
    converted back to the same type, not refused as a dictionary Polars would make a
    Categorical."""
    df = pl.DataFrame({"c": POLARS_DICTIONARIES[name], "k": [1, 2, 3]})
    arrow = TableChunk.from_polars(df).to_arrow()
    assert_frame_equal(TableChunk.from_arrow(arrow).to_polars(), df)


def test_a_plain_ordered_dictionary_is_still_refused_naming_the_column() -> None:
    table = pa.table(
        {
            "d": pa.array(["a", "b"])
            .dictionary_encode()
            .cast(pa.dictionary(pa.uint32(), pa.large_string(), ordered=True))
        }
    )
    with pytest.raises(SchemaError, match="column `d` has type dictionary"):
        TableChunk.from_arrow(table).to_polars()


@pytest.mark.parametrize("nranks", [1, 2])
def test_an_enum_column_is_shuffled_and_grouped_across_ranks(nranks: int) -> None:
    """Between ranks a chunk travels as Arrow: the Enum comes back an Enum."""
    enum = pl.Enum(["a", "b", "c"])
    df = pl.DataFrame({"k": range(40), "e": pl.Series(["a", "b", "c", "b"] * 10, dtype=enum)})
    n = ranks.size(nranks)

    async def job(ctx: Context) -> pl.DataFrame:
        raw, moved, out = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, out, into="polars")
        part = df.filter(pl.col("k") % n == ctx.rank)
        await Network(ctx, [
            actors.from_polars(ctx, raw, part, chunk_rows=7),
            actors.shuffle(ctx, raw, moved, ["k"]),
            actors.groupby_agg(ctx, moved, out, "e", {"k": "sum"}),
            sink,
        ]).run_async()  # fmt: skip
        result: pl.DataFrame = sink.result()
        return result

    got = pl.concat(ranks.run(nranks, job))
    expected = df.group_by("e").agg(k_sum=pl.col("k").sum())
    assert_frame_equal(got.sort("e"), expected.sort("e"), check_column_order=False)
