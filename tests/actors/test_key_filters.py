"""Key filters: a join that reads a cut-down input whole gives its keys to the sources of
its other input, which skip the rows that cannot match (on several ranks, the keys of every
rank's share); answers stay Polars', and a network that could stall for it does without."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import ranks
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import actors
from streamnet import ActorNode, Channel, Context, Message, Network, TableChunk, define_actor


@pytest.fixture(autouse=True)
def _small_inputs_get_key_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tables are small; a Network makes key filters only for inputs of 2^20 rows or
    more (see the test of that), so the others lower the bar."""
    monkeypatch.setattr("streamnet.network._predicates.KEY_FILTER_MIN_ROWS", 0)
    monkeypatch.setattr("streamnet.network._predicates.INHERITED_KEY_FILTER_MIN_ROWS", 0)


ORDERS = pl.DataFrame(
    {"o": range(40), "c": [i % 7 for i in range(40)], "d": [i % 5 for i in range(40)]}
)
ITEMS = pl.DataFrame({"o": [i % 40 for i in range(200)], "q": [i % 11 for i in range(200)]})
CUSTOMERS = pl.DataFrame({"c": range(7), "seg": ["A", "B", "A", "C", "B", "A", "C"]})


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns, nulls_last=True)


def _job(build: Any, *, pushdown: bool = True, explain: bool = False) -> Any:
    """A rank's job: the answer, the key filters each source got (as explain words them),
    the rows each source sent, and explain() if asked."""

    async def job(ctx: Context) -> Any:
        out = ctx.create_channel()
        nodes = build(ctx, out)
        sink = actors.collect(ctx, out, into="polars")
        network = Network(ctx, [*nodes, sink], pushdown=pushdown)
        await network.run_async()
        stats = network.statistics()
        sources = [n for n in nodes if n.definition.pushdown]
        keys = {
            n.name: sorted(p.describe() for p in n.pushed_predicates if p.key_sets)
            for n in sources
        }
        sent = {n.name: stats.actor(n.name).rows_out for n in sources}
        found = sink.result(), keys, sent
        return (*found, network.explain()) if explain else found

    return job


def _run(
    build: Any, *, pushdown: bool = True, nranks: int = 1
) -> tuple[pl.DataFrame, dict[str, list[str]], dict[str, int], str]:
    """The answer, the key filters each source got (as explain words them), the rows each
    source sent, and explain()."""

    outs = ranks.run(nranks, _job(build, pushdown=pushdown, explain=True), within=60)
    frames = [o[0] for o in outs if o[0].width]
    return pl.concat(frames) if frames else pl.DataFrame(), outs[0][1], outs[0][2], outs[0][3]


def test_a_semi_join_gives_its_keys_to_the_sources_of_the_other_side_through_a_join() -> None:
    big = ITEMS.group_by("o").agg(pl.col("q").sum()).filter(pl.col("q") > 30)

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        o, i, i2, oi, per, kept = (ctx.create_channel() for _ in range(6))
        return [
            actors.from_polars(ctx, o, ORDERS, chunk_rows=8).named("orders"),
            actors.from_polars(ctx, i, ITEMS, chunk_rows=30).named("items"),
            actors.join(ctx, o, i, oi, on="o"),
            actors.from_polars(ctx, i2, ITEMS, chunk_rows=30).named("items again"),
            actors.groupby_agg(ctx, i2, per, "o", [("q", "sum", "q")]),
            actors.filter(ctx, per, kept, pl.col("q") > 30),
            actors.join(ctx, oi, kept, out, on="o", how="semi"),
        ]

    want = ORDERS.join(ITEMS, on="o").join(big, on="o", how="semi")
    got, keys, sent, explained = _run(build)
    assert_frame_equal(_sorted(got), _sorted(want))
    by_join = "`o` among the `o` keys `join#1` reads on its right_in input"
    # orders, cut down by the semi join's keys, give theirs to the items in turn
    by_orders = "`o` among the `o` keys `join#0` reads on its left_in input"
    assert keys == {"orders": [by_join], "items": [by_orders, by_join], "items again": []}
    assert (
        sent["orders"] == big.height and sent["items"] == ITEMS.join(big, on="o", how="semi").height
    )
    assert f"source `orders` skips the rows that `join#1` drops: {by_join}" in explained
    got, keys, sent, _ = _run(build, pushdown=False)
    assert_frame_equal(_sorted(got), _sorted(want))
    assert sent["orders"] == ORDERS.height and not any(keys.values())


