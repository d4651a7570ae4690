from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from polars.testing import assert_frame_equal
from strategies import frames

import actors
from streamnet import Context, FileReadError, Network, SchemaError


def _read(source, **kwargs) -> pl.DataFrame:
    ctx = Context()
    ch = ctx.create_channel()
    sink = actors.collect(ctx, ch, into="polars")
    Network(ctx, [actors.read_csv(ctx, ch, source, **kwargs), sink]).run()
    return sink.result()


@settings(max_examples=20)
@given(frames(max_rows=200))
def test_csv_with_explicit_schema_equals_polars(tmp_path_factory, df: pl.DataFrame) -> None:
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    df.write_csv(path)
    schema = {"i": pa.int64(), "f": pa.float64(), "s": pa.string()}
    out = _read(path, schema=schema, block_size=256)
    expected = pl.read_csv(path, schema={"i": pl.Int64, "f": pl.Float64, "s": pl.String})
    assert_frame_equal(out, expected, check_dtypes=False)


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


def test_csv_bad_value_for_declared_type_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("x\n1\nnot-a-number\n")
    with pytest.raises(FileReadError, match="cannot read `.*bad.csv` as CSV"):
        _read(path, schema={"x": pa.int64()})


def test_csv_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="gone.csv` does not exist"):
        _read(tmp_path / "gone.csv")


def test_csv_empty_file_with_header_keeps_columns(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("a,b\n")
    out = _read(path, schema={"a": pa.int64(), "b": pa.string()})
    assert out.columns == ["a", "b"]
    assert out.height == 0
