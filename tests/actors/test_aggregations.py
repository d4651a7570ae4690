"""The aggregations' partial / merge / final steps equal Polars' own aggregation, for every type.

The steps are composed here as ``groupby_agg`` composes them, but with chunkings,
per-row partials and merge orders chosen at random; then ``groupby_agg`` itself is
checked on random aggregations, chunkings and 1 to 3 ranks.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
import ranks
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from test_collectives import run_collective, split

import actors
from actors import AggHow
from streamnet import Agg, Context, Network
from streamnet.backends.cpu._aggregation_steps import (
    AGGREGATIONS,
    CHUNK,
    ORDER,
    SPAN,
    AggregationSteps,
)

# name: (dtype, values); each column has nulls
COLUMNS: dict[str, tuple[pl.DataType, st.SearchStrategy[object]]] = {
    "i8": (pl.Int8(), st.integers(-128, 127)),
    "i64": (pl.Int64(), st.integers(-(10**6), 10**6)),
    "u64": (pl.UInt64(), st.integers(0, 2**40)),
    "f32": (pl.Float32(), st.floats(-1e3, 1e3, width=32)),
    "f64": (pl.Float64(), st.floats(-1e6, 1e6)),
    "b": (pl.Boolean(), st.booleans()),
    "dec": (pl.Decimal(12, 2), st.decimals(-1000, 1000, places=2)),
    "dur": (
        pl.Duration("us"),
        st.timedeltas(dt.timedelta(days=-2), dt.timedelta(days=2)),
    ),
    "d": (pl.Date(), st.dates(dt.date(1990, 1, 1), dt.date(2030, 1, 1))),
    "s": (pl.String(), st.sampled_from(["a", "bb", "", "ccc"])),
}
HOWS = list(AGGREGATIONS)
# What Polars aggregates but partials cannot: refused before any data flows.
NOT_SPLIT = {("d", "mean")}


def applies(column: str, how: str) -> bool:
    """Whether Polars itself aggregates ``column`` by ``how``."""
    empty = pl.DataFrame(schema={column: COLUMNS[column][0]})
    try:
        empty.select(Agg(column, how).polars())  # type: ignore[arg-type]
    except pl.exceptions.PolarsError:
        return False
    return True


PAIRS = [(c, h) for c in COLUMNS for h in HOWS if applies(c, h) and (c, h) not in NOT_SPLIT]


@st.composite
def typed_frames(draw: st.DrawFn, max_rows: int = 40) -> pl.DataFrame:
    """A key ``k`` (few values, nulls) and one column of each type, with nulls."""
    n = draw(st.integers(0, max_rows))
    data: dict[str, list[object]] = {
        "k": draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n, max_size=n))
    }
    for name, (_, values) in COLUMNS.items():
        data[name] = draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))
    schema = {"k": pl.Int64(), **{name: dtype for name, (dtype, _) in COLUMNS.items()}}
    return pl.DataFrame(data, schema=schema)


@st.composite
def chunkings(draw: st.DrawFn, df: pl.DataFrame) -> list[pl.DataFrame]:
    """``df`` cut into non-empty chunks at random places, each with its :data:`ORDER` columns."""
    cuts = sorted(draw(st.sets(st.integers(1, max(df.height - 1, 1)), max_size=6)))
    bounds = [0, *[c for c in cuts if c < df.height], df.height]
    return [
        df.slice(lo, hi - lo).with_columns(
            pl.lit(0, pl.Int64).alias(ORDER[0]), pl.lit(seq, pl.Int64).alias(ORDER[1])
        )
        for seq, (lo, hi) in enumerate(itertools.pairwise(bounds))
        if hi > lo
    ]


F32_SPAN = 1e3 * 64  # |values| of the f32 column (see COLUMNS) times the most rows drawn


def assert_equal(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Equal; a float32 sum within what single-precision summation in another order gives.

    Polars itself sums a float32 column in float32, in its own order; partials add up in
    another. The two differ by up to a few float32 epsilons times the sum of the absolute
    values (not of the result, which may nearly cancel), so f32 sums get that absolute bound.
    """
    f32 = [c for c in got.columns if c == "f32_sum"]  # means and variances: double precision
    rest = [c for c in got.columns if c not in f32]
    assert_frame_equal(got[rest], expected[rest], check_exact=False, rel_tol=1e-4, abs_tol=1e-6)
    bound = 8 * float(np.finfo(np.float32).eps) * F32_SPAN
    assert_frame_equal(got[f32], expected[f32], check_exact=False, rel_tol=1e-4, abs_tol=bound)