@pytest.mark.parametrize("segment_first", [True, False])
def test_the_cut_down_side_with_fewer_rows_gives_its_keys(segment_first: bool) -> None:
    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        c, o, co = (ctx.create_channel() for _ in range(3))
        left, right = (c, o) if segment_first else (o, c)
        return [
            actors.from_polars(ctx, c, CUSTOMERS).named("customers"),
            actors.from_polars(ctx, o, ORDERS, chunk_rows=8).named("orders"),
            actors.join(ctx, left, right, co, on="c"),
            actors.filter(ctx, co, out, (pl.col("seg") == "A") & (pl.col("d") < 4)),
        ]

    got, keys, _, _ = _run(build)
    want = CUSTOMERS.join(ORDERS, on="c").filter((pl.col("seg") == "A") & (pl.col("d") < 4))
    assert_frame_equal(_sorted(got.select(want.columns)), _sorted(want))
    side = "left_in" if segment_first else "right_in"
    assert keys == {
        "customers": [],
        "orders": [f"`c` among the `c` keys `join#0` reads on its {side} input"],
    }


@pytest.mark.parametrize("nranks", [1, 2])
def test_branches_of_a_fan_out_cut_their_shared_source_by_the_keys_of_either(nranks: int) -> None:
    """Two branches of one scan, each joined with customers of its own segment (TPC-H Q7):
    the scan skips the rows whose keys neither join has."""
    segments = {"A": 0, "B": 1}

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        o, left, right, done = ctx.create_channel(), ctx.create_channel(), ctx.create_channel(), []
        mine = ORDERS.filter(pl.col("o") % ctx.nranks == ctx.rank)  # each rank's share
        nodes: list[ActorNode[Any]] = [
            actors.from_polars(ctx, o, mine, chunk_rows=8).named("orders"),
            actors.fanout(ctx, o, [left, right]),
        ]
        for segment, branch in zip(segments, (left, right), strict=True):
            c, kept, joined = ctx.create_channel(), ctx.create_channel(), ctx.create_channel()
            nodes += [
                actors.from_polars(ctx, c, CUSTOMERS.filter(pl.col("c") % ctx.nranks == ctx.rank))
                .named(f"customers {segment}"),
                actors.filter(ctx, c, kept, pl.col("seg") == segment),
                actors.join(ctx, branch, kept, joined, on="c"),
            ]
            done.append(joined)
        return [*nodes, actors.concat(ctx, done, out)]

    nranks = ranks.size(nranks)
    got, keys, sent, explained = _run(build, nranks=nranks)
    want = pl.concat(
        [ORDERS.join(CUSTOMERS.filter(pl.col("seg") == s), on="c") for s in segments]
    )
    assert_frame_equal(_sorted(got), _sorted(want))
    either = (
        "either `c` among the `c` keys `join#0` reads on its right_in input "
        "or `c` among the `c` keys `join#1` reads on its right_in input"
    )
    assert keys["orders"] == [either]
    assert f"source `orders` skips the rows that `join#0, join#1` drops: {either}" in explained
    # rank 0's orders were cut by the keys of every rank's customers of either segment
    kept = CUSTOMERS.filter(pl.col("seg").is_in(list(segments)))
    assert sent["orders"] == ORDERS.filter(pl.col("o") % nranks == 0).join(kept, on="c", how="semi").height
    _, keys, sent, _ = _run(build, pushdown=False, nranks=nranks)
    assert not keys["orders"]


def test_a_side_that_shares_its_upstream_gives_no_keys_and_nothing_stalls() -> None:
    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b, c, d = (ctx.create_channel() for _ in range(4))
        return [
            actors.from_polars(ctx, a, ORDERS, chunk_rows=4),
            actors.fanout(ctx, a, [b, c]),
            actors.filter(ctx, c, d, pl.col("d") == 1),
            actors.join(ctx, b, d, out, on="o", how="semi"),  # a self-join: d is read first
        ]

    got, keys, _, _ = _run(build)
    assert_frame_equal(_sorted(got), _sorted(ORDERS.filter(pl.col("d") == 1)))
    assert keys == {"from_polars#0": []}


