from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from strategies import frames

import actors
from streamnet import Context, FileReadError, Network, SchemaError

Quoting = Literal[0, 1, 2, 3]
"""One of the csv module's ``QUOTE_*`` constants."""


def _read(source: str | Path | list[Path], **kwargs: Any) -> pl.DataFrame:
    ctx = Context()
    ch = ctx.create_channel()
    sink = actors.collect(ctx, ch, into="polars")
    Network(ctx, [actors.read_csv(ctx, ch, source, **kwargs), sink]).run()
    frame: pl.DataFrame = sink.result()
    return frame


@settings(max_examples=20)
@given(frames(max_rows=200))
def test_csv_with_explicit_schema_equals_polars(tmp_path_factory: pytest.TempPathFactory, df: pl.DataFrame) -> None:
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    df.write_csv(path)
    schema = {"i": pa.int64(), "f": pa.float64(), "s": pa.string()}
    out = _read(path, schema=schema, block_size=256)
    expected = pl.read_csv(path, schema={"i": pl.Int64, "f": pl.Float64, "s": pl.String})
    assert_frame_equal(out, expected, check_dtypes=False)


@pytest.mark.parametrize("nranks", [1, 2])
def test_csv_typed_columns_parse_as_polars_parses_them(tmp_path: Path, nranks: int) -> None:
    """Categoricals, Enums, timestamps, dates and decimals are read as text and parsed by
    Polars: pyarrow refused dictionaries of uint32 indices, a zone without an offset in
    the text, dates written `2020/01/02`, digits beyond a timestamp's unit or a decimal's
    scale; Polars reads text without an offset as UTC, and rounds a decimal."""
    from streamnet import run_ranks

    path = tmp_path / "t.csv"
    rows = [
        f"2021-0{1 + i % 9}-0{1 + i % 7} 0{i % 10}:30:00.123456789,{'xy'[i % 2]},{i},"
        f"2020/0{1 + i % 9}/1{i % 10},{i}.{i % 1000:03d}"
        for i in range(300)
    ]
    path.write_text("t,s,n,d,m\n" + "\n".join(rows) + "\n,,300,,\n")
    cases: list[dict[str, pl.DataType]] = [
        {"t": pl.Datetime("us", "Europe/Amsterdam"), "s": pl.Categorical(), "d": pl.Date(), "m": pl.Decimal(10, 2)},
        {"t": pl.Datetime("ms", "UTC"), "s": pl.Enum(["x", "y"]), "m": pl.Decimal(12, 4)},
        {"t": pl.Datetime("ns")},
    ]
    for overrides in cases:
        query = pl.scan_csv(path, schema_overrides=overrides)
        want = query.collect()

        async def job(ctx: Context, query: pl.LazyFrame = query) -> pl.DataFrame:
            return await actors.collect_query_async(ctx, query)

        for got in run_ranks(nranks, job):
            assert_frame_equal(got.sort("n"), want)
        assert_frame_equal(_read(path, schema=want.schema, block_size=512).sort("n"), want)
    schema = {"t": pl.String(), "s": pl.Enum(["x"]), "n": pl.Int64(), "d": pl.String(), "m": pl.String()}
    with pytest.raises(FileReadError, match=r"column `s` on line 3 holds a value that is not Enum"):
        _read(path, schema=schema)
    path.write_text("d\n2020-01-01\nJanuary\n")
    with pytest.raises(FileReadError, match=r"column `d` on line 3 holds a value that is not Date.*got 'January'"):
        _read(path, schema={"d": pl.Date()})