def test_every_how_of_the_public_literal_has_one_aggregation() -> None:
    assert sorted(AGGREGATIONS) == sorted(actors.AggHow.__args__)  # type: ignore[attr-defined]
    assert all(kind.how == how for how, kind in AGGREGATIONS.items())


@pytest.mark.parametrize("column", sorted(COLUMNS))
def test_steps_apply_to_every_type_polars_aggregates(column: str) -> None:
    """Partials handle each type Polars aggregates, except a listed few, refused by name."""
    empty = pl.DataFrame(schema={column: COLUMNS[column][0]})
    for how in HOWS:
        plan = AggregationSteps([Agg(column, how)])  # type: ignore[arg-type]
        if not applies(column, how):
            with pytest.raises(TypeError, match=f"actor `g`: aggregation '{how}' does not apply"):
                plan.check_types(empty, "actor `g`")
        elif (column, how) in NOT_SPLIT:
            with pytest.raises(
                TypeError,
                match=f"aggregation '{how}' of column `{column}` cannot be computed from partials "
                f"for type {COLUMNS[column][0]}",
            ):
                plan.check_types(empty, "actor `g`")
        else:
            plan.check_types(empty, "actor `g`")


@settings(max_examples=60)
@given(st.data(), typed_frames(), st.sampled_from([["k"], ["k", "s"], ["b"]]))
def test_partials_by_key_merged_once_equal_polars(
    data: st.DataObject, df: pl.DataFrame, keys: list[str]
) -> None:
    """Grouped or per-row partials of each chunk, merged by key and finished: Polars' result."""
    aggs = [Agg(c, h, f"{c}_{h}") for c, h in PAIRS]  # type: ignore[arg-type]
    plan = AggregationSteps(aggs, df.schema)
    parts = []
    for chunk in data.draw(chunkings(df)):
        grouped = chunk.group_by(keys).agg(plan.partials(CHUNK))
        if data.draw(st.booleans(), label="per-row partials"):
            rows = chunk.select(*keys, *plan.rows(CHUNK))
            grouped = rows.cast(grouped.schema)
        parts.append(grouped)
    expected = df.group_by(keys).agg(plan.wholes())
    if not parts:
        return
    # chunks in any order (their origin orders them); rows of a chunk keep their order
    partials = pl.concat(data.draw(st.permutations(parts), label="chunk order"))
    merged = partials.with_columns(plan.windows(keys)).group_by(keys).agg(plan.merges(CHUNK))
    got = merged.select(*keys, *plan.finals()).cast(expected.schema)
    assert_equal(got.sort(keys, nulls_last=True), expected.sort(keys, nulls_last=True))