@pytest.mark.parametrize("limit", [None, 1 << 30])
def test_a_left_side_read_whole_for_its_keys_goes_to_disk_only_under_a_memory_limit(
    limit: int | None,
) -> None:
    """The left side is buffered while the right side's sources wait for its keys. Past
    the broadcast threshold it goes to disk under a memory limit, and stays in memory
    without one (as a right side read whole does)."""

    async def job(ctx: Context) -> tuple[pl.DataFrame, int]:
        c, o, kept, out = (ctx.create_channel() for _ in range(4))
        sink = actors.collect(ctx, out, into="polars")
        network = Network(ctx, [
            actors.from_polars(ctx, c, CUSTOMERS, chunk_rows=2),
            actors.filter(ctx, c, kept, pl.col("seg") == "B"),
            actors.from_polars(ctx, o, ORDERS, chunk_rows=8).named("orders"),
            actors.join(ctx, kept, o, out, on="c", broadcast_threshold=1),
            sink,
        ])  # fmt: skip
        await network.run_async()
        return sink.result(), network.statistics().actor("join#0").spilled_bytes

    [(got, spilled)] = ranks.run(1, job, memory_limit=limit)
    want = CUSTOMERS.filter(pl.col("seg") == "B").join(ORDERS, on="c")
    assert_frame_equal(_sorted(got), _sorted(want.select(got.columns)))
    assert (spilled > 0) == (limit is not None)


@pytest.mark.parametrize("nranks", [2, 3])
def test_on_several_ranks_the_right_sides_keys_are_gathered_from_every_rank(nranks: int) -> None:
    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        c, o, kept = (ctx.create_channel() for _ in range(3))
        part = ORDERS.slice(ctx.rank * 20, 20)
        mine = CUSTOMERS.filter(pl.col("c") % ctx.nranks == ctx.rank)  # every rank's own keys
        return [
            actors.from_polars(ctx, c, mine).named("customers"),
            actors.filter(ctx, c, kept, pl.col("seg") == "B"),
            actors.from_polars(ctx, o, part).named("orders"),
            actors.join(ctx, o, kept, out, on="c"),
        ]

    nranks = ranks.size(nranks)
    got, keys, sent, _ = _run(build, nranks=nranks)
    assert keys["orders"] == ["`c` among the `c` keys `join#0` reads on its right_in input"]
    segment_b = CUSTOMERS.filter(pl.col("seg") == "B")
    want = ORDERS.slice(0, 20 * nranks).join(segment_b, on="c")
    assert_frame_equal(_sorted(got), _sorted(want))
    # rank 0's orders were cut by the keys of every rank's customers
    assert sent["orders"] == ORDERS.head(20).join(segment_b, on="c", how="semi").height


def test_on_several_ranks_a_left_side_gives_no_keys_and_nothing_stalls() -> None:
    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        c, o, kept = (ctx.create_channel() for _ in range(3))
        mine = CUSTOMERS if ctx.rank == 0 else CUSTOMERS.head(0)
        return [
            actors.from_polars(ctx, c, mine).named("customers"),
            actors.filter(ctx, c, kept, pl.col("seg") == "B"),
            actors.from_polars(ctx, o, ORDERS.slice(ctx.rank * 20, 20)).named("orders"),
            actors.join(ctx, kept, o, out, on="c"),  # the cut-down side on the left
        ]

    nranks = ranks.size(2)
    got, keys, sent, _ = _run(build, nranks=nranks)
    want = CUSTOMERS.filter(pl.col("seg") == "B").join(ORDERS.slice(0, 20 * nranks), on="c")
    assert_frame_equal(_sorted(got), _sorted(want))
    assert keys["orders"] == [] and sent["orders"] == 20  # none offered: the left is not read first


@pytest.mark.parametrize("nranks", [2, 3])
def test_ranks_given_different_key_filters_still_agree_and_give_polars_answer(
    monkeypatch: pytest.MonkeyPatch, nranks: int
) -> None:
    """Each rank's Network estimates rows from its own share, so ranks can differ on whether
    a join gets key filters at all (here rank 0's orders pass the bar and the others' do
    not). The join's steps with its peers must not depend on that: it gives the right
    answer, and no filter where any rank had none."""
    monkeypatch.setattr("streamnet.network._predicates.KEY_FILTER_MIN_ROWS", 15)

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        c, o, kept = (ctx.create_channel() for _ in range(3))
        part = ORDERS.slice(0, 20) if ctx.rank == 0 else ORDERS.slice(20, 10)
        return [
            actors.from_polars(ctx, c, CUSTOMERS.filter(pl.col("c") % ctx.nranks == ctx.rank)),
            actors.filter(ctx, c, kept, pl.col("seg") == "B"),
            actors.from_polars(ctx, o, part).named("orders"),
            actors.join(ctx, o, kept, out, on="c"),
        ]

    nranks = ranks.size(nranks)
    outs = ranks.run(nranks, _job(build), within=60)
    got = pl.concat([frame for frame, _, _ in outs])
    orders = pl.concat([ORDERS.slice(0, 20), *[ORDERS.slice(20, 10)] * (nranks - 1)])
    want = orders.join(CUSTOMERS.filter(pl.col("seg") == "B"), on="c")
    assert_frame_equal(_sorted(got), _sorted(want))
    offered = [bool(keys["orders"]) for _, keys, _ in outs]
    assert offered == [True] + [False] * (nranks - 1)
    assert [sent["orders"] for _, _, sent in outs] == [20] + [10] * (nranks - 1)


