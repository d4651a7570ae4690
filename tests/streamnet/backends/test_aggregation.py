"""Aggregation kernels: partials of random chunks, merged in any grouping and finished, equal Polars."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Agg, AggHow, Backend, ColumnNotFoundError, SchemaError, TableChunk

ORDER = ["__rank", "__seq"]
HOWS: list[AggHow] = [
    "sum", "count", "len", "mean", "min", "max", "first", "last", "n_unique", "std", "var"
]  # fmt: skip
# name: (type, values); every column has nulls
COLUMNS: dict[str, tuple[pl.DataType, st.SearchStrategy[object]]] = {
    "i32": (pl.Int32(), st.integers(-1000, 1000)),
    "f64": (pl.Float64(), st.floats(-1e6, 1e6)),
    "dec": (pl.Decimal(12, 2), st.decimals(-1000, 1000, places=2)),
    "s": (pl.String(), st.sampled_from(["a", "bb", "", "ccc"])),
    "b": (pl.Boolean(), st.booleans()),
    "d": (pl.Date(), st.dates(dt.date(1990, 1, 1), dt.date(2030, 1, 1))),
}


def applies(column: str, how: str) -> bool:
    """Whether Polars aggregates ``column`` by ``how`` (and partials can: not a Date's mean)."""
    if (column, how) == ("d", "mean"):
        return False
    try:
        pl.DataFrame(schema={column: COLUMNS[column][0]}).select(Agg(column, how).polars())  # type: ignore[arg-type]
    except pl.exceptions.PolarsError:
        return False
    return True


def aggs_of(how: AggHow) -> list[Agg]:
    return [Agg(c, how) for c in COLUMNS if applies(c, how)]


@st.composite
def frames(draw: st.DrawFn, max_rows: int = 30) -> pl.DataFrame:
    """A key ``k`` (few values, nulls) and one column of each type."""
    n = draw(st.integers(0, max_rows))
    data = {"k": draw(st.lists(st.none() | st.integers(0, 3), min_size=n, max_size=n))}
    for name, (_, values) in COLUMNS.items():
        data[name] = draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))
    return pl.DataFrame(data, schema={"k": pl.Int64(), **{c: t for c, (t, _) in COLUMNS.items()}})


@st.composite
def chunks_of(draw: st.DrawFn, df: pl.DataFrame) -> list[pl.DataFrame]:
    """``df`` cut at random places (empty chunks too), each stamped with its stream order."""
    cuts = sorted(draw(st.lists(st.integers(0, df.height), max_size=5)))
    bounds = [0, *cuts, df.height]
    return [
        df.slice(lo, hi - lo).with_columns(
            pl.lit(0, pl.Int64).alias("__rank"), pl.lit(seq, pl.Int64).alias("__seq")
        )
        for seq, (lo, hi) in enumerate(itertools.pairwise(bounds))
    ]


def schema_of(df: pl.DataFrame) -> pa.Schema:
    return TableChunk.from_polars(df).schema


def expected(df: pl.DataFrame, keys: list[str], aggs: list[Agg]) -> pl.DataFrame:
    wholes = [agg.polars() for agg in aggs]
    return df.group_by(keys).agg(wholes) if keys else df.select(wholes)


def assert_same(got: TableChunk, want: pl.DataFrame, keys: list[str]) -> None:
    frame = got.to_polars()
    if keys:
        frame, want = frame.sort(keys, nulls_last=True), want.sort(keys, nulls_last=True)
    # partial sums of floats add up in another order than Polars' own sum
    assert_frame_equal(frame, want, check_exact=False, rel_tol=1e-6, abs_tol=1e-6)


