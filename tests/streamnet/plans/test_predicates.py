"""Which parts of a filter may move, and which plan steps let them through, checked against
Polars: applying what passes a step before it, then the step, then the predicate, gives what
the step then the predicate give."""

from __future__ import annotations

import asyncio
import datetime as dt

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Cast, Filter, Predicate, Rename, Select, Step, WithColumns
from streamnet.plans._columns import step_outputs
from streamnet.plans._predicates import (
    MAX_BRANCHES,
    SCAN_HASHED_KEYS,
    KeySet,
    conjuncts,
    immovable,
    key_filter,
    step_passes,
)

MOVABLE = [
    pl.col("a") > 1,
    pl.col("c") == "x",
    pl.col("b").is_between(4.5, 6.0),
    pl.col("a").is_in([1, 3]),
    pl.col("c").str.contains("y|z"),
    pl.col("c").str.starts_with("x"),
    pl.col("d") < dt.date(2020, 1, 3),
    pl.col("d").dt.year() == 2020,
    pl.col("b").is_null() | (pl.col("a") * 2 > pl.col("e")),
    pl.when(pl.col("a") > 1).then(pl.col("b")).otherwise(0.0) > 4.5,
    pl.col("a").cast(pl.Float64, strict=False) > 1.5,
    ~pl.col("c").is_in(["z"]),
]

IMMOVABLE = {
    "a strict cast": pl.col("c").cast(pl.Int64) > 1,
    "a function argument from a column": pl.col("c").str.contains(pl.col("c")),
    "a column pattern": pl.all_horizontal(pl.col("^[ab]$") > 0),
    "all columns": pl.all_horizontal(pl.all().is_not_null()),
    "no column": pl.lit(True),
    "an aggregate": pl.col("a") > pl.col("a").mean(),
    "a running sum": pl.col("a").cum_sum() > 2,
    "a shift": pl.col("a").shift() > 1,
    "a rank": pl.col("a").rank() > 1,
    "a window": pl.col("a").max().over("c") > 1,
    "a parse that may fail": pl.col("c").str.to_integer() > 1,
    "a Python function": pl.col("a").map_batches(lambda s: s > 1, return_dtype=pl.Boolean),
}


def test_a_conjunction_splits_into_its_parts_and_others_stay_whole() -> None:
    parts = conjuncts(((pl.col("a") > 1) & (pl.col("b") < 2) & pl.col("c").is_null()).alias("p"))
    assert [Predicate(p) for p in parts] == [
        Predicate(pl.col("a") > 1), Predicate(pl.col("b") < 2), Predicate(pl.col("c").is_null())
    ]  # fmt: skip
    either = (pl.col("a") > 1) | (pl.col("b") < 2)
    assert [Predicate(p) for p in conjuncts(either)] == [Predicate(either)]


@pytest.mark.parametrize("expr", MOVABLE, ids=str)
def test_row_wise_predicates_over_named_columns_may_move(expr: pl.Expr) -> None:
    assert immovable(expr) is None


@pytest.mark.parametrize("why", IMMOVABLE)
def test_a_predicate_that_reads_other_rows_or_may_fail_stays(why: str) -> None:
    assert immovable(IMMOVABLE[why]) is not None
    assert Predicate.of(IMMOVABLE[why] & (pl.col("a") > 0)) == {Predicate(pl.col("a") > 0)}


def test_predicates_compare_by_structure_and_rename_their_columns() -> None:
    p = Predicate(pl.col("x") + pl.col("y") > 1, origin="filter#0")
    assert (
        p == Predicate(pl.col("x") + pl.col("y") > 1)
        and len({p, Predicate(pl.col("x") + pl.col("y") > 1)}) == 1
    )
    swapped = p.renamed({"x": "y", "y": "x"})
    assert swapped == Predicate(pl.col("y") + pl.col("x") > 1) and swapped.origin == "filter#0"
    assert p.renamed({"z": "w"}) is p


FRAME = pl.DataFrame({
    "a": [1, 2, 3, None, 5], "b": [4.0, 5.0, None, 6.0, 7.5], "c": ["x", "y", "z", None, "xy"],
    "d": [dt.date(2020, 1, i) for i in range(1, 6)], "e": [0, 9, 2, 3, 20],
})  # fmt: skip

