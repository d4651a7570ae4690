"""Sources split their input among ranks; sinks write one set of files per rank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from bounded import run_ranks_within
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from strategies import frames

import actors
from streamnet import (
    Context,
    FileReadError,
    Message,
    Network,
    SchemaError,
    TableChunk,
    define_actor,
    rank_share,
)

RANKS = [1, 2, 3]


@define_actor
async def chunks_of(ctx: Context, ch_in: Any, into: list[pa.Table]) -> None:
    """Keep every chunk as it arrives (to see the empty ones too)."""
    while (msg := await ch_in.recv(ctx)) is not None:
        into.append(TableChunk.from_message(msg).to_arrow())


def read_on_ranks(nranks: int, make_source: Any) -> list[list[pa.Table]]:
    """Each rank's chunks from ``make_source(ctx, ch)``, in rank order."""

    async def job(ctx: Context) -> list[pa.Table]:
        ch = ctx.create_channel()
        got: list[pa.Table] = []
        await Network(ctx, [make_source(ctx, ch), chunks_of(ctx, ch, got)]).run_async()
        return got

    return run_ranks_within(60, nranks, job)


def frame_of(chunks: list[pa.Table]) -> pl.DataFrame:
    assert chunks, "a rank delivered no chunk at all"
    result = pl.from_arrow(pa.concat_tables(chunks))
    assert isinstance(result, pl.DataFrame)
    return result


# -- how work is divided --------------------------------------------------------------------


@settings(max_examples=60)
@given(st.lists(st.integers(0, 50), max_size=30), st.integers(1, 7))
def test_rank_share_is_a_contiguous_balanced_partition(weights: list[int], nranks: int) -> None:
    shares = [rank_share(weights, rank, nranks) for rank in range(nranks)]
    assert [i for share in shares for i in share] == list(range(len(weights)))
    total, largest = sum(weights), max(weights, default=0)
    for share in shares:
        if total:
            assert abs(sum(weights[i] for i in share) - total / nranks) <= largest


# -- read_parquet ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parquet_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three files of 8 row groups of uneven sizes; `id` runs through all of them in order."""
    folder = tmp_path_factory.mktemp("ranked-pq")
    rng = np.random.default_rng(5)
    paths, start = [], 0
    for name, rows, group in [("a", 2500, 1000), ("b", 1200, 300), ("c", 700, 700)]:
        ids = np.arange(start, start + rows)
        start += rows
        pl.DataFrame(
            {
                "id": ids,
                "k": rng.integers(0, 12, size=rows),
                "v": rng.normal(size=rows),
                "s": rng.choice(["red", "green", "blue"], size=rows),
            }
        ).write_parquet(folder / f"{name}.parquet", row_group_size=group)
        paths.append(folder / f"{name}.parquet")
    return paths


PREDICATES = {
    "none": None,
    "pushed": (pl.col("id") >= 1800) & (pl.col("id") < 4000),
    "exact only": pl.col("s").str.contains("ee"),
}


@pytest.mark.parametrize("nranks", RANKS)
@pytest.mark.parametrize("predicate", list(PREDICATES))
def test_parquet_ranks_read_every_row_once_in_order(
    parquet_files: list[Path], nranks: int, predicate: str
) -> None:
    pred, columns = PREDICATES[predicate], ["id", "s", "v"]
    nodes: list[Any] = []

    def source(ctx: Context, ch: Any) -> Any:
        nodes.append(actors.read_parquet(ctx, ch, parquet_files, columns=columns, filters=pred))
        return nodes[-1]

    outs = [frame_of(chunks) for chunks in read_on_ranks(nranks, source)]
    lazy = pl.scan_parquet(parquet_files)
    expected = (lazy.filter(pred) if pred is not None else lazy).select(columns).collect()
    # Rank order concatenation is the whole scan in order: nothing twice, nothing lost.
    assert_frame_equal(pl.concat(outs), expected)
    assert all(out.schema == expected.schema for out in outs)
    # Each report describes its rank's share; together they describe the whole scan.
    reports: list[actors.ParquetScanReport] = [node.result() for node in nodes]
    assert sum(r.row_groups_total for r in reports) == 8
    assert sum(r.rows_emitted for r in reports) == expected.height
    assert 3 <= sum(r.files for r in reports) <= 3 + nranks - 1
    # Each rank reads about its part of the rows: within one row group of total / nranks.
    read = [r.rows_read for r in reports]
    assert max(read) - sum(read) / nranks <= 1000