@pytest.mark.parametrize("quoted_empty", [False, True])  # read by pyarrow, or as text
def test_csv_booleans_are_true_and_false_in_any_case_as_in_polars(tmp_path: Path, quoted_empty: bool) -> None:
    path = tmp_path / "t.csv"
    empty = '""' if quoted_empty else ""
    path.write_text(f"a,b\ntRuE,{empty}\nFALSE,2\n,3\nTrue,4\n")
    for schema in ({"a": pl.Boolean(), "b": pl.Int64()}, None):
        want = pl.read_csv(path, schema=schema)
        assert_frame_equal(_read(path, schema=schema), want)
    path.write_text(f"a,b\ntrue,{empty}\n1,2\n")  # pyarrow's `1` is no boolean in Polars
    with pytest.raises(pl.exceptions.ComputeError):
        pl.read_csv(path, schema={"a": pl.Boolean(), "b": pl.Int64()})
    with pytest.raises(FileReadError, match=r"column `a` on line 3 holds a value that is not bool.*got '1'"):
        _read(path, schema={"a": pl.Boolean(), "b": pl.Int64()})


def test_csv_inferred_schema_across_small_blocks(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pl.DataFrame({"a": range(5000), "b": [f"x{i}" for i in range(5000)]}).write_csv(path)
    out = _read(path, block_size=4096)
    assert out.height == 5000
    assert out["a"].sum() == sum(range(5000))


def test_csv_without_header_takes_names_from_schema(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("1,x\n2,y\n")
    out = _read(path, has_header=False, schema={"n": pa.int32(), "t": pa.string()})
    assert out.to_dict(as_series=False) == {"n": [1, 2], "t": ["x", "y"]}


def test_csv_files_in_order_and_schema_mismatch_named(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,y\n3,4\n")
    assert _read(tmp_path)["x"].to_list() == [1, 3]
    (tmp_path / "c.csv").write_text("x,y\nfoo,4\n")
    with pytest.raises(SchemaError, match=r"c.csv` does not have the schema of `.*a.csv`"):
        _read(tmp_path)
    with pytest.raises(
        SchemaError, match=r"c.csv` has columns \['x', 'y'\], but the schema names \['x', 'z'\]"
    ):
        _read(tmp_path / "c.csv", schema={"x": pa.string(), "z": pa.int64()})


def test_csv_bad_value_for_declared_type_names_the_file_column_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("x\n1\nnot-a-number\n")
    with pytest.raises(
        FileReadError,
        match=r"cannot read `.*bad.csv` as CSV: column `x` on line 3 holds a value that is not "
        r"int64, its type in `schema=`; pass a type that holds it \(such as pa.string\(\)\); "
        r"got 'not-a-number'",
    ):
        _read(path, schema={"x": pa.int64()})


def _ints_then(path: Path, bad: str, *, before: int, quoted_breaks: set[int]) -> int:
    """A CSV file of int rows, then one whose `c` is ``bad``; the line of that row.

    The rows whose number is in ``quoted_breaks`` have a line break inside a quoted value.
    """
    lines = ["a,b,c"]
    for i in range(before):
        lines.append(f'{i},"x\ny",{i}' if i in quoted_breaks else f"{i},x,{i}")
    lines.append(f"{before},z,{bad}")
    lines.extend(f"{i},x,{i}" for i in range(before + 1, before + 20))
    path.write_text("\n".join(lines) + "\n")
    return 2 + before + len(quoted_breaks & set(range(before)))


@settings(max_examples=15, deadline=None)
@given(
    st.integers(200, 600),  # more rows than the first block holds
    st.sets(st.integers(0, 600), max_size=5),
    st.sampled_from([64, 256, 1024]),
)
def test_csv_value_that_does_not_fit_the_inferred_type_names_column_line_type_and_fix(
    tmp_path_factory: pytest.TempPathFactory, before: int, quoted_breaks: set[int], block: int
) -> None:
    """Ints in the first block make `c` an int64 column; a later `0.5` does not fit."""
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    line = _ints_then(path, "0.5", before=before, quoted_breaks=quoted_breaks)
    multiline = bool(quoted_breaks)
    with pytest.raises(
        FileReadError,
        match=rf"cannot read `.*t.csv` as CSV: column `c` on line {line} holds a value that is "
        rf"not int64, the type inferred from the first block of the file \(`block_size`={block} "
        r"bytes\); pass `schema=` with a type that holds it \(such as pa.float64\(\)\), or a "
        r"larger `block_size` to infer the types from more rows; got '0.5'",
    ):
        _read(path, block_size=block, multiline=multiline)
    with pytest.raises(pl.exceptions.ComputeError):  # Polars, inferring from as few rows
        pl.read_csv(path, infer_schema_length=10)
    # The fix the message gives reads what Polars reads with that type.
    schema = {"a": pa.int64(), "b": pa.string(), "c": pa.float64()}
    out = _read(path, block_size=block, schema=schema, multiline=multiline)
    assert_frame_equal(out, pl.read_csv(path, schema_overrides={"c": pl.Float64}))


def test_csv_value_that_does_not_fit_on_a_rank_names_its_line_in_the_file(tmp_path: Path) -> None:
    from bounded import run_ranks_within

    path = tmp_path / "t.csv"
    line = _ints_then(path, "abc", before=3000, quoted_breaks=set())

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch)
        await Network(ctx, [actors.read_csv(ctx, ch, path, block_size=1024), sink]).run_async()

    with pytest.raises(
        FileReadError,
        match=rf"t.csv` \(the rows in bytes .*\) as CSV: column `c` on line {line} holds a "
        r"value that is not int64, .*\(such as pa.string\(\)\).*; got 'abc'",
    ) as info:
        run_ranks_within(60, 2, job)
    assert "on rank 1 of 2" in "".join(getattr(info.value, "__notes__", []))


def test_csv_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="gone.csv` does not exist"):
        _read(tmp_path / "gone.csv")


def test_csv_empty_file_with_header_keeps_columns(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("a,b\n")
    out = _read(path, schema={"a": pa.int64(), "b": pa.string()})
    assert out.columns == ["a", "b"]
    assert out.height == 0


# -- no row lost or garbled silently ---------------------------------------------------------


def _rows_with_an_unclosed_quote(path: Path, at_line: int, rows: int = 4999) -> None:
    lines = ["a,b"] + [f"{i},x{i}" for i in range(rows)]
    lines[at_line - 1] = '2,"never closed'
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("block_size", [1 << 22, 1 << 12])
def test_csv_quote_that_never_closes_names_the_file_and_line(
    tmp_path: Path, block_size: int
) -> None:
    """It used to take in the rest of the file as one value: 3 of 4,999 rows, no error."""
    path = tmp_path / "q.csv"
    _rows_with_an_unclosed_quote(path, at_line=4)
    with pytest.raises(
        FileReadError,
        match=r"cannot read `.*q.csv` as CSV: the (value of column `b`|quoted value that opens) "
        r"on line 4 (holds a line break|does not close on that line); every row must be on one "
        r"line: .*pass `multiline=True`",
    ):
        _read(path, block_size=block_size)
    where = "opens on line 4 is never closed" if block_size > path.stat().st_size else "straddles"
    with pytest.raises(FileReadError, match=rf"cannot read `.*q.csv` as CSV: .*{where}"):
        _read(path, block_size=block_size, multiline=True)
    (tmp_path / "q2.csv").write_text('a,b\n1,"y\n')  # on the last line
    with pytest.raises(
        FileReadError, match=r"q2\.csv` as CSV: the quoted value that opens on line 2"
    ):
        _read(tmp_path / "q2.csv", multiline=True)


def _lost_quote(path: Path, quoting: Quoting, *, name_first: bool) -> int:
    """5,000 rows written by Python's csv module, one of whose quotes is lost; its line."""
    rows = [(f"name {i}", i) if name_first else (i, f"name {i}") for i in range(5000)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=quoting)
    writer.writerow(["name", "id"] if name_first else ["id", "name"])
    writer.writerows(rows)
    path.write_text(buffer.getvalue().replace('"name 2500"', '"name 2500', 1))
    return 2502


@pytest.mark.parametrize("block_size", [1 << 22, 1 << 12])
@pytest.mark.parametrize(
    ("quoting", "name_first"),
    [(csv.QUOTE_ALL, False), (csv.QUOTE_NONNUMERIC, True), (csv.QUOTE_NONNUMERIC, False)],
    ids=["all quoted", "strings quoted, name first", "strings quoted, name last"],
)
def test_csv_quote_lost_mid_file_is_named_wherever_the_file_ends(
    tmp_path: Path, block_size: int, quoting: Quoting, name_first: bool
) -> None:
    """Files that end with a quoted value (Excel exports, csv.QUOTE_ALL) used to be trusted:
    2,500 of 5,000 rows came back, or a row glued to the next, with no error."""
    path = tmp_path / "lost.csv"
    line = _lost_quote(path, quoting, name_first=name_first)
    with pytest.raises(pl.exceptions.ComputeError):
        pl.read_csv(path)
    with pytest.raises(
        FileReadError,
        match=rf"cannot read `.*lost.csv` as CSV: the (value of column `name`|quoted value "
        rf"that opens) on line {line} (holds a line break|does not close on that line)",
    ):
        _read(path, block_size=block_size)


def test_csv_quote_lost_mid_file_in_a_file_ending_with_a_quote_is_named(tmp_path: Path) -> None:
    lines = ["a,b"] + [f"{i},x{i}" for i in range(5000)]
    lines[2500] = '2499,"oops'
    lines[-1] = '4999,"last"'
    path = tmp_path / "endq.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileReadError, match=r"value of column `b` on line 2501 holds a line"):
        _read(path)


def test_csv_quote_that_never_closes_on_a_rank_is_named(tmp_path: Path) -> None:
    from bounded import run_ranks_within

    path = tmp_path / "q.csv"
    _rows_with_an_unclosed_quote(path, at_line=4000)

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch)
        await Network(ctx, [actors.read_csv(ctx, ch, path), sink]).run_async()

    with pytest.raises(
        FileReadError,
        match=r"q.csv` \(the rows in bytes .*\) as CSV: the (value of column `b`|quoted value "
        r"that opens) on line 4000",
    ):
        run_ranks_within(60, 2, job)


@settings(max_examples=25)
@given(
    st.lists(
        st.one_of(st.none(), st.text(alphabet='ab ,"\n\r\t', max_size=8)), min_size=1, max_size=40
    ),
    st.sampled_from([1 << 10, 1 << 12, 1 << 20]),
)
def test_csv_values_with_quotes_and_line_breaks_equal_polars(
    tmp_path_factory: pytest.TempPathFactory, values: list[str | None], block_size: int
) -> None:
    """With `multiline=True` they read as Polars reads them; without it, the first value
    with a line break raises, naming its line."""
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    df = pl.DataFrame(
        {"n": range(len(values)), "s": values}, schema={"n": pl.Int64, "s": pl.String}
    )
    df.write_csv(path)
    out = _read(path, block_size=block_size, multiline=True)
    assert_frame_equal(out, pl.read_csv(path, schema=df.schema))
    assert_frame_equal(out, df)
    broken = [i for i, v in enumerate(values) if v is not None and ("\n" in v or "\r" in v)]
    if not broken:
        assert_frame_equal(_read(path, block_size=block_size), df)
        return
    with pytest.raises(FileReadError, match=r"every row must be on one line") as info:
        _read(path, block_size=block_size)
    assert f"on line {broken[0] + 2} " in str(info.value)


def _latin1_file(path: Path, *, late: bool) -> None:
    rows = [b"%d,x%d" % (i, i) for i in range(3000 if late else 2)]
    rows.insert(len(rows) - 1, "7,café".encode("latin-1"))
    path.write_bytes(b"a,b\n" + b"\n".join(rows) + b"\n")


@pytest.mark.parametrize("late", [False, True], ids=["first block", "later block"])
def test_csv_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path: Path, late: bool) -> None:
    """They used to make a silent Binary column (or fail in a later block)."""
    path = tmp_path / "l.csv"
    _latin1_file(path, late=late)
    line = 3001 if late else 3
    message = (
        rf"cannot read `.*l.csv` as CSV: it holds bytes that are not utf-8 text on line {line}"
    )
    with pytest.raises(FileReadError, match=message):
        _read(path, block_size=1 << 12)
    with pytest.raises(FileReadError, match=message):
        _read(path, schema={"a": pa.int64(), "b": pa.string()}, block_size=1 << 12)
    out = _read(path, encoding="latin-1", block_size=1 << 12)
    assert_frame_equal(out, pl.read_csv(path, encoding="latin-1"))
    assert "café" in out["b"].to_list()