@settings(max_examples=60)
@given(st.data(), typed_frames())
def test_partials_merged_in_any_grouping_equal_polars(
    data: st.DataObject, df: pl.DataFrame
) -> None:
    """One partial row per chunk, merged again and again in random groups, finished: Polars' row."""
    aggs = [Agg(c, h, f"{c}_{h}") for c, h in PAIRS]  # type: ignore[arg-type]
    aggs.append(Agg(None, "len"))
    plan = AggregationSteps(aggs, df.schema)
    rows = [chunk.select(plan.partials(SPAN)) for chunk in data.draw(chunkings(df))]
    if not rows:
        return
    while len(rows) > 1:  # merge a random subset (not only neighbours) into one row
        picked = data.draw(st.sets(st.integers(0, len(rows) - 1), min_size=2, max_size=len(rows)))
        group = pl.concat([rows[i] for i in sorted(picked)])
        merged = group.with_columns(plan.windows([])).select(plan.merges(SPAN))
        rows = [row for i, row in enumerate(rows) if i not in picked] + [merged]
    expected = df.select(plan.wholes())
    got = rows[0].select(plan.finals()).cast(expected.schema)
    assert_equal(got, expected)


# ------------------------------------------------------------------ through the actor
ACTOR_COLUMNS = ["i64", "f64", "b", "s", "dec"]
ACTOR_PAIRS = [(c, h) for c, h in PAIRS if c in ACTOR_COLUMNS]


@settings(max_examples=30)
@given(
    typed_frames(max_rows=60),
    st.integers(1, 3),
    st.lists(st.sampled_from([*ACTOR_PAIRS, ("*", "len")]), min_size=1, max_size=8, unique=True),
    st.sampled_from([["k"], ["k", "s"], []]),
    st.integers(1, 25),
    st.booleans(),
)
def test_groupby_agg_of_any_aggregations_equals_polars(
    df: pl.DataFrame,
    nranks: int,
    aggs: list[tuple[str, AggHow]],
    keys: list[str],
    chunk_rows: int,
    empty: bool,
) -> None:
    """Random aggregations (each column type, nulls), chunkings and ranks: Polars' result."""
    nranks = ranks.size(nranks)
    df = df.select(["k", *ACTOR_COLUMNS])
    parts = split(df, nranks, 0 if empty and nranks > 1 else None)
    outs = run_collective(
        parts, lambda c, i, o: actors.groupby_agg(c, i, o, keys, aggs), chunk_rows=chunk_rows
    )
    items = [Agg(None, "len") if c == "*" else Agg(c, h) for c, h in aggs]
    if not keys:
        assert [out.height for out in outs] == [1] + [0] * (nranks - 1)
        assert_equal(outs[0], df.select([a.polars() for a in items]))
        return
    expected = df.group_by(keys).agg([a.polars() for a in items])
    got = pl.concat(outs)
    assert_equal(got.sort(keys, nulls_last=True), expected.sort(keys, nulls_last=True))