STEPS: list[Step] = [
    Filter(pl.col("e") > 0),
    WithColumns((pl.col("a") + pl.col("e"), (pl.col("b") + 1).alias("f"))),
    WithColumns((pl.lit(1).alias("c"),)),
    Select(
        (
            pl.col("a"),
            pl.col("c").alias("cc"),
            (pl.col("b") * 2).alias("b"),
            pl.col("d"),
            pl.col("e"),
        )
    ),
    Select((pl.col("a").alias("c"), pl.col("c").alias("a"), pl.col("b"), pl.col("d"), pl.col("e"))),
    Rename({"a": "z", "c": "a"}),
    Rename({"b": "bb"}),
    Cast({"a": pl.Float64}),
    Cast({"e": pl.Int32}),
]


def _run(step: Step, frame: pl.DataFrame) -> pl.DataFrame:
    if isinstance(step, Filter):
        return frame.filter(step.predicate)
    if isinstance(step, Select):
        return frame.select(step.exprs)
    if isinstance(step, WithColumns):
        return frame.with_columns(step.exprs)
    if isinstance(step, Rename):
        return frame.rename(dict(step.mapping))
    assert isinstance(step, Cast)
    return frame.cast(dict(step.types))  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(step=st.sampled_from(STEPS), expr=st.sampled_from(MOVABLE))
def test_what_passes_a_step_gives_the_same_rows_before_it(step: Step, expr: pl.Expr) -> None:
    after = _run(step, FRAME)
    assert step_outputs(step, frozenset(FRAME.columns)) == frozenset(after.columns)
    predicate = Predicate(expr)
    passed = step_passes(step, frozenset({predicate}))
    if not predicate.columns <= set(after.columns):
        assert not passed  # a predicate over columns the step does not give never passes
        return
    try:
        want = after.filter(expr)
    except pl.exceptions.PolarsError:  # not a predicate over what the step gives (its types)
        assume(False)
    for moved in passed:
        assert_frame_equal(_run(step, FRAME.filter(moved.expr)).filter(expr), want)


def test_a_step_lets_through_what_it_does_not_redefine() -> None:
    over_a, over_c = Predicate(pl.col("a") > 1), Predicate(pl.col("c") == "x")
    both = frozenset({over_a, over_c})
    assert step_passes(WithColumns((pl.lit(1).alias("c"),)), both) == {over_a}
    assert step_passes(Cast({"a": pl.Float64}), both) == {over_c}
    renamed = step_passes(Rename({"a": "z", "c": "a"}), both)  # `a` was `c`; `c` is gone
    assert renamed == {Predicate(pl.col("c") > 1)}
    selected = step_passes(Select((pl.col("c").alias("a"), (pl.col("a") * 2).alias("b"))), both)
    assert selected == {Predicate(pl.col("c") > 1)}  # `a` came from `c`; `c` is not given
    own = step_passes(Filter((pl.col("b") > 0) & (pl.col("a").cum_sum() > 1), actor="f"), both)
    assert own == both | {Predicate(pl.col("b") > 0)}
    assert {p.origin for p in own if p.columns == {"b"}} == {"f"}


# ------------------------------------------------------------------ disjunctions
A, B, C = (Predicate(e) for e in (pl.col("x") > 1, pl.col("y") < 0, pl.col("x") == 0))


@given(
    st.lists(st.one_of(st.none(), st.integers(-2, 3)), max_size=20),
    st.lists(st.one_of(st.none(), st.integers(-2, 3)), max_size=20),
)
@settings(max_examples=40, deadline=None)
def test_a_disjunction_keeps_the_rows_that_pass_every_predicate_of_a_branch(
    xs: list[int | None], ys: list[int | None]
) -> None:
    n = min(len(xs), len(ys))
    df = pl.DataFrame({"x": xs[:n], "y": ys[:n]}, schema={"x": pl.Int64, "y": pl.Int64})
    either = Predicate.either([frozenset({A, B}), frozenset({C})])
    assert either is not None
    expr = asyncio.run(either.resolved())
    assert expr is not None
    want = df.filter(((pl.col("x") > 1) & (pl.col("y") < 0)) | (pl.col("x") == 0))
    assert_frame_equal(df.filter(expr), want)