def test_csv_header_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes("prix €,b\n1,2\n".encode("cp1252"))
    with pytest.raises(
        FileReadError, match=r"h.csv` as CSV: .*not utf-8 text on line 1 \(byte 5\)"
    ):
        _read(path)
    assert _read(path, encoding="cp1252").columns == ["prix €", "b"]
    with pytest.raises(ValueError, match="`encoding` must name a Python codec, got 'klingon'"):
        _read(path, encoding="klingon")


def test_csv_header_only_file_gives_string_columns_as_polars_and_duckdb(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "h.csv"
    path.write_text("a,b\n")
    out = _read(path)
    assert out.schema == pl.read_csv(path).schema == {"a": pl.String, "b": pl.String}
    assert duckdb.read_csv(str(path)).types == ["VARCHAR", "VARCHAR"]
    assert out.height == 0


@pytest.mark.parametrize("schema", [None, {"a": pa.int64(), "b": pa.string()}])
def test_csv_header_only_file_without_a_final_line_break(
    tmp_path: Path, schema: dict[str, pa.DataType] | None
) -> None:
    """pyarrow found no columns in it ("Empty CSV file"); Polars reads no rows."""
    path = tmp_path / "h.csv"
    path.write_text("a,b")
    out = _read(path, schema=schema)
    expected = pl.read_csv(path, schema=None if schema is None else {"a": pl.Int64, "b": pl.String})
    assert_frame_equal(out, expected)


def test_csv_column_with_no_value_is_a_string_column(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("a,b\n1,\n2,\n")
    out = _read(path)
    assert_frame_equal(out, pl.read_csv(path))
    assert out.schema["b"] == pl.String


def test_csv_empty_file_with_a_schema_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "z.csv"
    path.write_bytes(b"")
    out = _read(path, schema={"a": pa.int64(), "b": pa.string()})
    assert out.schema == {"a": pl.Int64, "b": pl.String} and out.height == 0
    with pytest.raises(FileReadError, match=r"z.csv` as CSV: the file is empty.*pass `schema=`"):
        _read(path)


# -- write_csv ---------------------------------------------------------------------------------


def _write_csv(frame: pl.DataFrame, path: Path, chunk_rows: int, **kwargs: Any) -> Any:
    ctx = Context()
    ch = ctx.create_channel()
    source = actors.from_polars(ctx, ch, frame, chunk_rows=chunk_rows)
    writer = actors.write_csv(ctx, ch, path, **kwargs)
    Network(ctx, [source, writer]).run()
    return writer.result()


@settings(max_examples=10, deadline=None)
@given(n=st.integers(0, 200), chunk_rows=st.integers(1, 64))
def test_write_csv_writes_what_polars_writes(
    tmp_path_factory: pytest.TempPathFactory, n: int, chunk_rows: int
) -> None:
    frame = pl.DataFrame(
        {"i": range(n), "s": [None if i % 4 == 0 else f'a,"{i}"\n' for i in range(n)],
         "f": [i / 3 for i in range(n)]}
    )  # fmt: skip
    path = tmp_path_factory.mktemp("w") / "out.csv"
    _write_csv(frame, path, chunk_rows)
    assert path.read_text() == frame.write_csv()


def test_write_csv_one_file_per_chunk_reads_back(tmp_path: Path) -> None:
    frame = pl.DataFrame({"i": range(100), "s": [f"v{i}" for i in range(100)]})
    report = _write_csv(frame, tmp_path / "out", 30, partitioned=True, delimiter=";")
    assert report.chunks == 4 and report.rows == 100
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_SUCCESS", *[f"part-{i:08d}.csv" for i in range(4)]
    ]
    back = pl.concat(pl.read_csv(p, separator=";") for p in sorted((tmp_path / "out").glob("*.csv")))
    assert_frame_equal(back, frame)


def test_csv_reads_only_empty_fields_as_null_as_polars_does(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('s,f,i\nNA,NaN,1\nnull,nan,\n"",-inf,3\nN/A,,4\n')
    schema = {"s": pl.String, "f": pl.Float64, "i": pl.Int64}
    assert_frame_equal(_read(path, schema=schema), pl.read_csv(path, schema=schema))
    assert_frame_equal(_read(path), pl.read_csv(path))  # "NaN" and "-inf" are text to Polars


def test_a_row_longer_than_a_block_is_not_blamed_on_a_quote(tmp_path: Path) -> None:
    """No quote in the file: the error says the row is longer than `block_size`."""
    path = tmp_path / "long.csv"
    path.write_text("a,b\n1,x\n123456789012345678901234,z\n2,w\n")
    with pytest.raises(FileReadError, match=r"a row is longer than `block_size`") as raised:
        _read(path, block_size=16, schema={"a": pa.string(), "b": pa.string()})
    assert "quoted value that opens" not in str(raised.value)


# Texts whose type pyarrow and Polars infer differently, and plain ones.
_CELLS = st.sampled_from(
    ["1", "-7", "007", "+5", " 1", "0x10", "1.5", "-.5", "1e5", "nan", "inf", "true", "False",
     "TRUE", "12:30:00", "2020-01-01", "2020-01-01 10:00:00", "x", "", '"3"', "1_000"]
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(_CELLS, min_size=3, max_size=3), min_size=1, max_size=30),
    st.sampled_from([64, 1 << 20]),
)
@example(  # a boolean column read as text (an integer column and `0x`): its error named
    rows=[["true", "1", "1"], ["true", "1", "1"], ["0x10", "2020-01-01 10:00:00", "x"]],
    block_size=64,
)
def test_csv_inferred_types_are_those_polars_infers(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], block_size: int
) -> None:
    """pyarrow alone read `+5` as 5.0, `0x10` as 16, ` 1` as 1 and `12:30:00` as a time;
    the same file now reads as `pl.read_csv` reads it (types from the first block)."""
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_text("a,b,c\n" + "".join(",".join(row) + "\n" for row in rows))
    first = len(_first_block_rows(path, block_size))
    try:
        expected = pl.read_csv(path, infer_schema_length=first)
    except pl.exceptions.ComputeError:  # a later value not of the first block's type
        with pytest.raises(FileReadError, match="the type inferred from the first block"):
            _read(path, block_size=block_size)
        return
    assert_frame_equal(_read(path, block_size=block_size), expected)