@pytest.mark.parametrize("nranks", [1, 2])
def test_per_row_partials_keep_the_column_types(nranks: int) -> None:
    """Chunks with as many groups as rows take per-row partials; Duration/Decimal sums included."""
    nranks = ranks.size(nranks)
    n = 40_000 * nranks  # four chunks per rank: the later ones take per-row partials
    df = pl.DataFrame(
        {
            "k": range(n),
            "dur": [None if i % 7 == 0 else dt.timedelta(seconds=i) for i in range(n)],
            "dec": [None if i % 5 == 0 else Decimal(i) / 4 for i in range(n)],
            "b": [None if i % 3 == 0 else i % 2 == 0 for i in range(n)],
        },
        schema_overrides={"dec": pl.Decimal(12, 2)},
    )
    aggs = [(c, h) for c in ["dur", "dec", "b"] for h in ["sum", "mean", "min", "first"]]
    aggs += [("dec", "std"), ("b", "var")]
    parts = [df.slice(r * n // nranks, n // nranks) for r in range(nranks)]
    outs = run_collective(
        parts, lambda c, i, o: actors.groupby_agg(c, i, o, "k", aggs), chunk_rows=10_000
    )
    expected = df.group_by("k").agg([Agg(*a).polars() for a in aggs])  # type: ignore[arg-type]
    assert_equal(pl.concat(outs).sort("k"), expected.sort("k"))


def test_mean_of_a_decimal_column_is_not_rounded_to_its_scale() -> None:
    df = pl.DataFrame(
        {"k": [1, 1, 1, 2], "x": [Decimal("1.25"), Decimal("3.5"), Decimal("1"), None]},
        schema_overrides={"x": pl.Decimal(10, 2)},
    )
    parts = split(df, ranks.size(1), None)
    outs = run_collective(
        parts, lambda c, i, o: actors.groupby_agg(c, i, o, "k", {"x": "mean"}), chunk_rows=2
    )
    assert pl.concat(outs).sort("k")["x_mean"].to_list() == pytest.approx([5.75 / 3, None])


@pytest.mark.parametrize("keys", ["k", []])
def test_groupby_agg_refuses_what_partials_cannot_compute_naming_the_actor(
    keys: str | list[str],
) -> None:
    df = pl.DataFrame({"k": [1, 2], "d": [dt.date(2020, 1, 1), None]})
    with pytest.raises(
        TypeError,
        match=r"actor `groupby_agg#0`: aggregation 'mean' of column `d` cannot be computed "
        r"from partials for type Date",
    ):
        run_collective(
            [df] * ranks.size(1), lambda c, i, o: actors.groupby_agg(c, i, o, keys, {"d": "mean"})
        )


def test_groupby_agg_refuses_bad_specs_by_name() -> None:
    df = pl.DataFrame({"k": [1], "v": [2]})

    def run(keys: Any, aggs: Any) -> None:  # bad specs on purpose
        run_collective(
            [df] * ranks.size(1), lambda c, i, o: actors.groupby_agg(c, i, o, keys, aggs)
        )

    with pytest.raises(
        ValueError, match=r"output names \['k'\] are also keys; .* keys are \['k'\]"
    ):
        run("k", [("v", "sum", "k")])
    with pytest.raises(
        TypeError, match=r"column and name of aggregation 'sum' must be strings; got column 3"
    ):
        run("k", [(3, "sum")])
    for hows in ([["sum"]], 5, None, b"sum"):  # a column's aggregations are names
        with pytest.raises(TypeError, match=r"aggregations of column 'v' must be a name or a list of names"):
            run([], {"v": hows})
    with pytest.raises(ValueError, match="aggregation 'mean' needs a column"):
        run("k", [(None, "mean")])


@pytest.mark.parametrize("keys", ["k", []])
@pytest.mark.parametrize(
    ("dtype", "value"),
    [(pl.Int32(), 2_000_000_000), (pl.UInt32(), 3_000_000_000), (pl.Int64(), 2**62)],
)
def test_mean_of_large_integers_does_not_wrap(
    keys: str | list[str], dtype: pl.DataType, value: int
) -> None:
    """Polars averages integers in double precision; partial sums in the column's own
    type wrap around (two Int32 values of 2e9 sum past 2**31)."""
    df = pl.DataFrame({"k": [1, 1, 1, 2, 2], "x": [value, value, None, value, value]},
                      schema_overrides={"x": dtype})  # fmt: skip
    parts = split(df, ranks.size(1), None)
    outs = run_collective(
        parts, lambda c, i, o: actors.groupby_agg(c, i, o, keys, {"x": "mean"}), chunk_rows=2
    )
    got = pl.concat(outs)["x_mean"].to_list()
    assert got == pytest.approx([float(value)] * len(got)) and len(got) == (2 if keys else 1)


@pytest.mark.parametrize("nranks", [1, 2])
@pytest.mark.parametrize("keys", [["k"], []], ids=["grouped", "global"])
def test_variance_of_large_values_in_many_partials_keeps_its_digits(
    keys: list[str], nranks: int
) -> None:
    """Values of 1e14 and a few units, a partial per row: the partials' mean summed at
    1e18 lost the units (a variance of 17.6 or 24 for 8.25); summed as distances to one
    of the means, the variance keeps its digits (a mean of 1e14 still holds its units to
    a hundredth, so partials merged again and again keep 1e-5 of it; Polars 3.5e-6)."""
    deviations = [(i * 7919) % 10 for i in range(4_000)]
    df = pl.DataFrame({"k": [0] * len(deviations), "w": [10**14 + d for d in deviations]})
    parts = split(df, ranks.size(nranks), None)
    outs = run_collective(
        parts, lambda c, i, o: actors.groupby_agg(c, i, o, keys, {"w": ["var", "std"]}),
        chunk_rows=1,
    )  # fmt: skip
    got = pl.concat(outs).row(0, named=True)
    exact = float(np.var(deviations, ddof=1))
    assert got["w_var"] == pytest.approx(exact, rel=1e-4)
    assert got["w_std"] == pytest.approx(exact**0.5, rel=1e-4)


@pytest.mark.parametrize("keys", [["k"], []], ids=["grouped", "global"])
def test_mean_of_decimals_whose_sum_passes_38_digits(keys: list[str]) -> None:
    """Two values of 33 digits (scale 5) summed to a decimal of 39 digits: the grouped
    mean wrapped around to -7.01e32, the global one raised; Polars gives 1e33. Decimals
    of at most 28 digits are still summed exactly (a mean of ten 0.1s is 0.1)."""
    wide = pl.DataFrame(
        {"k": [1, 1], "v": pl.Series([Decimal(10**33 - 1)] * 2, dtype=pl.Decimal(38, 5))}
    )
    narrow = pl.DataFrame(
        {"k": [1] * 10, "v": pl.Series([Decimal("0.1")] * 10, dtype=pl.Decimal(15, 2))}
    )
    for frame in (wide, narrow):
        with Context() as ctx:
            src, out = ctx.create_channel(), ctx.create_channel()
            sink = actors.collect(ctx, out, into="polars")
            Network(ctx, [
                actors.from_polars(ctx, src, frame, chunk_rows=1),
                actors.groupby_agg(ctx, src, out, keys, [("v", "mean", "v")]),
                sink,
            ]).run()  # fmt: skip
        expected = (
            frame.group_by(keys).agg(pl.col("v").mean())
            if keys
            else frame.select(pl.col("v").mean())
        )
        assert_frame_equal(sink.result(), expected)


@pytest.mark.parametrize(("keys", "joined"), [(["k"], True), ([], True), (["u"], False)])
def test_a_group_by_joins_waiting_chunks_once_partials_shrink_them(
    monkeypatch: pytest.MonkeyPatch, keys: list[str], joined: bool
) -> None:
    """Chunks already waiting in a group-by's input are aggregated together (fewer kernel
    calls) once partials prove much smaller than their rows (few keys, or none); with a
    key per row they stay one call per chunk. The answer is Polars' either way."""
    from streamnet.backends.cpu._aggregate import CpuAggregationKernel

    calls: list[int] = []
    partial = CpuAggregationKernel.partial

    def counted(self: CpuAggregationKernel, chunk: Any) -> Any:
        calls.append(chunk.num_rows)
        return partial(self, chunk)

    monkeypatch.setattr(CpuAggregationKernel, "partial", counted)
    n, chunk_rows = 40_000, 500
    frame = pl.DataFrame({"k": [i % 7 for i in range(n)], "u": range(n), "v": range(n)})
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        Network(
            ctx,
            [
                actors.from_polars(ctx, a, frame, chunk_rows=chunk_rows),
                actors.groupby_agg(ctx, a, b, keys, [("v", "sum", "v")]),
                sink,
            ],
            fuse=False,
        ).run(progress=False)
    want = frame.group_by(keys).agg(pl.col("v").sum()) if keys else frame.select(pl.col("v").sum())
    got = sink.result()
    assert_frame_equal(got.sort(keys) if keys else got, want.sort(keys) if keys else want)
    assert sum(calls) == n
    chunks = n // chunk_rows
    assert (len(calls) < chunks) if joined else (len(calls) == chunks)
