"""Predicate pushdown: filters written after joins, group-bys and collectives move to the
sources where that keeps the answer, and every network gives what Polars gives, pushed
down or not, on one rank and two."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import ranks
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import actors
from actors._pushed import PushedFilter
from streamnet import (
    ActorNode,
    Context,
    FileReadError,
    Filter,
    Network,
    Predicate,
    TableChunk,
    define_actor,
)

Build = Callable[[Context, Any], list[ActorNode[Any]]]


@st.composite
def _side(draw: st.DrawFn, extra: str) -> pl.DataFrame:
    n = draw(st.integers(0, 40))
    ints = st.one_of(st.none(), st.integers(-3, 3))

    def column(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(values, min_size=n, max_size=n))

    data: dict[str, list[Any]] = {
        "k": column(st.one_of(st.none(), st.integers(0, 6))),
        "x": column(ints),
    }
    if extra == "s":
        data["s"] = column(st.one_of(st.none(), st.sampled_from(["a", "b", "cc"])))
        return pl.DataFrame(data, schema={"k": pl.Int64, "x": pl.Int64, "s": pl.String})
    data["y"] = column(st.one_of(st.none(), st.floats(-2, 2, allow_nan=False)))
    return pl.DataFrame(data, schema={"k": pl.Int64, "x": pl.Int64, "y": pl.Float64})


def _parts(df: pl.DataFrame, nranks: int) -> list[pl.DataFrame]:
    step = -(-df.height // nranks) if df.height else 0
    return [df.slice(r * step, step) if step else df.head(0) for r in range(nranks)]


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns, nulls_last=True)


def _run(nranks: int, build: Build, *, pushdown: bool) -> tuple[pl.DataFrame, dict[str, list[str]]]:
    """What the network gives (its ranks' outputs together) and, per source, the predicates
    pushed to it (as text)."""

    async def job(ctx: Context) -> tuple[pl.DataFrame, dict[str, list[str]]]:
        out = ctx.create_channel()
        nodes = build(ctx, out)
        sink = actors.collect(ctx, out, into="polars")
        await Network(ctx, [*nodes, sink], pushdown=pushdown).run_async()
        pushed = {  # the predicates of filters (key filters: test_key_filters.py)
            n.name: sorted(str(p.expr) for p in n.pushed_predicates if not p.key_sets)
            for n in nodes
            if n.definition.pushdown
        }
        return sink.result(), pushed

    outs = ranks.run(nranks, job)
    frames = [frame for frame, _ in outs if frame.width]
    got = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
    return got, outs[0][1]


def _both_ways(nranks: int, build: Build, want: pl.DataFrame) -> dict[str, list[str]]:
    """Run with and without pushdown, check both give ``want`` (any row order); the pushed."""
    pushed: dict[str, list[str]] = {}
    for pushdown in (True, False):
        got, moved = _run(nranks, build, pushdown=pushdown)
        if got.width == 0:  # no rank sent a chunk: an empty answer
            assert want.height == 0
        else:
            assert_frame_equal(_sorted(got), _sorted(want), check_dtypes=False)
        if pushdown:
            pushed = moved
        else:
            assert not any(moved.values())
    return pushed


# ------------------------------------------------------------------ joins
JOIN_PREDICATES: list[tuple[pl.Expr, str, pl.Expr]] = [
    # (filter after the join, the side its columns come from, the predicate on that side)
    (pl.col("s") != "a", "left", pl.col("s") != "a"),
    (pl.col("x") > 0, "left", pl.col("x") > 0),
    (pl.col("x_right") > 0, "right", pl.col("x") > 0),
    (pl.col("y").is_null(), "right", pl.col("y").is_null()),
    (pl.col("k") >= 3, "key", pl.col("k") >= 3),
    (pl.col("k").is_null(), "key", pl.col("k").is_null()),
    (pl.col("x") > pl.col("x_right"), "both", pl.lit(True)),
]

KEEPS = {
    "inner": {"left", "right"}, "left": {"left"}, "right": {"right"}, "full": set(),
    "semi": {"left"}, "anti": {"left"},
}  # fmt: skip
"""The sides whose rows a join keeps as they are: where a predicate over them may move."""


def _join_network(
    left: list[pl.DataFrame], right: list[pl.DataFrame], how: str, predicate: pl.Expr, strategy: str
) -> Build:
    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        return [
            actors.from_polars(ctx, a, left[ctx.rank], chunk_rows=7).named("left"),
            actors.from_polars(ctx, b, right[ctx.rank], chunk_rows=5).named("right"),
            actors.join(ctx, a, b, c, on="k", how=how, strategy=strategy),  # type: ignore[arg-type]
            actors.filter(ctx, c, out, predicate),
        ]

    return build


@settings(max_examples=30, deadline=None)
@given(
    left=_side("s"),
    right=_side("y"),
    how=st.sampled_from(list(KEEPS)),
    case=st.sampled_from(JOIN_PREDICATES),
    nranks=st.sampled_from([1, 2]),
    strategy=st.sampled_from(["auto", "shuffle"]),
)
def test_a_filter_after_a_join_moves_to_a_kept_side_and_the_answer_stays_polars(
    left: pl.DataFrame,
    right: pl.DataFrame,
    how: str,
    case: tuple[pl.Expr, str, pl.Expr],
    nranks: int,
    strategy: str,
) -> None:
    predicate, side, moved = case
    joined = left.join(right, on="k", how=how)  # type: ignore[arg-type]
    if not set(predicate.meta.root_names()) <= set(joined.columns):
        predicate, side, moved = pl.col("x") > 0, "left", pl.col("x") > 0  # semi, anti: left only
    nranks = ranks.size(nranks)
    build = _join_network(_parts(left, nranks), _parts(right, nranks), how, predicate, strategy)
    pushed = _both_ways(nranks, build, joined.filter(predicate))
    key_side = "right" if how == "right" else "left"
    origin = key_side if side == "key" and how != "full" else side
    for source in ("left", "right"):
        expected = [str(moved)] if origin == source and source in KEEPS[how] else []
        assert pushed[source] == expected, (how, str(predicate), source)


def test_a_conjunction_after_a_join_splits_and_each_part_goes_its_own_way() -> None:
    left = pl.DataFrame({"k": [1, 2, 3, None], "x": [5, -1, 7, 1], "s": ["a", "b", "a", "b"]})
    right = pl.DataFrame({"k": [1, 2, 3, 3], "x": [1, 2, 3, 4], "y": [0.5, None, 1.5, -1.0]})
    predicate = (pl.col("x") > 0) & (pl.col("y") > 0.0) & (pl.col("x") > pl.col("x_right"))
    build = _join_network([left], [right], "inner", predicate, "auto")
    pushed = _both_ways(1, build, left.join(right, on="k").filter(predicate))
    assert pushed == {"left": [str(pl.col("x") > 0)], "right": [str(pl.col("y") > 0.0)]}


def test_a_predicate_moves_through_several_joins_renamed_at_each() -> None:
    orders = pl.DataFrame({"o": [1, 2, 3, 4], "c": [10, 20, 10, 30], "d": [5, 6, 7, 8]})
    customers = pl.DataFrame({"c": [10, 20, 30], "seg": ["B", "A", "B"]})
    items = pl.DataFrame(
        {"o": [1, 1, 2, 3, 4, 4], "d": [1, 9, 2, 3, 4, 9], "q": [1, 2, 3, 4, 5, 6]}
    )
    predicate = (pl.col("seg") == "B") & (pl.col("d_right") > 2) & (pl.col("d") < 8)

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b, c, d, e, f = (ctx.create_channel() for _ in range(6))
        return [
            actors.from_polars(ctx, a, customers).named("customers"),
            actors.from_polars(ctx, b, orders).named("orders"),
            actors.from_polars(ctx, d, items).named("items"),
            actors.join(ctx, a, b, c, on="c"),
            actors.join(ctx, c, d, e, on="o"),
            actors.sort(ctx, e, f, "q"),
            actors.filter(ctx, f, out, predicate),
        ]

    want = customers.join(orders, on="c").join(items, on="o").filter(predicate)
    pushed = _both_ways(1, build, want)
    assert pushed == {
        "customers": [str(pl.col("seg") == "B")],
        "orders": [str(pl.col("d") < 8)],
        "items": [str(pl.col("d") > 2)],
    }


# ------------------------------------------------------------------ group-by, sort, shuffle
@settings(max_examples=12, deadline=None)
@given(df=_side("s"), nranks=st.sampled_from([1, 2]), over_keys=st.booleans())
def test_a_filter_over_group_keys_moves_before_the_group_by(
    df: pl.DataFrame, nranks: int, over_keys: bool
) -> None:
    predicate = (pl.col("k") >= 2) & pl.col("s").is_not_null() if over_keys else pl.col("x_sum") > 0
    nranks = ranks.size(nranks)
    parts = _parts(df, nranks)

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b = ctx.create_channel(), ctx.create_channel()
        return [
            actors.from_polars(ctx, a, parts[ctx.rank], chunk_rows=6),
            actors.groupby_agg(ctx, a, b, ["k", "s"], [("x", "sum"), ("*", "len")]),
            actors.filter(ctx, b, out, predicate),
        ]

    want = df.group_by("k", "s").agg(pl.col("x").sum().alias("x_sum"), pl.len()).filter(predicate)
    pushed = _both_ways(nranks, build, want)
    moved = sorted(str(p) for p in (pl.col("k") >= 2, pl.col("s").is_not_null()))
    assert pushed["from_polars#0"] == (moved if over_keys else [])


@settings(max_examples=12, deadline=None)
@given(df=_side("y"), nranks=st.sampled_from([1, 2]), shuffle=st.booleans())
def test_a_filter_after_a_sort_or_a_shuffle_moves_before_it(
    df: pl.DataFrame, nranks: int, shuffle: bool
) -> None:
    predicate = (pl.col("x") != 0) & pl.col("y").is_not_null()
    nranks = ranks.size(nranks)
    parts = _parts(df, nranks)

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b, c = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
        collective = actors.shuffle(ctx, a, b, "k") if shuffle else actors.sort(ctx, a, b, "x")
        return [
            actors.from_polars(ctx, a, parts[ctx.rank], chunk_rows=4),
            collective,
            actors.rechunk(ctx, b, c, rows=5),
            actors.filter(ctx, c, out, predicate),
        ]

    want = df.filter(predicate)
    pushed = _both_ways(nranks, build, want)
    assert len(pushed["from_polars#0"]) == 2
    if not shuffle:  # the ranks' outputs in rank order are the sorted stream
        got, _ = _run(nranks, build, pushdown=True)
        if got.width:
            assert got["x"].to_list() == want.sort("x")["x"].to_list()


# ------------------------------------------------------------------ what must not move
@define_actor
async def _pass_on(ctx: Context, ch_in: Any, ch_out: Any) -> None:
    """A user actor: its code is not known, so nothing moves past it."""
    async for msg in ch_in:
        await ch_out.send(ctx, msg)


BARRIERS: dict[str, tuple[Callable[[Context, Any, Any], ActorNode[Any]], pl.Expr]] = {
    "limit": (lambda ctx, i, o: actors.limit(ctx, i, o, 5), pl.col("x") > 0),
    "top_k": (lambda ctx, i, o: actors.top_k(ctx, i, o, "y", 4), pl.col("x") > 0),
    "map_chunks": (lambda ctx, i, o: actors.map_chunks(ctx, i, o, lambda t: t), pl.col("x") > 0),
    "user actor": (lambda ctx, i, o: _pass_on(ctx, i, o), pl.col("x") > 0),
    "with_columns redefining": (
        lambda ctx, i, o: actors.with_columns(ctx, i, o, x=pl.col("x") - 1),
        pl.col("x") > 0,
    ),
    "select computing": (
        lambda ctx, i, o: actors.select(ctx, i, o, (pl.col("x") * -1).alias("x"), "y"),
        pl.col("x") > 0,
    ),
    "cast": (lambda ctx, i, o: actors.cast(ctx, i, o, {"x": pl.Float64}), pl.col("x") > 0.5),
    "group-by aggregate": (
        lambda ctx, i, o: actors.groupby_agg(ctx, i, o, "k", [("x", "max")]),
        pl.col("x_max") > 0,
    ),
    "distinct off its subset": (
        lambda ctx, i, o: actors.distinct(ctx, i, o, "k", keep="first"),
        pl.col("x") > 0,
    ),
    "a strict cast": (
        lambda ctx, i, o: actors.rechunk(ctx, i, o, rows=2),
        pl.col("y").cast(pl.Int8) > 0,
    ),
}


@pytest.mark.parametrize("case", BARRIERS)
def test_a_filter_does_not_move_past_what_would_change_its_answer(case: str) -> None:
    make, predicate = BARRIERS[case]
    df = pl.DataFrame({"k": [1, 1, 2, 2, 3, 3, 4, 4], "x": [-1, 2, 3, -4, 5, 0, -7, 8],
                       "y": [0.5, 1.5, 2.0, -1.0, 3.0, 4.0, 0.0, 2.5]})  # fmt: skip

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b = ctx.create_channel(), ctx.create_channel()
        return [
            actors.from_polars(ctx, a, df, chunk_rows=3),
            make(ctx, a, b),
            actors.filter(ctx, b, out, predicate),
        ]

    answers = []
    for pushdown in (True, False):
        got, pushed = _run(1, build, pushdown=pushdown)
        assert pushed == {"from_polars#0": []}
        answers.append(got)
    assert_frame_equal(_sorted(answers[0]), _sorted(answers[1]))
    assert answers[0].height > 0


@pytest.mark.parametrize(
    ("how", "predicate"),
    [
        ("left", pl.col("y").is_null()),  # the right side's nulls are those of unmatched rows
        ("right", pl.col("s").is_null()),
        ("full", pl.col("s") == "a"),
        ("full", pl.col("y") > 0),
        ("inner", pl.col("x") > pl.col("x_right")),
    ],
)
def test_a_filter_does_not_move_to_a_side_the_join_fills_with_nulls(
    how: str, predicate: pl.Expr
) -> None:
    left = pl.DataFrame({"k": [1, 2, 3], "x": [1, 2, 3], "s": ["a", None, "b"]})
    right = pl.DataFrame({"k": [2, 3, 4], "x": [0, 5, 1], "y": [None, 1.0, 2.0]})
    build = _join_network([left], [right], how, predicate, "auto")
    pushed = _both_ways(1, build, left.join(right, on="k", how=how).filter(predicate))  # type: ignore[arg-type]
    assert pushed == {"left": [], "right": []}
    assert left.join(right, on="k", how=how).filter(predicate).height > 0  # type: ignore[arg-type]


def test_a_join_whose_input_columns_are_not_known_moves_nothing_across() -> None:
    left = pl.DataFrame({"k": [1, 2, 3], "x": [1, -2, 3]})
    right = pl.DataFrame({"k": [1, 2, 3], "z": [4, 5, 6]})

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b, c, d = (ctx.create_channel() for _ in range(4))
        return [
            actors.from_polars(ctx, a, left).named("left"),
            actors.from_polars(ctx, b, right).named("right"),
            _pass_on(ctx, b, c),  # `x` might come from this side: nothing says it does not
            actors.join(ctx, a, c, d, on="k"),
            actors.filter(ctx, d, out, (pl.col("x") > 0) & (pl.col("z") > 4)),
        ]

    want = left.join(right, on="k").filter((pl.col("x") > 0) & (pl.col("z") > 4))
    assert _both_ways(1, build, want) == {"left": [], "right": []}


def test_a_fan_out_moves_only_what_both_branches_drop() -> None:
    df = pl.DataFrame({"k": [1, 2, 3, 4], "x": [-1, 2, -3, 4]})

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b, c, d, e = (ctx.create_channel() for _ in range(5))
        return [
            actors.from_polars(ctx, a, df),
            actors.fanout(ctx, a, [b, c]),
            actors.filter(ctx, b, d, (pl.col("x") > 0) & (pl.col("k") < 4)),
            actors.filter(ctx, c, e, pl.col("x") > 0),
            actors.concat(ctx, [d, e], out),
        ]

    want = pl.concat([df.filter((pl.col("x") > 0) & (pl.col("k") < 4)), df.filter(pl.col("x") > 0)])
    assert _both_ways(1, build, want) == {"from_polars#0": [str(pl.col("x") > 0)]}


@given(
    df=_side("y"),
    first=st.integers(-3, 3),
    second=st.integers(-3, 3),
    nranks=st.sampled_from([1, 2]),
)
@settings(max_examples=15, deadline=None)
def test_a_fan_out_moves_the_disjunction_of_what_its_branches_drop(
    df: pl.DataFrame, first: int, second: int, nranks: int
) -> None:
    """Each branch keeps its own rows: the source may drop those that neither keeps."""
    one = (pl.col("x") > first) & (pl.col("k") < 4)
    other = (pl.col("x") > first) & (pl.col("y") < second)

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b, c, d, e, f = (ctx.create_channel() for _ in range(6))
        return [
            actors.from_polars(ctx, a, _parts(df, ctx.nranks)[ctx.rank], chunk_rows=7),
            actors.fanout(ctx, a, [b, c]),
            actors.filter(ctx, b, d, one),
            actors.select(ctx, c, e, "k", "x", "y"),  # a step between: the predicates pass it
            actors.filter(ctx, e, f, other),
            actors.concat(ctx, [d, f], out),
        ]

    want = pl.concat([df.filter(one), df.filter(other)])
    pushed = _both_ways(nranks, build, want)["from_polars#0"]
    assert len(pushed) == 2  # `x > first`, common to both, and the rest of each, either way
    assert str(pl.col("x") > first) in pushed
    assert any("any_horizontal" in p for p in pushed)


# ------------------------------------------------------------------ the scan, and explain
def test_a_filter_after_a_join_prunes_the_scan_s_row_groups_and_explain_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streamnet.network._predicates.KEY_FILTER_MIN_ROWS", 0)  # a small fact
    fact = pl.DataFrame(
        {"k": [i % 10 for i in range(1000)], "t": range(1000), "v": [i * 0.5 for i in range(1000)]}
    )
    dim = pl.DataFrame({"k": range(10), "name": [f"n{i % 3}" for i in range(10)]})
    fact.write_parquet(tmp_path / "fact.parquet", row_group_size=100)
    dim.write_parquet(tmp_path / "dim.parquet")
    predicate = (pl.col("t") >= 900) & (pl.col("name") == "n1")
    want = fact.join(dim, on="k").filter(predicate)
    reports = {}
    for pushdown in (True, False):
        with Context() as ctx:
            a, b, c, out = (ctx.create_channel() for _ in range(4))
            scan = actors.read_parquet(ctx, a, tmp_path / "fact.parquet")
            sink = actors.collect(ctx, out, into="polars")
            network = Network(ctx, [
                scan, actors.read_parquet(ctx, b, tmp_path / "dim.parquet"),
                actors.join(ctx, a, b, c, on="k"), actors.filter(ctx, c, out, predicate), sink,
            ], pushdown=pushdown)  # fmt: skip
            network.run()
            assert_frame_equal(_sorted(sink.result()), _sorted(want))
            reports[pushdown] = scan.result()
            explained = network.explain()
    assert reports[True].row_groups_read == 1 and reports[False].row_groups_read == 10
    assert reports[True].rows_emitted == want.height  # and the key filter of the dimension
    assert "skips the rows" not in explained  # the last run: without pushdown
    with Context() as ctx:
        a, b, c, out = (ctx.create_channel() for _ in range(4))
        network = Network(ctx, [
            actors.read_parquet(ctx, a, tmp_path / "fact.parquet"),
            actors.read_parquet(ctx, b, tmp_path / "dim.parquet"),
            actors.join(ctx, a, b, c, on="k"), actors.filter(ctx, c, out, predicate),
            actors.collect(ctx, out),
        ])  # fmt: skip
        lines = network.explain().splitlines()
    assert (
        "source `read_parquet#0` skips the rows that `filter#0` drops: " + str(pl.col("t") >= 900)
        in lines
    )
    assert (
        "source `read_parquet#1` skips the rows that `filter#0` drops: "
        + str(pl.col("name") == "n1")
        in lines
    )


def test_a_csv_source_drops_the_rows_a_filter_after_a_sort_drops(tmp_path: Path) -> None:
    df = pl.DataFrame({"k": range(100), "x": [i % 7 - 3 for i in range(100)]})
    df.write_csv(tmp_path / "t.csv")
    predicate = pl.col("x") > 1
    sent = {}
    for pushdown in (True, False):
        with Context() as ctx:
            a, b, out = (ctx.create_channel() for _ in range(3))
            sink = actors.collect(ctx, out, into="polars")
            network = Network(ctx, [
                actors.read_csv(ctx, a, tmp_path / "t.csv", block_size=200),
                actors.sort(ctx, a, b, "k", descending=True),
                actors.filter(ctx, b, out, predicate),
                sink,
            ], pushdown=pushdown)  # fmt: skip
            network.run()
            assert_frame_equal(sink.result(), df.filter(predicate).sort("k", descending=True))
            sent[pushdown] = network.statistics().actor("read_csv#0").rows_out
    assert sent == {True: df.filter(predicate).height, False: 100}


def test_a_scan_s_own_filters_and_those_pushed_to_it_both_apply(tmp_path: Path) -> None:
    df = pl.DataFrame({"k": range(100), "x": [i % 7 for i in range(100)]})
    df.write_parquet(tmp_path / "t.parquet", row_group_size=10)
    own, after = pl.col("k") >= 50, pl.col("x") > 3
    with Context() as ctx:
        a, b, out = (ctx.create_channel() for _ in range(3))
        scan = actors.read_parquet(ctx, a, tmp_path / "t.parquet", filters=own)
        sink = actors.collect(ctx, out, into="polars")
        network = Network(ctx, [
            scan, actors.sort(ctx, a, b, "k"), actors.filter(ctx, b, out, after), sink
        ])  # fmt: skip
        network.run()
    assert_frame_equal(sink.result(), df.filter(own & after))
    assert scan.result().row_groups_read == 5
    assert scan.result().rows_emitted == df.filter(own & after).height



NON_FINITE: dict[str, Callable[[str], pl.Expr]] = {
    "below infinity": lambda x: (pl.col(x) < float("inf")) & (pl.col("y") > 1),
    "not NaN": lambda x: (pl.col(x) != float("nan")) & (pl.col("y") > 1),
    "above minus infinity, Float32": lambda x: pl.col(x) > pl.lit(float("-inf"), dtype=pl.Float32),
}


@pytest.mark.parametrize("renamed", [False, True])
@pytest.mark.parametrize("case", list(NON_FINITE))
def test_a_predicate_with_a_nan_or_infinite_literal_gives_polars_rows(
    case: str, renamed: bool, tmp_path: Path
) -> None:
    """Polars' JSON form of an expression drops NaN and infinite literals: such a
    predicate is neither split nor moved (through a rename, say), and filters as Polars does."""
    df = pl.DataFrame({"x": [1.0, float("nan"), 3.0, float("inf")], "y": [1, 2, 3, 4]})
    df.write_parquet(tmp_path / "t.parquet")
    column = "z" if renamed else "x"
    predicate = NON_FINITE[case](column)
    with Context() as ctx:
        a, b, out = (ctx.create_channel() for _ in range(3))
        sink = actors.collect(ctx, out, into="polars")
        scan = actors.read_parquet(ctx, a, tmp_path / "t.parquet")
        nodes: list[ActorNode[Any]]
        if renamed:
            nodes = [scan, actors.rename(ctx, a, b, {"x": "z"}), actors.filter(ctx, b, out, predicate)]
        else:
            nodes = [scan, actors.filter(ctx, a, out, predicate)]
        Network(ctx, [*nodes, sink]).run(progress=False)
    assert_frame_equal(sink.result(), df.rename({"x": column}).filter(predicate))


# ------------------------------------------------------------------ filters left out
def test_a_filter_a_scan_applies_is_left_out_with_the_columns_only_it_read(tmp_path: Path) -> None:
    """`name == "n1"` moves through the join to the dimension's scan, which applies it to
    every row: the filter leaves it out, and `name`, which nothing else reads, is no
    longer read by the scan nor carried through the join. `v > w` reads both sides: it
    stays."""
    fact = pl.DataFrame({"k": [i % 10 for i in range(200)], "v": range(200)})
    dim = pl.DataFrame(
        {"k": range(10), "name": [f"n{i % 3}" for i in range(10)], "w": range(0, 100, 10)}
    )
    fact.write_parquet(tmp_path / "fact.parquet", row_group_size=50)
    dim.write_parquet(tmp_path / "dim.parquet")
    predicate = (pl.col("name") == "n1") & (pl.col("v") > pl.col("w"))
    want = fact.join(dim, on="k").filter(predicate).select("k", "v")
    with Context() as ctx:
        a, b, c, d, out = (ctx.create_channel() for _ in range(5))
        scan = actors.read_parquet(ctx, b, tmp_path / "dim.parquet")
        sink = actors.collect(ctx, out, into="polars")
        network = Network(ctx, [
            actors.read_parquet(ctx, a, tmp_path / "fact.parquet"), scan,
            actors.join(ctx, a, b, c, on="k"), actors.filter(ctx, c, d, predicate),
            actors.select(ctx, d, out, "k", "v"), sink,
        ])  # fmt: skip
        network.run(progress=False)
        explained = network.explain().splitlines()
    assert_frame_equal(_sorted(sink.result()), _sorted(want))
    assert scan.pruned_columns is not None and "name" not in scan.pruned_columns
    assert scan.committed_predicates == {Predicate(pl.col("name") == "n1")}
    filter_node = network.actors[3]
    assert filter_node.implied_predicates == {Predicate(pl.col("name") == "n1")}
    step = filter_node.step()
    assert isinstance(step, Filter)  # what is left: the conjunct over both sides
    assert str(step.predicate) == str(pl.col("v") > pl.col("w"))
    assert (
        "filter `filter#0` leaves out what its input holds already: " + str(pl.col("name") == "n1")
        in explained
    )


@pytest.mark.parametrize("nranks", [1, 2])
def test_a_filter_left_with_nothing_passes_its_chunks_on(nranks: int) -> None:
    df = pl.DataFrame({"k": [3, 1, 2, 5, 4] * 4, "x": [-1, 2, 0, 4, -5] * 4})

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b = ctx.create_channel(), ctx.create_channel()
        return [
            actors.from_polars(ctx, a, _parts(df, ctx.nranks)[ctx.rank], chunk_rows=3),
            actors.sort(ctx, a, b, "k"),
            actors.filter(ctx, b, out, pl.col("x") > 0),
        ]

    assert _both_ways(ranks.size(nranks), build, df.filter(pl.col("x") > 0)) == {
        "from_polars#0": [str(pl.col("x") > 0)]
    }
    with Context() as ctx:
        out = ctx.create_channel()
        nodes = [*build(ctx, out), actors.collect(ctx, out, into="polars")]
        Network(ctx, nodes).run(progress=False)
        assert nodes[2].step() is None and not nodes[2].filters_rows()
        assert_frame_equal(
            nodes[3].result(), df.filter(pl.col("x") > 0).sort("k", maintain_order=True)
        )


def test_a_filter_stays_whole_where_its_input_does_not_hold_its_predicate() -> None:
    """Each branch of a fan-out filters its own way: the source drops what neither keeps
    (the disjunction), which holds neither branch's own predicate. A filter after an
    actor of unknown code gets nothing moved, and leaves nothing out either."""
    df = pl.DataFrame({"k": [1, 2, 3, 4], "x": [-1, 2, -3, 4]})

    @define_actor
    async def unknown(ctx: Context, ch_in: Any, ch_out: Any) -> None:
        while (msg := await ch_in.recv(ctx)) is not None:
            await ch_out.send(ctx, msg)
        await ch_out.drain(ctx)

    with Context() as ctx:
        a, b, c, d, e, f, g, out = (ctx.create_channel() for _ in range(8))
        one = actors.filter(ctx, b, d, pl.col("x") > 0)
        other = actors.filter(ctx, c, e, pl.col("k") < 3)
        after = actors.filter(ctx, g, out, pl.col("x") < 4)
        sink = actors.collect(ctx, out, into="polars")
        network = Network(ctx, [
            actors.from_polars(ctx, a, df), actors.fanout(ctx, a, [b, c]), one, other,
            actors.concat(ctx, [d, e], f), unknown(ctx, f, g), after, sink,
        ])  # fmt: skip
        network.run(progress=False)
    assert not one.implied_predicates and not other.implied_predicates
    assert not after.implied_predicates
    assert "leaves out" not in network.explain()
    want = pl.concat([df.filter(pl.col("x") > 0), df.filter(pl.col("k") < 3)])
    assert_frame_equal(_sorted(sink.result()), _sorted(want.filter(pl.col("x") < 4)))


def test_a_source_that_cannot_apply_a_committed_predicate_names_its_filter() -> None:
    """A filter that left a conjunct out trusts its source to apply it: where the source
    cannot (here, a chunk lacks its column), the error names that filter; a predicate
    the source was pushed but not committed to is left to its filter, as before."""
    predicate = Predicate(pl.col("name") == "n1", origin="filter#7")
    chunk = TableChunk.from_polars(pl.DataFrame({"k": [1, 2]}))
    with Context() as ctx:
        loose = PushedFilter(ctx, [predicate], "read#0")
        assert loose(chunk).to_polars().height == 2
        strict = PushedFilter(ctx, [predicate], "read#0", committed={predicate})
        with pytest.raises(Exception, match="filter#7"):
            strict(chunk)


def test_a_network_lists_a_scan_s_files_once_however_many_passes_ask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pushdown's passes each ask a source for its columns (``emits``): a node answers
    once, so a hive dataset's folders are listed once while the Network is made."""
    import actors._parquet as parquet_module

    listed: list[object] = []
    real = parquet_module._located  # noqa: SLF001 - the lister this test counts

    def counted(*args: Any, **kwargs: Any) -> Any:
        listed.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(parquet_module, "_located", counted)
    frame = pl.DataFrame({"k": [i % 3 for i in range(12)], "x": range(12)})
    frame.write_parquet(tmp_path / "data", partition_by=["k"])
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        nodes: list[ActorNode[Any]] = [
            actors.read_parquet(ctx, a, tmp_path / "data"),
            actors.filter(ctx, a, b, pl.col("x") > 3),
            sink,
        ]
        network = Network(ctx, nodes)
        assert len(listed) == 1
        network.run(progress=False)
    assert len(listed) == 2  # and once more to read them
    assert_frame_equal(
        sink.result().sort("x"), pl.scan_parquet(tmp_path / "data").filter(pl.col("x") > 3).collect().sort("x")
    )


def test_a_scan_that_cannot_apply_a_committed_predicate_raises_its_filter_s_error(
    tmp_path: Path,
) -> None:
    """A Parquet scan that a filter left its predicate to, where the predicate does not
    apply to the file's columns, fails with that filter's error (as the filter would
    have), not with rows the filter should have dropped."""
    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(tmp_path / "x.parquet")
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        nodes: list[ActorNode[Any]] = [
            actors.read_parquet(ctx, a, tmp_path / "x.parquet"),
            actors.filter(ctx, a, b, pl.col("x").str.contains("1")),
            sink,
        ]
        network = Network(ctx, nodes)
        assert "filter `filter#0` leaves out" in network.explain()
        with pytest.raises(Exception, match=r"filter#0") as raised:
            network.run(progress=False)
    assert "str" in str(raised.value).lower()


def _failing_filter_network(ctx: Context, source: ActorNode[Any], a: Any) -> Network:
    """``source`` into a filter comparing the string column ``s`` with a number: a
    predicate that compiles, moves into the source, and fails on the rows."""
    b = ctx.create_channel()
    sink = actors.collect(ctx, b, into="polars")
    return Network(ctx, [source, actors.filter(ctx, a, b, pl.col("s") > 5), sink])


@pytest.mark.parametrize("where", ["parquet", "memory"])
def test_a_pushed_predicate_that_fails_on_the_rows_names_its_filter_not_the_file(
    tmp_path: Path, where: str
) -> None:
    """A predicate a filter left to its source that compiles but fails on the rows (a
    Parquet reader's row-group statistics fail first) fails with the error the filter's
    own step would have raised, naming that filter; a file that reads well is not called
    unreadable (no `FileReadError`)."""
    frame = pl.DataFrame({"s": ["7", "a", "9"], "x": [1, 2, 3]})
    frame.write_parquet(tmp_path / "s.parquet")
    with Context() as ctx:
        a = ctx.create_channel()
        source = (
            actors.read_parquet(ctx, a, tmp_path / "s.parquet")
            if where == "parquet"
            else actors.from_polars(ctx, a, frame)
        )
        network = _failing_filter_network(ctx, source, a)
        assert "skips the rows that `filter#0` drops" in network.explain()
        with pytest.raises(pl.exceptions.ComputeError) as raised:
            network.run(progress=False)
    assert not isinstance(raised.value, FileReadError)
    notes = "\n".join(getattr(raised.value, "__notes__", []))
    assert "in the Filter step of actor `filter#0`" in notes
    assert f"source `{source.name}` applies for it" in notes


def test_a_scan_whose_own_filters_fail_on_the_rows_says_so(tmp_path: Path) -> None:
    """No filter downstream to name: the error of the scan's own ``filters=`` says it
    comes from the scan's predicate, and is not a `FileReadError`."""
    pl.DataFrame({"s": ["7", "a"]}).write_parquet(tmp_path / "s.parquet")
    with Context() as ctx:
        a = ctx.create_channel()
        scan = actors.read_parquet(
            ctx, a, tmp_path / "s.parquet", filters=pl.col("s").cast(pl.Int64) > 5
        )
        sink = actors.collect(ctx, a, into="polars")
        with pytest.raises(pl.exceptions.InvalidOperationError) as raised:
            Network(ctx, [scan, sink]).run(progress=False)
    notes = "\n".join(getattr(raised.value, "__notes__", []))
    assert f"in the predicate the scan of actor `{scan.name}` applies" in notes


def test_an_unreadable_file_is_still_a_file_read_error_with_predicates_pushed(
    tmp_path: Path,
) -> None:
    """The blame of a pushed predicate reads the rows again: a file that cannot be read
    stays a `FileReadError` naming it."""
    path = tmp_path / "s.parquet"
    pl.DataFrame({"s": [str(i) for i in range(2000)]}).write_parquet(path, compression="zstd")
    data = bytearray(path.read_bytes())
    data[40:400] = b"\xff" * 360  # the column chunk's pages, after the magic bytes
    path.write_bytes(bytes(data))
    with Context() as ctx:
        a = ctx.create_channel()
        network = _failing_filter_network(ctx, actors.read_parquet(ctx, a, path), a)
        with pytest.raises(FileReadError, match="s.parquet"):
            network.run(progress=False)
