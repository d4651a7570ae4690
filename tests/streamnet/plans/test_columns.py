"""What each plan step needs of its input to give the columns wanted of it, checked against
Polars: running the step on the needed columns only gives the wanted columns unchanged."""

from __future__ import annotations

import polars as pl
import polars.selectors as cs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Agg, Cast, Filter, PartialAggregate, Rename, Select, Stamp, Step, WithColumns
from streamnet.plans._columns import expression_columns, step_needs

FRAME = pl.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0], "c": ["x", "y", "z"], "d": [7, 8, 9]})

STEPS: list[Step] = [
    Filter(pl.col("a") > 1),
    Filter((pl.col("b") < 6) | pl.col("c").is_null()),
    Select((pl.col("a"), (pl.col("b") * 2).alias("e"), pl.col("c").str.to_uppercase())),
    WithColumns((pl.col("a") + pl.col("d"), (pl.col("b") + 1).alias("e"))),
    WithColumns((pl.lit(1).alias("one"),)),
    Rename({"a": "z", "c": "a"}),
    Rename({"b": "bb"}),
    Cast({"a": pl.Float64}),
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


@settings(max_examples=60, deadline=None)
@given(step=st.sampled_from(STEPS), data=st.data())
def test_running_a_step_on_what_it_needs_gives_the_wanted_columns_unchanged(
    step: Step, data: st.DataObject
) -> None:
    whole = _run(step, FRAME)
    wanted = frozenset(data.draw(st.lists(st.sampled_from(whole.columns), unique=True)))
    needs = step_needs(step, wanted)
    assert needs is not None and needs <= set(FRAME.columns) | {"one"}
    # a source keeps one column when none is needed, so that rows still count (read_parquet)
    kept = [c for c in FRAME.columns if c in needs] or FRAME.columns[:1]
    pruned = _run(step, FRAME.select(kept))
    order = [c for c in whole.columns if c in wanted]
    assert_frame_equal(pruned.select(order), whole.select(order))


def test_every_column_wanted_needs_every_column_but_a_select_s_own() -> None:
    for step in STEPS:
        expected = None if not isinstance(step, Select) else frozenset({"a", "b", "c"})
        assert step_needs(step, None) == expected


def test_wildcards_and_selectors_need_every_column() -> None:
    assert expression_columns([pl.all()]) is None
    assert expression_columns([cs.numeric() * 2]) is None
    assert expression_columns([pl.col("^a.*$")]) is None
    assert expression_columns([pl.col("a").sum().over("k"), pl.len()]) == frozenset({"a", "k"})
    assert step_needs(Select((pl.all(),)), frozenset({"a"})) is None
    assert step_needs(WithColumns((cs.numeric() + 1,)), frozenset({"a"})) is None


def test_a_partial_aggregate_needs_its_keys_and_aggregated_columns_only() -> None:
    step = PartialAggregate(("k",), (Agg("v", "sum"), Agg(None, "len")))
    assert step_needs(step, None) == frozenset({"k", "v"})
    assert step_needs(Stamp(), frozenset({"a", "__rank"})) == frozenset({"a"})


@pytest.mark.parametrize("wanted", [frozenset(), frozenset({"missing"})])
def test_wanting_nothing_known_needs_only_what_a_step_reads(wanted: frozenset[str]) -> None:
    assert step_needs(Filter(pl.col("a") > 1), wanted) == wanted | {"a"}