def _first_block_rows(path: Path, block_size: int) -> list[bytes]:
    """The rows whose line ends in the first ``block_size`` bytes (the header aside)."""
    head = path.read_bytes()[:block_size]
    return head[: head.rfind(b"\n") + 1].splitlines()[1:]


def test_csv_integers_too_large_for_int64_keep_every_digit(tmp_path: Path) -> None:
    """pyarrow alone read them as floats; Polars reads an Int128, which Arrow has no type
    for, so they read as a decimal of 38 digits."""
    path = tmp_path / "t.csv"
    path.write_text("id,n\n123456789012345678901,1\n-98765432109876543210,2\n")
    out = _read(path)
    assert out.schema["id"] == pl.Decimal(38, 0)
    assert out["id"].cast(pl.Int128).to_list() == pl.read_csv(path)["id"].to_list()


def test_csv_types_inferred_from_a_block_cut_inside_a_quoted_line_break(tmp_path: Path) -> None:
    """The rows Polars infers from end at a line break outside quotes, so a block that
    ends inside a multiline value still infers its columns' types."""
    path = tmp_path / "t.csv"
    rows = "".join(f'{i},"line\nbreak {i}",+{i}\n' for i in range(200))
    path.write_text("n,s,p\n" + rows)
    out = _read(path, multiline=True, block_size=1000)
    assert_frame_equal(out, pl.read_csv(path))
    assert out.schema == pl.Schema({"n": pl.Int64, "s": pl.String, "p": pl.String})