def test_a_disjunction_flattens_absorbs_and_compares_by_its_branches() -> None:
    ab_c = Predicate.either([frozenset({A, B}), frozenset({C})])
    assert ab_c is not None and ab_c.columns == {"x", "y"}
    assert ab_c == Predicate.either([frozenset({C}), frozenset({B, A})])
    assert hash(ab_c) == hash(Predicate.either([frozenset({C}), frozenset({B, A})]))
    nested = Predicate.either([frozenset({ab_c}), frozenset({B})])  # (a and b) or c or b
    assert nested is not None and nested.branches == {frozenset({C}), frozenset({B})}
    assert Predicate.either([frozenset({A}), frozenset({A, B})]) == A  # a or (a and b): a
    assert Predicate.either([frozenset({A}), frozenset()]) is None  # every row passes one
    many = [frozenset({Predicate(pl.col("x") == i)}) for i in range(MAX_BRANCHES + 1)]
    assert Predicate.either(many) is None
    renamed = ab_c.renamed({"x": "z"})
    assert renamed.columns == {"z", "y"} and renamed != ab_c
    pair = " and ".join(sorted([A.describe(), B.describe()]))
    assert ab_c.describe().startswith("either ")
    assert set(ab_c.describe().removeprefix("either ").split(" or ")) == {f"({pair})", C.describe()}


def test_a_disjunction_of_key_filters_waits_for_every_key_set_and_is_none_if_one_is() -> None:
    async def main() -> None:
        left, right = KeySet("join#0", "right_in", "k"), KeySet("join#1", "right_in", "k")
        either = Predicate.either(
            [frozenset({Predicate(pl.col("k"), keys=left)}), frozenset({Predicate(pl.col("k"), keys=right)})]
        )
        assert either is not None and either.key_sets == {left, right}
        waiting = asyncio.ensure_future(either.resolved())
        left.publish(pl.Series([1, 2]))
        await asyncio.sleep(0)
        assert not waiting.done()  # the other key set is still to come
        right.publish(pl.Series([5]))
        expr = await asyncio.wait_for(waiting, 5)
        assert expr is not None
        df = pl.DataFrame({"k": [1, 3, 5, None]})
        assert df.filter(expr)["k"].to_list() == [1, 5]

        left, right = KeySet("join#0", "right_in", "k"), KeySet("join#1", "right_in", "k")
        either = Predicate.either(
            [frozenset({Predicate(pl.col("k"), keys=left)}), frozenset({Predicate(pl.col("k"), keys=right), C})]
        )
        assert either is not None
        left.publish(None)  # that join gives no keys: its branch keeps every row
        right.publish(pl.Series([5]))
        assert await asyncio.wait_for(either.resolved(), 5) is None

    asyncio.run(main())


INTEGER_TYPES = [pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64]


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    column_type=st.sampled_from(INTEGER_TYPES),
    keys_type=st.sampled_from([pl.Int32, pl.Int64, pl.UInt64]),
    sparse=st.booleans(),
    lookup=st.booleans(),
)
def test_a_key_filter_keeps_what_is_in_keeps(
    data: st.DataObject, column_type: pl.DataType, keys_type: pl.DataType, sparse: bool,
    lookup: bool,
) -> None:
    """Dense integer keys are looked up in a table (unless a scan asks for them hashed),
    sparse ones hashed: either way the rows kept are those whose key is among the keys,
    for any integer type on either side, nulls and values beyond the keys' range
    included, in both of Polars' engines."""
    low, high = (-(2**20), 2**20) if column_type.is_signed_integer() else (0, 2**21)
    if column_type in (pl.Int8, pl.UInt8):
        low, high = (-128, 127) if column_type == pl.Int8 else (0, 255)
    values = st.integers(low, high)
    rows = data.draw(st.lists(st.one_of(st.none(), values), max_size=200), "rows")
    key_low = 0 if keys_type.is_unsigned_integer() else low
    spread = 10**12 if sparse else 300
    keys = data.draw(
        st.lists(st.integers(max(key_low, low), max(key_low, low) + spread), min_size=1, max_size=50, unique=True),
        "keys",
    )
    frame = pl.DataFrame({"k": pl.Series(rows, dtype=pl.Int64)}).with_columns(
        pl.col("k").cast(column_type, strict=False)
    )
    key_series = pl.Series("keys", keys, dtype=keys_type, strict=False).drop_nulls()
    assume(key_series.len() > 0)
    got = frame.lazy().filter(key_filter(pl.col("k"), key_series, lookup=lookup))
    want = [v for v in frame["k"].to_list() if v is not None and v in set(key_series.to_list())]
    assert got.collect()["k"].to_list() == want
    assert got.collect(engine="streaming")["k"].to_list() == want


