"""NDJSON: read in blocks of lines (one rank or two, local or on S3), written as Polars writes it;
compared with Polars reading the same files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from ranks import run
from s3_server import S3Bucket, s3, s3_server

import actors
from streamnet import Context, FileReadError, Network, SchemaError

__all__ = ["s3", "s3_server"]  # fixtures, imported for pytest


def _read(source: Any, **kwargs: Any) -> pl.DataFrame:
    ctx = Context()
    ch = ctx.create_channel()
    sink = actors.collect(ctx, ch, into="polars")
    Network(ctx, [actors.read_ndjson(ctx, ch, source, **kwargs), sink]).run()
    result: pl.DataFrame = sink.result()
    return result


def _frame(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "i": range(n),
            "f": [i / 7 if i % 5 else None for i in range(n)],
            "s": [f"v{i}" if i % 3 else None for i in range(n)],
            "l": [[i, i + 1] for i in range(n)],
        }
    )


@settings(max_examples=15, deadline=None)
@given(n=st.integers(0, 300), block=st.integers(16, 4096), nranks=st.integers(1, 3))
def test_read_ndjson_equals_polars_in_any_blocks_and_ranks(
    tmp_path_factory: pytest.TempPathFactory, n: int, block: int, nranks: int
) -> None:
    path = tmp_path_factory.mktemp("nd") / "t.ndjson"
    _frame(max(n, 1)).write_ndjson(path)

    async def job(ctx: Context) -> pl.DataFrame:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch, into="polars")
        await Network(ctx, [actors.read_ndjson(ctx, ch, path, block_size=block), sink]).run_async()
        result: pl.DataFrame = sink.result()
        return result

    parts = run(nranks, job)
    assert_frame_equal(pl.concat(parts), pl.read_ndjson(path))


def test_write_ndjson_round_trips_through_polars(tmp_path: Path) -> None:
    frame = _frame(1000)
    ctx = Context()
    ch = ctx.create_channel()
    source = actors.from_polars(ctx, ch, frame, chunk_rows=128)
    writer = actors.write_ndjson(ctx, ch, tmp_path / "out", partitioned=True)
    Network(ctx, [source, writer]).run()
    assert writer.result().chunks == 8
    assert_frame_equal(pl.read_ndjson(sorted((tmp_path / "out").glob("*.ndjson"))), frame)
    assert_frame_equal(_read(tmp_path / "out"), frame)


def test_ndjson_on_s3_round_trips(s3: S3Bucket) -> None:
    frame = _frame(500)
    ctx = Context()
    ch = ctx.create_channel()
    source = actors.from_polars(ctx, ch, frame, chunk_rows=100)
    uri = s3.uri("j/out.ndjson")
    Network(ctx, [source, actors.write_ndjson(ctx, ch, uri, storage_options=s3.storage_options)]).run()
    assert s3.objects() == ["j/out.ndjson"]
    assert_frame_equal(pl.read_ndjson(uri, storage_options=s3.polars_options), frame)
    assert_frame_equal(_read(uri, storage_options=s3.storage_options, block_size=1000), frame)


def test_a_line_of_another_type_names_the_file_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": "x"}\n')
    with pytest.raises(FileReadError, match=r"`.*bad\.ndjson` as NDJSON: a line among lines 1 to 3"):
        _read(path, schema={"a": pl.Int64})


def test_files_of_different_schemas_name_both(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_text('{"a": 1}\n')
    (tmp_path / "b.ndjson").write_text('{"b": 1}\n')
    with pytest.raises(SchemaError, match=r"`.*b\.ndjson` does not have the schema of `.*a\.ndjson`"):
        _read(tmp_path)