@pytest.mark.parametrize("nranks", [1, 2])
def test_csv_header_naming_a_column_twice_reads_as_polars_renames_it(
    tmp_path: Path, nranks: int
) -> None:
    """The columns were both `a`, which broke the first step that made a Polars frame."""
    from bounded import run_ranks_within

    path = tmp_path / "d.csv"
    path.write_text("a,b,a,a\n" + "".join(f"{i},x{i},{i / 4},+{i}\n" for i in range(500)))
    parts: dict[int, pl.DataFrame] = {}

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch, into="polars")
        await Network(ctx, [actors.read_csv(ctx, ch, path, block_size=1024), sink]).run_async()
        parts[ctx.rank] = sink.result()

    run_ranks_within(60, nranks, job)
    out = pl.concat(parts[rank] for rank in range(nranks))
    expected = pl.read_csv(path)
    assert expected.columns == ["a", "b", "a_duplicated_0", "a_duplicated_1"]
    assert_frame_equal(out, expected)


@pytest.mark.parametrize("late", [False, True], ids=["first block", "later block"])
@pytest.mark.parametrize("row", ["7", "7,x,y"], ids=["fewer", "more"])
def test_csv_row_with_the_wrong_number_of_values_names_its_line(
    tmp_path: Path, late: bool, row: str
) -> None:
    path = tmp_path / "r.csv"
    before = 3000 if late else 2
    path.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(before)) + row + "\n1,2\n")
    values = row.count(",") + 1
    with pytest.raises(
        FileReadError,
        match=rf"r.csv` as CSV: line {before + 2} has {values} values?, where the file has 2 "
        rf"columns; every row must have one value per column .*; got '{row}'",
    ):
        _read(path, block_size=1024)