@pytest.mark.parametrize("own_filter", [True, False])
def test_a_source_cut_down_by_its_own_filters_gives_keys(tmp_path: Path, own_filter: bool) -> None:
    CUSTOMERS.write_parquet(tmp_path / "c.parquet")
    ORDERS.write_parquet(tmp_path / "o.parquet", row_group_size=8)
    segment_b = pl.col("seg") == "B"

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        c, o = ctx.create_channel(), ctx.create_channel()
        filters = segment_b if own_filter else None
        return [
            actors.read_parquet(ctx, c, tmp_path / "c.parquet", filters=filters).named("customers"),
            actors.read_parquet(ctx, o, tmp_path / "o.parquet").named("orders"),
            actors.join(ctx, o, c, out, on="c"),
        ]

    got, keys, sent, _ = _run(build)
    want = ORDERS.join(CUSTOMERS.filter(segment_b) if own_filter else CUSTOMERS, on="c")
    assert_frame_equal(_sorted(got), _sorted(want))
    assert bool(keys["orders"]) == own_filter  # no filter: nothing to gain from the keys
    assert sent["orders"] == want.height if own_filter else ORDERS.height


@pytest.mark.parametrize(
    ("probe_rows", "small_set"),
    [(1000, False), (100, False), (1000, True), (100, True), (60, True)],
)
def test_keys_are_published_only_when_the_other_side_has_rows_enough_per_key(
    probe_rows: int, small_set: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A join publishes its 50 keys where the other side has rows enough per key: fewer
    for a small set (cheap to build for every scan task) than for a large one."""
    from actors import _join_optimiser

    monkeypatch.setattr(_join_optimiser, "SMALL_KEY_SET", 50 if small_set else 49)
    dim = pl.DataFrame({"k": range(100), "tag": ["a", "b"] * 50})
    fact = pl.DataFrame({"k": [i % 100 for i in range(probe_rows)], "v": range(probe_rows)})

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        d, kept, f = (ctx.create_channel() for _ in range(3))
        return [
            actors.from_polars(ctx, d, dim).named("dim"),
            actors.filter(ctx, d, kept, pl.col("tag") == "a"),  # 50 keys
            actors.from_polars(ctx, f, fact, chunk_rows=50).named("fact"),
            actors.join(ctx, f, kept, out, on="k"),
        ]

    got, keys, sent, _ = _run(build)
    assert_frame_equal(_sorted(got), _sorted(fact.join(dim.filter(pl.col("tag") == "a"), on="k")))
    assert keys["fact"]  # offered either way
    per_key = _join_optimiser.ROWS_PER_SMALL_SET_KEY if small_set else _join_optimiser.ROWS_PER_KEY
    pays = probe_rows >= 50 * per_key
    assert pays == (probe_rows == 1000 or (small_set and probe_rows == 100))
    assert sent["fact"] == (got.height if pays else probe_rows)


def test_an_input_of_few_rows_gets_no_key_filter_and_is_read_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("streamnet.network._predicates.KEY_FILTER_MIN_ROWS", ORDERS.height + 1)

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        c, kept, o = (ctx.create_channel() for _ in range(3))
        return [
            actors.from_polars(ctx, c, CUSTOMERS).named("customers"),
            actors.filter(ctx, c, kept, pl.col("seg") == "B"),
            actors.from_polars(ctx, o, ORDERS).named("orders"),
            actors.join(ctx, o, kept, out, on="c"),
        ]

    got, keys, sent, _ = _run(build)
    assert_frame_equal(_sorted(got), _sorted(ORDERS.join(CUSTOMERS.filter(pl.col("seg") == "B"), on="c")))
    assert keys["orders"] == [] and sent["orders"] == ORDERS.height


def test_float_keys_give_no_filter() -> None:
    left = pl.DataFrame({"k": [0.0, -0.0, 1.5, float("nan"), 7.0], "v": [1, 2, 3, 4, 5]})
    right = pl.DataFrame({"k": [0.0, 1.5, float("nan"), 2.0], "w": ["a", "b", "c", "d"]})

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        a, b, kept = (ctx.create_channel() for _ in range(3))
        return [
            actors.from_polars(ctx, a, left).named("left"),
            actors.from_polars(ctx, b, right).named("right"),
            actors.filter(ctx, b, kept, pl.col("w") != "d"),
            actors.join(ctx, a, kept, out, on="k"),
        ]

    got, keys, sent, _ = _run(build)
    want = left.join(right.filter(pl.col("w") != "d"), on="k")
    assert_frame_equal(_sorted(got), _sorted(want))
    assert keys["left"] and sent["left"] == left.height  # offered, published as no filter (7.0)


@st.composite
def _table(draw: st.DrawFn, name: str, key_range: int) -> pl.DataFrame:
    n = draw(st.integers(0, 30))
    keys = st.one_of(st.none(), st.integers(0, key_range))
    return pl.DataFrame(
        {"k": draw(st.lists(keys, min_size=n, max_size=n)),
         name: draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))},
        schema={"k": pl.Int64, name: pl.Int64},
    )  # fmt: skip


HOWS = ["inner", "left", "right", "semi", "anti"]


@settings(max_examples=25, deadline=None)
@given(
    a=_table("a", 8),
    b=_table("b", 8),
    c=_table("c", 8),
    first=st.sampled_from(HOWS),
    second=st.sampled_from(HOWS),
    strategy=st.sampled_from(["auto", "shuffle"]),
    nranks=st.sampled_from([1, 2]),
)
def test_two_joins_after_filters_give_polars_answer_with_key_filters(
    a: pl.DataFrame, b: pl.DataFrame, c: pl.DataFrame, first: str, second: str, strategy: str,
    nranks: int,
) -> None:  # fmt: skip
    def share(ctx: Context, df: pl.DataFrame) -> pl.DataFrame:
        return df.filter(pl.int_range(pl.len()) % ctx.nranks == ctx.rank)

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        sa, sb, sc, fb, ab, fc = (ctx.create_channel() for _ in range(6))
        return [
            actors.from_polars(ctx, sa, share(ctx, a), chunk_rows=4),
            actors.from_polars(ctx, sb, share(ctx, b), chunk_rows=5),
            actors.filter(ctx, sb, fb, pl.col("b") > 0),
            actors.join(ctx, sa, fb, ab, on="k", how=first, strategy=strategy),  # type: ignore[arg-type]
            actors.from_polars(ctx, sc, share(ctx, c), chunk_rows=3),
            actors.filter(ctx, sc, fc, pl.col("c") != 0),
            actors.join(ctx, ab, fc, out, on="k", how=second, strategy=strategy),  # type: ignore[arg-type]
        ]

    joined = a.join(b.filter(pl.col("b") > 0), on="k", how=first)  # type: ignore[arg-type]
    want = joined.join(c.filter(pl.col("c") != 0), on="k", how=second)  # type: ignore[arg-type]
    for pushdown in (True, False):
        got, _, _, _ = _run(build, pushdown=pushdown, nranks=ranks.size(nranks))
        if got.width == 0:
            assert want.height == 0
        else:
            assert_frame_equal(_sorted(got), _sorted(want), check_dtypes=False)


@pytest.mark.parametrize("parquet", [True, False])
def test_a_parquet_scan_hashes_dense_keys_where_chunks_in_memory_look_them_up(
    tmp_path: Path, parquet: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polars' Parquet reader takes an ``is_in`` faster than the table lookup that serves
    chunks in memory (`key_filter`): a scan asks for its keys hashed, other sources not.
    The answer is Polars' either way."""
    from streamnet.plans import _predicates

    tables: list[int] = []
    real = _predicates._dense_table  # noqa: SLF001 - the maker this test counts

    def counted(values: pl.Series) -> tuple[int, pl.Series] | None:
        made = real(values)
        tables.append(made is not None)
        return made

    monkeypatch.setattr(_predicates, "_dense_table", counted)
    ORDERS.write_parquet(tmp_path / "o.parquet", row_group_size=8)

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        c, o = (ctx.create_channel() for _ in range(2))
        kept, co = (ctx.create_channel() for _ in range(2))
        orders = (
            actors.read_parquet(ctx, o, tmp_path / "o.parquet")
            if parquet
            else actors.from_polars(ctx, o, ORDERS, chunk_rows=8)
        )
        return [
            actors.from_polars(ctx, c, CUSTOMERS),
            actors.filter(ctx, c, kept, pl.col("seg") == "A"),
            orders.named("orders"),
            actors.join(ctx, kept, o, co, on="c"),
            actors.select(ctx, co, out, "o", "seg"),
        ]

    got, keys, sent, _ = _run(build)
    want = CUSTOMERS.filter(pl.col("seg") == "A").join(ORDERS, on="c").select("o", "seg")
    assert_frame_equal(_sorted(got), _sorted(want))
    assert keys["orders"] and sent["orders"] == want.height
    assert tables == ([] if parquet else [True])


def test_a_parquet_scan_skips_the_row_groups_outside_the_keys_range(tmp_path: Path) -> None:
    """Hashed keys do not prune by statistics in Polars; the scan tests their range
    apart, on row groups only: those of orders sorted by customer outside the kept
    customers' range are not read, and the answer is Polars'."""
    ORDERS.sort("c").write_parquet(tmp_path / "o.parquet", row_group_size=5)
    kept_customers = pl.col("c").is_between(2, 3)
    with Context() as ctx:
        c, kept, o, out = (ctx.create_channel() for _ in range(4))
        scan = actors.read_parquet(ctx, o, tmp_path / "o.parquet")
        sink = actors.collect(ctx, out, into="polars")
        Network(
            ctx,
            [
                actors.from_polars(ctx, c, CUSTOMERS),
                actors.filter(ctx, c, kept, kept_customers),
                scan,
                actors.join(ctx, kept, o, out, on="c"),
                sink,
            ],
        ).run(progress=False)
    want = CUSTOMERS.filter(kept_customers).join(ORDERS, on="c")
    assert_frame_equal(_sorted(sink.result().select(want.columns)), _sorted(want))
    report = scan.result()
    sorted_c = ORDERS.sort("c")["c"].to_list()
    groups = [sorted_c[i : i + 5] for i in range(0, len(sorted_c), 5)]
    overlapping = sum(1 for g in groups if min(g) <= 3 and max(g) >= 2)
    assert report.row_groups_total == len(groups)
    assert report.row_groups_read == overlapping < len(groups)


@pytest.mark.parametrize("heuristic", [True, False])
def test_a_scan_filtered_by_few_keys_reads_runs_of_row_groups_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, heuristic: bool
) -> None:
    """Two keys for 6,400 rows: few rows come through, so the scan's tasks join row groups
    from its first task (fewer, larger chunks) rather than learning it from the first
    row groups read one by one; the answer is Polars' either way."""
    if not heuristic:
        monkeypatch.setattr("actors._pushed.ROWS_PER_FEW_KEYS", 10**9)
    items = pl.DataFrame({"o": [i % 50 for i in range(6_400)], "q": range(6_400)})
    items.write_parquet(tmp_path / "items.parquet", row_group_size=100)
    kept = pl.col("o").is_in([3, 7])
    with Context() as ctx:
        o, cut, li, out = (ctx.create_channel() for _ in range(4))
        scan = actors.read_parquet(ctx, li, tmp_path / "items.parquet")
        sink = actors.collect(ctx, out, into="polars")
        network = Network(
            ctx,
            [
                actors.from_polars(ctx, o, ORDERS),
                actors.filter(ctx, o, cut, kept),
                scan,
                actors.join(ctx, cut, li, out, on="o"),
                sink,
            ],
        )
        assert "skips the rows that `join#0` drops" in network.explain()
        network.run(progress=False)
        chunks = network.statistics().actor(scan.name).messages_out
    want = ORDERS.filter(kept).join(items, on="o")
    assert_frame_equal(_sorted(sink.result().select(want.columns)), _sorted(want))
    threads = min(ctx.num_threads, os.cpu_count() or 1)
    if heuristic:
        assert chunks <= threads  # a run of row groups per core, from the start
    else:
        assert chunks > threads  # the first row groups one by one, then runs