@pytest.mark.parametrize("how", HOWS)
@settings(max_examples=15)
@given(df=frames(), keys=st.sampled_from([["k"], ["k", "s"], []]), data=st.data())
def test_partials_merged_in_any_grouping_then_finished_equal_polars(
    backend: Backend, how: AggHow, df: pl.DataFrame, keys: list[str], data: st.DataObject
) -> None:
    aggs = [a for a in aggs_of(how) if a.column not in keys]
    kernel = backend.aggregation(keys, aggs, schema_of(df), ordered=True)
    # chunks come in any order: their order columns, not their arrival, order first/last
    chunks = data.draw(st.permutations(data.draw(chunks_of(df))), label="arrival")
    parts = [kernel.partial(backend.from_polars(chunk)) for chunk in chunks]
    assert all(part.schema.equals(kernel.partial_schema) for part in parts)
    while len(parts) > 1 and data.draw(st.booleans(), label="merge more"):
        picked = data.draw(st.sets(st.integers(0, len(parts) - 1), min_size=2), label="merged")
        merged = kernel.merge([parts[i] for i in sorted(picked)])
        assert merged.schema.equals(kernel.partial_schema)
        parts = [p for i, p in enumerate(parts) if i not in picked] + [merged]
    # finish takes partials merged or not
    got = kernel.finish(backend.concat(parts))
    assert got.schema.equals(kernel.output_schema)
    assert_same(got, expected(df, keys, aggs), keys)