@pytest.mark.parametrize("delimiter", [";;", "", "§", 1])
def test_csv_delimiter_that_is_not_one_ascii_character_is_refused(
    tmp_path: Path, delimiter: object
) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    with pytest.raises(ValueError, match=r"`delimiter` must be one ASCII character, got "):
        _read(path, delimiter=delimiter)


@pytest.mark.parametrize("nranks", [1, 2])
def test_csv_empty_last_value_of_a_file_without_a_final_line_break_is_null(
    tmp_path: Path, nranks: int
) -> None:
    """pyarrow read it as "" when a quoted value came before it in its row; Polars, and
    every other row, read an empty value as null. On 2 ranks the file is cut in ranges and
    the last range ends the file."""
    from bounded import run_ranks_within

    path = tmp_path / "t.csv"
    path.write_text("a,b\n" + "".join(f'"x{i}",\n' for i in range(400)) + '"last",')
    parts: dict[int, pl.DataFrame] = {}

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch, into="polars")
        await Network(ctx, [actors.read_csv(ctx, ch, path, block_size=1024), sink]).run_async()
        parts[ctx.rank] = sink.result()

    run_ranks_within(60, nranks, job)
    out = pl.concat(parts[rank] for rank in range(nranks))
    assert_frame_equal(out, pl.read_csv(path))
    assert out["b"].null_count() == 401