def test_a_scan_given_few_keys_by_one_join_waits_for_no_other_joins_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan cut by two joins' keys reads once one has given few: the second join's
    other input here opens only once the scan has read (as TPC-H Q18's lineitem need not
    wait for the orders its subquery's keys cut). The answer is Polars'."""
    from streamnet.backends.cpu._plans import CpuPlans

    items = pl.DataFrame({"o": [i % 50 for i in range(6_400)], "q": range(6_400)})
    items.write_parquet(tmp_path / "items.parquet", row_group_size=100)
    wanted = pl.DataFrame({"q": range(0, 6_400, 3), "d": [i % 5 for i in range(0, 6_400, 3)]})
    read = CpuPlans.scan

    def scan_opens_the_gate(self: CpuPlans, *args: Any, **kwargs: Any) -> Any:
        loop.call_soon_threadsafe(opened.set)
        return read(self, *args, **kwargs)

    monkeypatch.setattr(CpuPlans, "scan", scan_opens_the_gate)

    @define_actor(rows=lambda **_: wanted.height)
    async def gated(ctx: Context, ch_out: Channel[TableChunk]) -> None:
        await opened.wait()
        await ch_out.send(ctx, Message(0, TableChunk.from_polars(wanted)))
        await ch_out.drain(ctx)

    async def main() -> tuple[pl.DataFrame, str]:
        with Context() as ctx:
            o, cut, li, ci, g, kept, out = (ctx.create_channel() for _ in range(7))
            sink = actors.collect(ctx, out, into="polars")
            network = Network(ctx, [
                actors.from_polars(ctx, o, ORDERS),
                actors.filter(ctx, o, cut, pl.col("o").is_in([3, 7])),
                actors.read_parquet(ctx, li, tmp_path / "items.parquet").named("items"),
                actors.join(ctx, cut, li, ci, on="o"),
                gated(ctx, g),
                actors.filter(ctx, g, kept, pl.col("d") < 4),
                actors.join(ctx, ci, kept, out, on="q", how="semi"),
                sink,
            ])  # fmt: skip
            await asyncio.wait_for(network.run_async(), timeout=60)
            return sink.result(), network.explain()

    loop = asyncio.new_event_loop()
    opened = asyncio.Event()
    try:
        got, explained = loop.run_until_complete(main())
    finally:
        loop.close()
    for join in ("join#0", "join#1"):  # the scan has both key filters...
        assert f"source `items` skips the rows that `{join}` drops" in explained
    kept = wanted.filter(pl.col("d") < 4)
    want = ORDERS.filter(pl.col("o").is_in([3, 7])).join(items, on="o").join(kept, on="q", how="semi")
    assert_frame_equal(_sorted(got.select(want.columns)), _sorted(want))


@pytest.mark.parametrize("heuristic", [True, False])
def test_a_scan_filtered_by_many_keys_reads_runs_of_row_groups_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, heuristic: bool
) -> None:
    """600 keys for row groups of 100 rows: each task would build their set again for
    few rows, so the scan's tasks join row groups from the first one, though most rows
    come through (else only once two tasks per core ran); the answer is Polars' either
    way."""
    if not heuristic:
        monkeypatch.setattr("actors._parquet.ROWS_PER_MANY_KEYS", 0)  # no key set is many
    items = pl.DataFrame({"o": [i % 1_000 for i in range(6_400)], "q": range(6_400)})
    items.write_parquet(tmp_path / "items.parquet", row_group_size=100)
    orders = pl.DataFrame({"o": range(1_000), "c": [i % 5 for i in range(1_000)]})
    kept = pl.col("c") < 3
    with Context() as ctx:
        o, cut, li, out = (ctx.create_channel() for _ in range(4))
        scan = actors.read_parquet(ctx, li, tmp_path / "items.parquet")
        sink = actors.collect(ctx, out, into="polars")
        network = Network(ctx, [
            actors.from_polars(ctx, o, orders),
            actors.filter(ctx, o, cut, kept),
            scan,
            actors.join(ctx, cut, li, out, on="o"),
            sink,
        ])  # fmt: skip
        assert "skips the rows that `join#0` drops" in network.explain()
        network.run(progress=False)
        chunks = network.statistics().actor(scan.name).messages_out
    want = orders.filter(kept).join(items, on="o")
    assert_frame_equal(_sorted(sink.result().select(want.columns)), _sorted(want))
    threads = min(ctx.num_threads, os.cpu_count() or 1)
    if heuristic:
        assert chunks <= threads  # a run of row groups per core, from the start
    else:  # a task per row group while the first tasks run (60% of the rows come through)
        assert 2 * threads < chunks < 64


def test_a_scan_tests_a_key_filters_range_on_statistics_not_its_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row groups' statistics are tested against a key filter's range only: its keys
    themselves prune nothing more there, and testing them costs milliseconds for the
    hundreds of thousands a join gives."""
    import actors._parquet as parquet_module
    from streamnet.io import plan_row_groups as plan

    tested: list[pl.Expr | None] = []

    def recorded(files: Any, predicate: pl.Expr | None, *args: Any, **kwargs: Any) -> Any:
        tested.append(predicate)
        return plan(files, predicate, *args, **kwargs)

    monkeypatch.setattr(parquet_module, "plan_row_groups", recorded)
    ORDERS.sort("c").write_parquet(tmp_path / "o.parquet", row_group_size=5)
    kept_customers = pl.col("c").is_between(2, 3)
    with Context() as ctx:
        c, kept, o, out = (ctx.create_channel() for _ in range(4))
        sink = actors.collect(ctx, out, into="polars")
        Network(ctx, [
            actors.from_polars(ctx, c, CUSTOMERS),
            actors.filter(ctx, c, kept, kept_customers),
            actors.read_parquet(ctx, o, tmp_path / "o.parquet", filters=pl.col("d") < 4),
            actors.join(ctx, kept, o, out, on="c"),
            sink,
        ]).run(progress=False)  # fmt: skip
    want = CUSTOMERS.filter(kept_customers).join(ORDERS.filter(pl.col("d") < 4), on="c")
    assert_frame_equal(_sorted(sink.result().select(want.columns)), _sorted(want))
    (predicate,) = tested
    assert predicate is not None
    words = str(predicate)
    assert "is_between" in words and '"d"' in words  # the keys' range, the scan's own filter
    assert "is_in" not in words


ACCOUNTS = pl.DataFrame({"c": [i % 7 for i in range(35)], "bal": range(35)})


def test_a_join_downstream_of_a_key_set_cuts_its_other_input_by_those_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every row joined with the customers of segment A has one of their keys, so the
    accounts joined with those rows further down are cut by the same keys (TPC-H Q9's
    partsupp, by the part keys), without that join reading anything whole: the accounts
    are too few for a key filter of its own."""
    monkeypatch.setattr("streamnet.network._predicates.KEY_FILTER_MIN_ROWS", ORDERS.height)

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        c, kept, o, co, a = (ctx.create_channel() for _ in range(5))
        return [
            actors.from_polars(ctx, c, CUSTOMERS).named("customers"),
            actors.filter(ctx, c, kept, pl.col("seg") == "A"),
            actors.from_polars(ctx, o, ORDERS, chunk_rows=8).named("orders"),
            actors.join(ctx, kept, o, co, on="c"),
            actors.from_polars(ctx, a, ACCOUNTS, chunk_rows=10).named("accounts"),
            actors.join(ctx, co, a, out, on="c"),
        ]

    got, keys, sent, explained = _run(build)
    kept = CUSTOMERS.filter(pl.col("seg") == "A")
    want = kept.join(ORDERS, on="c").join(ACCOUNTS, on="c")
    assert_frame_equal(_sorted(got.select(want.columns)), _sorted(want))
    by_customers = "`c` among the `c` keys `join#0` reads on its left_in input"
    assert keys == {"customers": [], "orders": [by_customers], "accounts": [by_customers]}
    assert sent["accounts"] == ACCOUNTS.join(kept, on="c", how="semi").height
    assert f"source `accounts` skips the rows that `join#1` drops: {by_customers}" in explained
    monkeypatch.setattr("streamnet.network._predicates.INHERITED_KEY_FILTER_MIN_ROWS", 36)
    got, keys, sent, _ = _run(build)  # more rows than the accounts give: no filter
    assert_frame_equal(_sorted(got.select(want.columns)), _sorted(want))
    assert keys["accounts"] == [] and sent["accounts"] == ACCOUNTS.height


def test_a_join_of_a_key_sets_rows_with_themselves_is_not_cut_by_it() -> None:
    """The rows joined with the customers of segment A, joined with themselves through a
    fan-out: each side holds those customers' keys, but cutting the other by them would
    make the customers wait for their own keys, and the network stall. Nothing more is
    cut; the answer is Polars'."""

    def build(ctx: Context, out: Any) -> list[ActorNode[Any]]:
        c, kept, o, co, first, second = (ctx.create_channel() for _ in range(6))
        return [
            actors.from_polars(ctx, c, CUSTOMERS).named("customers"),
            actors.filter(ctx, c, kept, pl.col("seg") == "A"),
            actors.from_polars(ctx, o, ORDERS, chunk_rows=8).named("orders"),
            actors.join(ctx, kept, o, co, on="c"),
            actors.fanout(ctx, co, [first, second]),
            actors.join(ctx, first, second, out, on="c"),
        ]

    got, keys, _, _ = _run(build)
    once = CUSTOMERS.filter(pl.col("seg") == "A").join(ORDERS, on="c")
    want = once.join(once, on="c")
    assert_frame_equal(_sorted(got.select(want.columns)), _sorted(want))
    assert keys == {
        "customers": [],
        "orders": ["`c` among the `c` keys `join#0` reads on its left_in input"],
    }