@pytest.mark.parametrize("how", HOWS)
@settings(max_examples=15)
@given(
    df=frames(max_rows=40),
    key=st.sampled_from(["k", "d", "i32", "s"]),
    clustered=st.booleans(),
    data=st.data(),
)
def test_pieces_of_partials_finished_together_equal_polars(
    backend: Backend, how: AggHow, df: pl.DataFrame, key: str, clustered: bool,
    data: st.DataObject, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """`finish_pieces` gives `finish`'s answer, also where it finishes apart the keys a
    piece holds alone (rows sorted by the key: ranges that barely overlap)."""
    monkeypatch.setattr("streamnet.backends.cpu._aggregate.CLUSTERED_SHARE", 0.0)
    aggs = [a for a in aggs_of(how) if a.column != key]
    kernel = backend.aggregation([key], aggs, schema_of(df), ordered=True)
    if clustered:
        df = df.sort(key, nulls_last=data.draw(st.booleans(), label="nulls last"))
    parts = [kernel.partial(backend.from_polars(chunk)) for chunk in data.draw(chunks_of(df))]
    got = kernel.finish_pieces(parts)
    assert got.schema.equals(kernel.output_schema)
    assert_same(got, expected(df, [key], aggs), [key])


def _counting_groupings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The heights of the partials the CPU kernel groups to finish them (a list the test reads)."""
    from streamnet.backends.cpu._aggregate import CpuAggregationKernel

    grouped: list[int] = []
    finished = CpuAggregationKernel._finished  # noqa: SLF001 - the grouping this test counts

    def counted(self: CpuAggregationKernel, frame: pl.DataFrame) -> pl.DataFrame:
        grouped.append(frame.height)
        return finished(self, frame)

    monkeypatch.setattr(CpuAggregationKernel, "_finished", counted)
    return grouped


def test_partials_of_one_grouping_finish_without_grouping_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kernel's grouped partials hold each key once: where no other piece shares a key,
    finishing reads them as they are (no second grouping), also once cut by a hash
    partition; partials joined into one piece, or taken row by row, group again. The
    answer is Polars' every time."""
    from streamnet.backends.cpu import CpuBackend
    from streamnet.backends.cpu._aggregate import CpuAggregationKernel

    backend = CpuBackend()
    grouped = _counting_groupings(monkeypatch)
    df = pl.DataFrame({"k": [i // 3 for i in range(60_000)], "v": range(60_000)})
    aggs = [Agg("v", "sum"), Agg("v", "mean"), Agg("v", "std"), Agg(None, "len")]
    want = expected(df, ["k"], aggs)
    kernel = backend.aggregation(["k"], aggs, schema_of(df), ordered=False)
    assert isinstance(kernel, CpuAggregationKernel)
    halves = [kernel.partial(backend.from_polars(frame)) for frame in (df[:30_001], df[30_001:])]
    assert_same(kernel.finish_pieces(halves), want, ["k"])
    # the key 10000 straddles the cut: its partials alone, one per half, group again
    assert grouped == [2]
    grouped.clear()
    # a partition's pieces (one per half, as an exchange holds them) keep the mark
    parts = [backend.hash_partition(half, ["k"], 3) for half in halves]
    finished = [kernel.finish_pieces([part[p] for part in parts]) for p in range(3)]
    assert_same(backend.concat(finished), want, ["k"])
    assert grouped == [2], "the pieces share the straddling key only"
    grouped.clear()
    # partials of both halves with the same keys, joined: each key twice in one piece
    twice = [kernel.partial(backend.from_polars(df.slice(0, 30_000))) for _ in range(2)]
    joined = backend.concat(twice)
    doubled = expected(pl.concat([df.slice(0, 30_000)] * 2), ["k"], aggs)
    assert_same(kernel.finish_pieces([joined]), doubled, ["k"])
    assert grouped == [20_000]
    grouped.clear()
    kernel.learn(30_000, 30_000)  # as many groups as rows: partials are the rows
    rows = kernel.partial(backend.from_polars(df.slice(0, 30_000)))
    assert rows.num_rows == 30_000
    assert_same(kernel.finish_pieces([rows]), expected(df.slice(0, 30_000), ["k"], aggs), ["k"])
    assert grouped == [30_000]


def test_partials_of_a_fused_plan_finish_without_grouping_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The partials a scan's plan groups are marked as a kernel's are: a group-by over a
    file sorted by its key finishes each task's keys without grouping them again."""
    import actors
    from streamnet import Context, Network

    grouped = _counting_groupings(monkeypatch)
    n = 400_000
    df = pl.DataFrame({"k": [i // 4 for i in range(n)], "v": range(n)})
    path = tmp_path / "sorted.parquet"
    df.write_parquet(path, row_group_size=50_000)
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        network = Network(ctx, [
            actors.read_parquet(ctx, a, path),
            actors.groupby_agg(ctx, a, b, "k", [("v", "sum", "v")]),
            sink,
        ])  # fmt: skip
        assert network.fused, "the scan runs the group-by's partials"
        network.run(progress=False)
    want = df.group_by("k").agg(pl.col("v").sum())
    assert_frame_equal(sink.result().sort("k"), want.sort("k"))
    # only the keys that straddle a task's bounds group again, a few at most
    assert sum(grouped) < 10


def test_clustered_pieces_are_finished_apart_and_overlapping_ones_together() -> None:
    from streamnet.backends.cpu._aggregate import _clustered

    sorted_pieces = [pl.DataFrame({"k": list(range(i * 100, i * 100 + 101))}) for i in range(4)]
    apart = _clustered(sorted_pieces, ["k"])
    assert apart is not None
    alone, shared = apart
    assert [i for i, _ in alone] == [0, 1, 2, 3]
    assert [frame.height for _, frame in alone] == [100, 99, 99, 100]  # the bounds are shared
    assert sorted(shared["k"].to_list()) == [100, 100, 200, 200, 300, 300]
    spread = [pl.DataFrame({"k": list(range(i, 400, 4))}) for i in range(4)]
    assert _clustered(spread, ["k"]) is None  # every range spans the others
    assert _clustered(sorted_pieces, ["k", "k2"]) is None  # one key only
    assert _clustered([p.cast({"k": pl.String}) for p in sorted_pieces], ["k"]) is None


@pytest.mark.parametrize("how", HOWS)
@settings(max_examples=10)
@given(df=frames(), keys=st.sampled_from([["k"], []]))
def test_aggregate_rows_equals_polars(
    backend: Backend, how: AggHow, df: pl.DataFrame, keys: list[str]
) -> None:
    aggs = aggs_of(how)
    kernel = backend.aggregation(keys, aggs, schema_of(df), ordered=True)
    stamped = df.with_columns(
        pl.lit(0, pl.Int64).alias("__rank"), pl.lit(0, pl.Int64).alias("__seq")
    )
    got = kernel.aggregate_rows(backend.from_polars(stamped.reverse()))
    reversed_rows = expected(df.reverse(), keys, aggs)  # without order columns: row order
    assert_same(got, reversed_rows, keys)


def test_the_global_aggregation_of_no_rows_is_polars_answer_for_an_empty_frame(
    backend: Backend,
) -> None:
    df = pl.DataFrame(schema={"x": pl.Int64, "s": pl.String})
    aggs = [Agg("x", "sum"), Agg("x", "mean"), Agg(None, "len"), Agg("s", "n_unique")]
    kernel = backend.aggregation([], aggs, schema_of(df), ordered=False)
    nothing = kernel.partial(backend.from_polars(df))
    assert nothing.num_rows == 0
    got = kernel.finish(kernel.merge([nothing, nothing]))
    assert got.to_polars().to_dicts() == [{"x_sum": 0, "x_mean": None, "len": 0, "s_n_unique": 0}]


def test_decimal_mean_is_not_rounded_to_the_column_scale(backend: Backend) -> None:
    df = pl.DataFrame(
        {"k": [1, 1, 1], "x": [Decimal("1.25"), Decimal("3.5"), Decimal("1")]},
        schema_overrides={"x": pl.Decimal(10, 2)},
    )
    kernel = backend.aggregation(["k"], [Agg("x", "mean")], schema_of(df), ordered=False)
    parts = [kernel.partial(backend.from_polars(df.slice(i, 1))) for i in range(3)]
    got = kernel.finish(kernel.merge(parts)).to_polars()
    assert got["x_mean"].to_list() == pytest.approx([5.75 / 3])


@pytest.mark.parametrize("how", ["mean", "var", "std"])
def test_float32_partials_are_computed_in_double_precision_as_polars_does(
    backend: Backend, how: AggHow
) -> None:
    """Values that nearly cancel: single-precision partial sums would lose the result's digits."""
    x = pl.Series("x", [((i * 7919) % 2000 - 1000) / 3 for i in range(60)], pl.Float32)
    x = x.append(pl.Series("x", [-x.cast(pl.Float64).sum()], pl.Float32))  # the sum nearly 0
    df = pl.DataFrame({"k": [1] * len(x), "x": x})
    kernel = backend.aggregation(["k"], [Agg("x", how)], schema_of(df), ordered=False)
    parts = [kernel.partial(backend.from_polars(df.slice(i, 2))) for i in range(0, df.height, 2)]
    got = kernel.finish(kernel.merge(parts)).to_polars()
    want = df.group_by("k").agg(Agg("x", how).polars())
    assert got.schema == want.schema
    assert got.item(0, 1) == pytest.approx(want.item(0, 1), rel=1e-6)


def test_chunks_with_as_many_groups_as_rows_give_per_row_partials(backend: Backend) -> None:
    n = 10_000
    df = pl.DataFrame({"k": range(n), "x": [i % 7 for i in range(n)]})
    aggs = [Agg("x", "sum"), Agg("x", "std"), Agg(None, "len")]
    kernel = backend.aggregation(["k"], aggs, schema_of(df), ordered=False)
    first = kernel.partial(backend.from_polars(df))  # grouped; shows the keys are unique
    second = kernel.partial(backend.from_polars(df))  # one partial per row, no grouping
    assert first.num_rows == second.num_rows == n
    assert second.schema.equals(kernel.partial_schema)
    got = kernel.finish(kernel.merge([first, second]))
    assert_same(got, expected(pl.concat([df, df]), ["k"], aggs), ["k"])


def test_the_same_arguments_give_the_same_partial_schema(backend: Backend) -> None:
    df = pl.DataFrame({"k": [1], "x": [1.5], "s": ["a"]})
    aggs = [Agg("x", "var"), Agg("s", "first"), Agg("x", "max")]
    one = backend.aggregation(["k"], aggs, schema_of(df), ordered=True)
    other = backend.aggregation(["k"], aggs, schema_of(df), ordered=True)
    assert one.partial_schema.equals(other.partial_schema)
    assert one.output_schema.equals(schema_of(expected(df, ["k"], aggs)))
    assert one.decomposable


def test_kernels_of_one_spec_learn_its_layout_once_and_their_chunks_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CPU backend runs the steps on empty frames once per keys, aggregations, input
    schema and order (a fused partial step and its group-by each make a kernel); what a
    kernel learns of its chunks stays its own, and a spec that fails fails every time."""
    from streamnet import Context
    from streamnet.backends.cpu._aggregate import CpuAggregationKernel

    made: list[pa.Schema] = []
    layout = CpuAggregationKernel._layout  # noqa: SLF001 (counted)

    def counted(self: CpuAggregationKernel, schema: pa.Schema) -> object:
        made.append(schema)
        return layout(self, schema)

    monkeypatch.setattr(CpuAggregationKernel, "_layout", counted)
    n = 10_000
    df = pl.DataFrame({"k": range(n), "x": [i % 7 for i in range(n)], "s": ["a"] * n})
    aggs = [Agg("x", "sum"), Agg(None, "len")]
    with Context(backend="cpu") as ctx:
        backend = ctx.backend
        one = backend.aggregation(["k"], aggs, schema_of(df), ordered=False, actor="a#0")
        other = backend.aggregation(["k"], aggs, schema_of(df), ordered=False, actor="a#1")
        assert isinstance(one, CpuAggregationKernel) and isinstance(other, CpuAggregationKernel)
        assert len(made) == 1
        backend.aggregation(["k"], aggs[:1], schema_of(df), ordered=False)
        backend.aggregation(["k"], aggs, schema_of(df.drop("s")), ordered=False)
        assert len(made) == 3
        one.learn(n, n)  # as many groups as rows: `one` stops grouping, `other` does not
        assert not one.grouping and other.grouping
        for actor in ("g#0", "g#1"):
            with pytest.raises(TypeError, match=rf"actor `{actor}`: aggregation 'sum' does not apply"):
                backend.aggregation(["k"], [Agg("s", "sum")], schema_of(df), ordered=False, actor=actor)
    with Context(backend="cpu") as ctx:  # another backend learns it again
        ctx.backend.aggregation(["k"], aggs, schema_of(df), ordered=False)
    assert len(made) == 6


def test_n_unique_by_key_is_not_decomposable_its_partials_are_the_rows(backend: Backend) -> None:
    df = pl.DataFrame({"k": [1, 1, 2], "x": [1, 1, 3], "y": ["a", "b", "c"]})
    kernel = backend.aggregation(["k"], [Agg("x", "n_unique")], schema_of(df), ordered=False)
    assert not kernel.decomposable
    part = kernel.partial(backend.from_polars(df))
    assert part.column_names == ["k", "x"]
    assert kernel.finish(part).to_polars().sort("k").to_dicts() == [
        {"k": 1, "x_n_unique": 1},
        {"k": 2, "x_n_unique": 1},
    ]
    assert backend.aggregation(
        [], [Agg("x", "n_unique")], schema_of(df), ordered=False
    ).decomposable


def test_errors_name_the_actor_the_aggregation_and_the_column(backend: Backend) -> None:
    schema = schema_of(pl.DataFrame({"k": [1], "s": ["a"], "d": [dt.date(2020, 1, 1)]}))
    with pytest.raises(
        TypeError, match=r"actor `g#0`: aggregation 'sum' does not apply to column `s`"
    ):
        backend.aggregation(["k"], [Agg("s", "sum")], schema, ordered=False, actor="g#0")
    with pytest.raises(
        TypeError,
        match=r"aggregation 'mean' of column `d` cannot be computed from partials for type Date",
    ):
        backend.aggregation([], [Agg("d", "mean")], schema, ordered=False)
    with pytest.raises(ColumnNotFoundError, match=r"column `nope` not found; columns are"):
        backend.aggregation(["k"], [Agg("nope", "sum")], schema, ordered=False)
    with pytest.raises(ValueError, match=r"\['first'\] follow the stream's order"):
        backend.aggregation(["k"], [Agg("s", "first")], schema, ordered=False)
    with pytest.raises(ValueError, match=r"output names \['k'\] repeat or are keys"):
        backend.aggregation(["k"], [Agg("s", "max", "k")], schema, ordered=False)
    kernel = backend.aggregation(["k"], [Agg("s", "max")], schema, ordered=False)
    with pytest.raises(ValueError, match="no partials to merge"):
        kernel.merge([])
    with pytest.raises(SchemaError, match="not of the kernel's partial schema"):
        kernel.finish(backend.from_polars(pl.DataFrame({"k": [1]})))
    with pytest.raises(ColumnNotFoundError, match=r"partial: column `s` not found in the chunk"):
        kernel.partial(backend.from_polars(pl.DataFrame({"k": [1]})))
    with pytest.raises(TypeError, match="expected a TableChunk"):
        kernel.partial(pl.DataFrame({"k": [1], "s": ["a"]}))  # type: ignore[arg-type]


def test_a_global_len_alone_counts_the_rows_of_a_chunk(backend: Backend) -> None:
    df = pl.DataFrame({"x": [None, 1, None]}, schema={"x": pl.Int64})
    kernel = backend.aggregation([], [Agg(None, "len")], schema_of(df), ordered=False)
    part = kernel.partial(backend.from_polars(df))
    assert kernel.finish(part).to_polars()["len"].to_list() == [3]
    assert kernel.aggregate_rows(backend.from_polars(df)).to_polars()["len"].to_list() == [3]