def test_parquet_rank_with_no_share_still_sends_the_schema(parquet_files: list[Path]) -> None:
    pred = pl.col("id") < 100  # only the first row group of the first file can match
    ranked = read_on_ranks(
        3,
        lambda c, ch: actors.read_parquet(c, ch, parquet_files, columns=["s", "id"], filters=pred),
    )
    expected = pl.scan_parquet(parquet_files).filter(pred).select("s", "id").collect()
    idle = [chunks for chunks in ranked if sum(t.num_rows for t in chunks) == 0]
    assert len(idle) == 2  # one row group to read, three ranks
    for chunks in idle:
        assert len(chunks) == 1
        assert pl.from_arrow(chunks[0]).schema == expected.schema  # type: ignore[union-attr]
    assert_frame_equal(pl.concat([frame_of(c) for c in ranked]), expected)


def test_parquet_more_ranks_than_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "one.parquet"
    pl.DataFrame({"x": range(10)}).write_parquet(path)
    outs = [frame_of(c) for c in read_on_ranks(3, lambda c, ch: actors.read_parquet(c, ch, path))]
    assert [out.height for out in outs].count(10) == 1
    assert all(out.columns == ["x"] and out.schema["x"] == pl.Int64 for out in outs)
    assert pl.concat(outs)["x"].to_list() == list(range(10))


def test_parquet_split_false_reads_everything_on_every_rank(parquet_files: list[Path]) -> None:
    outs = read_on_ranks(
        2, lambda c, ch: actors.read_parquet(c, ch, parquet_files, columns=["id"], split=False)
    )
    for chunks in outs:
        assert frame_of(chunks)["id"].to_list() == list(range(4400))


def test_parquet_split_must_be_a_bool(parquet_files: list[Path]) -> None:
    with pytest.raises(TypeError, match="read_parquet: `split` must be True or False"):
        read_on_ranks(1, lambda c, ch: actors.read_parquet(c, ch, parquet_files, split="no"))  # type: ignore[arg-type]


# -- read_csv -------------------------------------------------------------------------------

CSV_SCHEMA = {"i": pl.Int64, "f": pl.Float64, "s": pl.String}


def polars_csv(paths: list[Path]) -> pl.DataFrame:
    return pl.concat([pl.read_csv(path, schema=CSV_SCHEMA) for path in paths])


def read_csv_on_ranks(nranks: int, source: Any, **kwargs: Any) -> list[list[pa.Table]]:
    return read_on_ranks(nranks, lambda c, ch: actors.read_csv(c, ch, source, **kwargs))


@settings(max_examples=20)
@given(
    st.lists(frames(max_rows=120), min_size=1, max_size=4),
    st.integers(1, 5),
    st.sampled_from([64, 300, 1 << 20]),
)
def test_csv_ranks_read_every_row_once_in_order(
    tmp_path_factory: pytest.TempPathFactory, dfs: list[pl.DataFrame], nranks: int, block: int
) -> None:
    """Whole files when there are enough, byte ranges of rows when there are fewer than ranks."""
    folder = tmp_path_factory.mktemp("ranked-csv")
    paths = []
    for i, df in enumerate(dfs):
        df.write_csv(folder / f"{i}.csv")
        paths.append(folder / f"{i}.csv")
    schema = {"i": pa.int64(), "f": pa.float64(), "s": pa.string()}
    outs = [frame_of(c) for c in read_csv_on_ranks(nranks, folder, schema=schema, block_size=block)]
    assert_frame_equal(pl.concat(outs), polars_csv(paths), check_dtypes=False)
    assert all(out.columns == ["i", "f", "s"] for out in outs)


@pytest.mark.parametrize("nranks", RANKS)
def test_csv_one_file_split_by_bytes_keeps_the_file_types(tmp_path: Path, nranks: int) -> None:
    """Types come from the whole file's first block, even where a range has only nulls."""
    path = tmp_path / "t.csv"
    n = 3000
    df = pl.DataFrame(
        {
            "a": range(n),
            "b": [f"x{i}" if i < 50 else None for i in range(n)],
            "c": [i / 2 if i < 50 else None for i in range(n)],
        }
    )
    df.write_csv(path)
    outs = [frame_of(c) for c in read_csv_on_ranks(nranks, path, block_size=1 << 16)]
    assert [o.height for o in outs] != [n] or nranks == 1
    assert_frame_equal(pl.concat(outs), pl.read_csv(path))
    for out in outs:
        assert out.schema == pl.read_csv(path).schema


def test_csv_files_split_whole_between_ranks(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / f"{i}.csv").write_text("x,y\n" + "".join(f"{i},{j}\n" for j in range(5)))
    outs = [frame_of(c) for c in read_csv_on_ranks(2, tmp_path)]
    assert [o["x"].unique().sort().to_list() for o in outs] == [[0, 1], [2, 3]]