def test_csv_header_only_utf16_file_without_a_final_line_break(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes("a,b".encode("utf-16"))
    out = _read(path, encoding="utf-16")
    assert out.schema == pl.Schema({"a": pl.String, "b": pl.String}) and out.height == 0


def test_csv_value_that_does_not_fit_an_inferred_decimal_names_column_and_line(
    tmp_path: Path,
) -> None:
    """A column of integers too large for int64 reads as a decimal; a later value that is
    not one is named as any other that does not fit its type (pyarrow's own message for a
    decimal named neither the line nor the fix)."""
    path = tmp_path / "t.csv"
    rows = "".join(f"{10**20 + i},{i}\n" for i in range(300))
    path.write_text("big,n\n" + rows + "x,1\n")
    with pytest.raises(
        FileReadError,
        match=r"column `big` on line 302 holds a value that is not decimal128, the type "
        r"inferred from the first block .*\(such as pa.string\(\)\).*; got 'x'",
    ):
        _read(path, block_size=1024)


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("first_null", [3, 2500], ids=["first block", "later block"])
def test_csv_quoted_empty_value_of_a_typed_column_is_null_as_in_polars(
    tmp_path: Path, nranks: int, first_null: int
) -> None:
    """Python's csv module writes None as `""` when it quotes every value; Polars reads
    that as null in a column that is not text (and as "" in a text column). pyarrow raised
    on it; the reader now goes on reading such columns as text and converts them."""
    from bounded import run_ranks_within

    path = tmp_path / "q.csv"
    rows = [
        [None if i >= first_null and i % 13 == 0 else i, "" if i % 7 == 0 else f"s{i}",
         None if i >= first_null and i % 5 == 0 else i / 2,
         None if i >= first_null and i % 11 == 0 else i % 3 == 0]
        for i in range(4000)
    ]  # fmt: skip
    with path.open("w", newline="") as file:
        writer = csv.writer(file, quoting=csv.QUOTE_ALL)
        writer.writerow(["i", "s", "f", "b"])
        writer.writerows(rows)
    schema = {"i": pa.int64(), "s": pa.string(), "f": pa.float64(), "b": pa.bool_()}
    parts: dict[int, pl.DataFrame] = {}

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch, into="polars")
        source = actors.read_csv(ctx, ch, path, schema=schema, block_size=1 << 12)
        await Network(ctx, [source, sink]).run_async()
        parts[ctx.rank] = sink.result()

    run_ranks_within(60, nranks, job)
    out = pl.concat(parts[rank] for rank in range(nranks))
    expected = pl.read_csv(
        path, schema={"i": pl.Int64, "s": pl.String, "f": pl.Float64, "b": pl.Boolean}
    )
    assert_frame_equal(out, expected)
    assert out["i"].null_count() > 0 and (out["s"] == "").sum() > 0