def test_a_key_filter_looks_dense_keys_up_and_hashes_sparse_or_other_ones() -> None:
    dense = key_filter(pl.col("k"), pl.Series(range(0, 3_000_000, 3)))
    assert "gather" in str(dense) and "is_in" not in str(dense)
    sparse = key_filter(pl.col("k"), pl.Series([1, 10**15]))
    assert "is_in" in str(sparse)
    strings = key_filter(pl.col("k"), pl.Series(["a", "b"]))
    assert "is_in" in str(strings)
    huge = key_filter(pl.col("k"), pl.Series([0, 2**63 - 1], dtype=pl.Int64))
    assert "is_in" in str(huge)
    hashed = key_filter(pl.col("k"), pl.Series(range(0, 300_000, 3)), lookup=False)
    assert "is_in" in str(hashed) and "gather" not in str(hashed)
    many = key_filter(pl.col("k"), pl.Series(range(SCAN_HASHED_KEYS + 1)), lookup=False)
    assert "gather" in str(many)  # too many to hash again for every task of a scan
    # the range test is a conjunct of its own: statistics prune row groups by it (a scan
    # that hashes its keys asks for it apart, to prune by)
    assert any("is_between" in str(part) for part in conjuncts(dense))
    assert len(conjuncts(hashed)) == 1

    async def ranges() -> list[str | None]:
        found = []
        for values in (pl.Series([7, 3, 5]), pl.Series(["a"]), None):
            keys = KeySet("join#0", "right_in", "k")
            keys.publish(values)
            got = await asyncio.wait_for(keys.range_of(pl.col("x")), 5)
            found.append(None if got is None else str(got))
        return found

    assert asyncio.run(ranges()) == [str(pl.col("x").is_between(3, 7)), None, None]


def test_a_table_lookup_is_row_wise_and_a_gather_of_a_column_is_not() -> None:
    from streamnet.plans._row_wise import not_row_wise

    table = pl.Series([0, 1, 1], dtype=pl.UInt8)
    assert not_row_wise(pl.lit(table).gather(pl.col("k")) == 1) is None
    assert not_row_wise(key_filter(pl.col("k"), pl.Series(range(100)))) is None
    assert not_row_wise(pl.col("x").gather(pl.col("k"))) is not None
    assert not_row_wise(pl.lit(table).gather(pl.col("k").sum())) is not None


def test_a_key_set_makes_its_lookup_table_once_for_every_source_it_reaches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streamnet.plans import _predicates

    made: list[pl.Series] = []
    real = _predicates._dense_table  # noqa: SLF001 - the maker this test counts

    def counted(values: pl.Series) -> tuple[int, pl.Series] | None:
        made.append(values)
        return real(values)

    monkeypatch.setattr(_predicates, "_dense_table", counted)

    async def main() -> None:
        keys = KeySet("join#0", "right_in", "k")
        keys.publish(pl.Series(range(0, 300_000, 3)))
        first = await asyncio.wait_for(Predicate(pl.col("a"), keys=keys).resolved(), 5)
        second = await asyncio.wait_for(Predicate(pl.col("b"), keys=keys).resolved(), 5)
        assert first is not None and second is not None
        df = pl.DataFrame({"a": [3, 4, None], "b": [6, 299_997, 7]})
        assert df.filter(first)["a"].to_list() == [3]
        assert df.filter(second)["b"].to_list() == [6, 299_997]

    asyncio.run(main())
    assert len(made) == 1