def test_csv_without_header_split_by_bytes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("".join(f"{i},v{i}\n" for i in range(500)))
    outs = [
        frame_of(c)
        for c in read_csv_on_ranks(
            3, path, has_header=False, schema={"n": pa.int32(), "t": pa.string()}
        )
    ]
    assert all(o.height > 0 for o in outs)
    assert pl.concat(outs)["n"].to_list() == list(range(500))


def test_csv_rank_with_no_share_still_sends_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,x\n")
    ranked = read_csv_on_ranks(3, path)
    assert sum(sum(t.num_rows for t in chunks) for chunks in ranked) == 1
    for chunks in ranked:
        assert len(chunks) == 1
        assert chunks[0].schema == pa.schema([("a", pa.int64()), ("b", pa.large_string())])


def test_csv_split_false_reads_everything_on_every_rank(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a\n" + "".join(f"{i}\n" for i in range(100)))
    for chunks in read_csv_on_ranks(3, path, split=False):
        assert frame_of(chunks)["a"].to_list() == list(range(100))


def test_csv_line_break_in_a_value_across_ranks_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,"' + "line\n" * 100 + '"\n2,z\n')
    with pytest.raises(
        FileReadError, match=r"t.csv` as CSV: the value of column `b` on line 2 holds a line"
    ):
        read_csv_on_ranks(1, path)
    # Rank 0 finds the value; rank 1, whose bytes start inside it, finds too few values.
    with pytest.raises(
        FileReadError,
        match=r"t.csv` \(the rows in bytes .*\) as CSV: (the value of column `b` on line 2 "
        r"holds a line break|.*pass `multiline=True` if values span lines)",
    ):
        read_csv_on_ranks(2, path)


@pytest.mark.parametrize("nranks", [1, 2, 3])
def test_csv_multiline_files_are_split_whole_between_ranks(tmp_path: Path, nranks: int) -> None:
    """A value may span lines: a file cannot be cut at a line start, so a rank reads whole
    files (or none)."""
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,"' + "line\n" * 100 + '"\n2,z\n')
    outs = read_csv_on_ranks(nranks, path, multiline=True)
    whole = pl.concat([frame_of(chunks) for chunks in outs])
    assert_frame_equal(whole, pl.read_csv(path))


# -- write_parquet --------------------------------------------------------------------------


def write_on_ranks(nranks: int, target: Path, **kwargs: Any) -> list[actors.ParquetWriteReport]:
    """Rank r writes rows ``r * 100 .. r * 100 + 9`` in chunks of 4 rows."""

    async def job(ctx: Context) -> actors.ParquetWriteReport:
        ch = ctx.create_channel()
        data = pa.table({"x": range(ctx.rank * 100, ctx.rank * 100 + 10)})
        writer = actors.write_parquet(ctx, ch, target, **kwargs)
        await Network(ctx, [actors.from_arrow(ctx, ch, data, chunk_rows=4), writer]).run_async()
        report: actors.ParquetWriteReport = writer.result()
        return report

    return run_ranks_within(60, nranks, job)


def test_write_parquet_on_two_ranks_writes_one_file_each(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    reports = write_on_ranks(2, target)
    assert [[Path(f).name for f in r.files] for r in reports] == [
        ["part-r00000.parquet"],
        ["part-r00001.parquet"],
    ]
    for rank, report in enumerate(reports):
        assert pl.read_parquet(report.files[0])["x"].to_list() == list(
            range(rank * 100, rank * 100 + 10)
        )
    # The directory is the dataset, in rank order.
    assert pl.read_parquet(target)["x"].to_list() == [*range(10), *range(100, 110)]
    out = read_on_ranks(1, lambda c, ch: actors.read_parquet(c, ch, target))[0]
    assert frame_of(out)["x"].to_list() == [*range(10), *range(100, 110)]


def test_write_parquet_partitioned_on_two_ranks_names_the_rank(tmp_path: Path) -> None:
    reports = write_on_ranks(2, tmp_path / "parts", partitioned=True)
    names = [[Path(f).name for f in r.files] for r in reports]
    assert names == [
        [f"part-r{rank:05d}-{seq:08d}.parquet" for seq in range(3)] for rank in range(2)
    ]
    written = sorted(p.name for p in (tmp_path / "parts").iterdir())
    assert written == ["_SUCCESS", *names[0], *names[1]]
    assert pl.read_parquet(tmp_path / "parts")["x"].to_list() == [*range(10), *range(100, 110)]


def test_write_parquet_on_two_ranks_over_an_existing_target_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.write_bytes(b"")
    with pytest.raises(FileExistsError, match=r"out.parquet` already exists; pass mode="):
        write_on_ranks(2, target)
    with pytest.raises(FileExistsError, match=r"out.parquet` is a file, but mode='append'"):
        write_on_ranks(2, target, mode="append")
    assert target.read_bytes() == b""
    write_on_ranks(2, target, mode="overwrite")  # a file replaced by a directory
    assert pl.read_parquet(target)["x"].to_list() == [*range(10), *range(100, 110)]


@pytest.mark.parametrize("partitioned", [False, True])
def test_write_parquet_ranks_of_different_schemas_fail_and_publish_nothing(
    tmp_path: Path, partitioned: bool
) -> None:
    """Rank 0 wrote Int64, rank 1 Float64: the writer used to publish a dataset (with its
    `_SUCCESS`) that neither Polars nor `read_parquet` could read back."""
    target = tmp_path / "ds"

    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        data = pl.DataFrame({"v": [1, 2]} if ctx.rank == 0 else {"v": [1.5, 2.5]})
        writer = actors.write_parquet(ctx, ch, target, partitioned=partitioned)
        await Network(ctx, [actors.from_polars(ctx, ch, data), writer]).run_async()

    with pytest.raises(
        SchemaError,
        match=r"actor `write_parquet#0`, channel `ch#0`: the chunks on rank 1 do not have the "
        r"schema of those on rank 0: column `v` has type Float64 where rank 0 has Int64; .*"
        r"got \{v: Float64\}",
    ):
        run_ranks_within(60, 2, job)
    assert list(tmp_path.iterdir()) == []


def test_write_parquet_rank_without_a_chunk_takes_the_schema_of_the_others(
    tmp_path: Path,
) -> None:
    async def job(ctx: Context) -> None:
        ch = ctx.create_channel()
        writer = actors.write_parquet(ctx, ch, tmp_path / "ds")

        @define_actor
        async def only_rank_0(ctx: Context, ch_out: Any) -> None:
            if ctx.rank == 0:
                await ch_out.send(ctx, Message(0, TableChunk.from_polars(pl.DataFrame({"v": [1]}))))
            await ch_out.drain(ctx)

        await Network(ctx, [only_rank_0(ctx, ch), writer]).run_async()

    run_ranks_within(60, 2, job)
    assert pl.read_parquet(tmp_path / "ds")["v"].to_list() == [1]


# -- a whole pipeline on two ranks ----------------------------------------------------------


def test_read_groupby_write_on_two_ranks_equals_polars(
    parquet_files: list[Path], tmp_path: Path
) -> None:
    pred = pl.col("v") > -0.5
    target = tmp_path / "agg.parquet"

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(), ctx.create_channel()
        await Network(
            ctx,
            [
                actors.read_parquet(ctx, a, parquet_files, columns=["k", "v"], filters=pred),
                actors.groupby_agg(ctx, a, b, "k", [("v", "sum"), ("*", "len")]),
                actors.write_parquet(ctx, b, target),
            ],
        ).run_async()

    run_ranks_within(60, 2, job)
    assert {p.name for p in target.iterdir()} <= {
        "part-r00000.parquet",
        "part-r00001.parquet",
        "_SUCCESS",
    }
    expected = (
        pl.scan_parquet(parquet_files)
        .filter(pred)
        .group_by("k")
        .agg(pl.col("v").sum().alias("v_sum"), pl.len().alias("len"))
        .collect()
    )
    assert_frame_equal(
        pl.read_parquet(target).sort("k"), expected.sort("k"), check_exact=False, rel_tol=1e-9
    )


def test_read_shuffle_write_partitioned_on_two_ranks_loses_nothing(
    parquet_files: list[Path], tmp_path: Path
) -> None:
    target = tmp_path / "shuffled"

    async def job(ctx: Context) -> None:
        a, b = ctx.create_channel(), ctx.create_channel()
        await Network(
            ctx,
            [
                actors.read_parquet(ctx, a, parquet_files, columns=["id", "k"]),
                actors.shuffle(ctx, a, b, "k"),
                actors.write_parquet(ctx, b, target, partitioned=True),
            ],
        ).run_async()

    run_ranks_within(60, 2, job)
    written = pl.read_parquet(target)
    assert_frame_equal(
        written.sort("id"), pl.read_parquet(parquet_files, columns=["id", "k"]).sort("id")
    )
    # Each key ended on one rank, and each rank's files carry its rank.
    by_rank = {
        rank: pl.read_parquet(list(target.glob(f"part-r{rank:05d}-*.parquet")))
        for rank in range(2)
        if any(target.glob(f"part-r{rank:05d}-*.parquet"))
    }
    keys = [set(frame["k"].to_list()) for frame in by_rank.values()]
    assert len(keys) < 2 or not keys[0] & keys[1]