def test_csv_value_that_does_not_convert_after_a_quoted_empty_one_names_its_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.csv"
    lines = ['"a","b"'] + [f'"{i}","x"' for i in range(2000)]
    lines[10] = '"","x"'
    lines[1500] = '"oops","x"'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        FileReadError,
        match=r"column `a` on line 1501 holds a value that is not int64, its type in `schema=`"
        r".*; got 'oops'",
    ):
        _read(path, schema={"a": pa.int64(), "b": pa.string()}, block_size=1 << 10)


def test_csv_header_that_differs_from_the_schema_is_named_with_a_quoted_empty_value(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.csv"
    path.write_text('"a","c"\n"","x"\n')
    with pytest.raises(SchemaError, match=r"has columns \['a', 'c'\], but the schema names"):
        _read(path, schema={"a": pa.int64(), "b": pa.string()})


def test_a_hexadecimal_value_in_an_integer_column_is_refused_as_polars_refuses_it(
    tmp_path: Path,
) -> None:
    """pyarrow reads `0x10` as 16 where a column is of integers; Polars cannot parse it as
    one. A later block's `0x10` fails naming the column, the line and the value; given as
    an integer by `schema=`, too; `0x` in a text column reads as it is."""
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,1,1\n1,12:30:00,1\n1,12:30:00,1\n1,2020-01-01 10:00:00,0x10\n")
    with pytest.raises(pl.exceptions.ComputeError):
        pl.read_csv(path, infer_schema_length=3)
    with pytest.raises(FileReadError, match=r"column `c` on line 5 holds a value that is not int64.*got '0x10'"):
        _read(path, block_size=64)
    schema = pa.schema([("a", pa.int64()), ("b", pa.string()), ("c", pa.int64())])
    with pytest.raises(FileReadError, match=r"column `c` on line 5 .* its type in `schema=`.*got '0x10'"):
        _read(path, schema=schema)
    text = tmp_path / "text.csv"
    text.write_text("id,code\n1,0x1F\n2,0XAB\n3,7\n")
    assert_frame_equal(_read(text), pl.read_csv(text))
