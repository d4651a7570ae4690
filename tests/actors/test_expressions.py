"""Local actors evaluate expressions one chunk at a time: only row-wise ones are accepted.

A row-wise expression gives what Polars gives on the whole table however the
stream is chunked; any other one is refused with `ExpressionError` when the
node is made, before anything runs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import sys
import tomllib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import actors
from streamnet import (
    ActorNode,
    Channel,
    Context,
    ExpressionError,
    Message,
    Network,
    StreamnetError,
    TableChunk,
    define_actor,
)
from streamnet.plans._row_wise import not_row_wise

x, y, f, s, d, ls, sc = (pl.col(c) for c in ("x", "y", "f", "s", "d", "l", "st"))

with warnings.catch_warnings():  # Polars suggests a native expression for this lambda
    warnings.simplefilter("ignore", pl.exceptions.PolarsInefficientMapWarning)
    MAP_ELEMENTS = x.map_elements(lambda v: v * 2 + 1, return_dtype=pl.Int64)

# Row-wise expressions that evaluate without error on any frame of `frames()`.
ROW_WISE: dict[str, pl.Expr] = {
    "arithmetic": x * 2 - y,
    "floordiv_mod": (x // 3) + (x % 3),
    "true_div": f / 2,
    "comparison_and_or": ((x > 0) & (y < 0)) | ~(f > 1),
    "eq_missing": x.eq_missing(y),
    "is_null": x.is_null(),
    "is_nan": f.is_nan(),
    "fill_nan": f.fill_nan(0.0),
    "fill_null": x.fill_null(0),
    "fill_null_column": x.fill_null(y),
    "coalesce": pl.coalesce(x, y, 0),
    "when_then_otherwise": pl.when(x > y).then(x).when(x < 0).then(-x).otherwise(y),
    "is_in_list": x.is_in([1, 2, 3]),
    # a key filter's set: its serialized data is left out of the check (`LONG_SERIES`)
    "is_in_long_series": x.is_in(pl.Series(range(0, 200_000, 2)).implode()),
    "is_between": x.is_between(-5, 5),
    "cast_float": x.cast(pl.Float64),
    "cast_string": x.cast(pl.String),
    "abs_clip": x.abs().clip(0, 10),
    "round_floor": f.round(1) + f.floor(),
    "pow": x.pow(2),
    "sqrt": f.abs().sqrt(),
    "log1p": f.abs().log1p(),
    "sin": f.sin(),
    "hash": x.hash(7),
    "replace": x.replace({1: 100, 2: 200}),
    "replace_series": x.replace([1, 2], [100, 200]),  # Series literals of values, not rows
    "replace_strict": x.replace_strict({1: 100}, default=-1),
    "replace_strict_default_per_row": x.replace_strict({1: 100}, default=y),
    "contains_any": s.str.contains_any(["a", "Xy"]),
    "replace_many": s.str.replace_many(["a", ","], ["A", ";"]),
    "is_business_day": d.dt.date().dt.is_business_day(),
    "business_days": pl.business_day_count(
        d.dt.date(), d.dt.date(), holidays=[dt.date(2020, 1, 1)]
    ),
    "horizontal": pl.max_horizontal(x, y) + pl.sum_horizontal(x, y),
    "literal": pl.lit(1),
    "literal_string": pl.lit("k"),
    "typed_null": pl.lit(None, dtype=pl.Int64),
    "literal_list": pl.lit([1, 2]),
    "str_upper": s.str.to_uppercase(),
    "str_len": s.str.len_chars(),
    "str_contains": s.str.contains("a"),
    "str_slice": s.str.slice(0, 2),
    "str_replace": s.str.replace("a", "z"),
    "str_split": s.str.split(","),
    "str_strip": s.str.strip_chars(),
    "str_starts_with": s.str.starts_with("a"),
    "str_zfill": s.str.zfill(4),
    "str_to_date_with_format": s.str.to_date("%Y-%m-%d", strict=False),
    "concat_str": pl.concat_str([s, x.cast(pl.String)], separator="-"),
    "dt_year": d.dt.year(),
    "dt_truncate": d.dt.truncate("1d"),
    "dt_offset_by": d.dt.offset_by("1h"),
    "dt_strftime": d.dt.strftime("%Y-%m"),
    "dt_weekday": d.dt.weekday(),
    "dt_date": d.dt.date(),
    "datetime_difference": (d - d.dt.truncate("1mo")).dt.total_minutes(),
    "list_len": ls.list.len(),
    "list_sum": ls.list.sum(),
    "list_get": ls.list.get(0, null_on_oob=True),
    "list_contains": ls.list.contains(2),
    "list_sort": ls.list.sort(),
    "list_eval_rank": ls.list.eval(pl.element().rank()),
    "list_eval_times": ls.list.eval(pl.element() * 2),
    "struct_field": sc.struct.field("a"),
    "struct_with_fields": sc.struct.with_fields(c=pl.field("a") + 1),
    "as_struct": pl.struct(x, y),
    "concat_list": pl.concat_list(x, y),
    "map_elements": MAP_ELEMENTS,
    "map_batches_elementwise": x.map_batches(lambda c: c * 3, is_elementwise=True),
}

# Expressions that are not row-wise, and the part that the error must name.
NOT_ROW_WISE: list[tuple[pl.Expr, str]] = [
    (x > x.mean(), 'col("x").mean()'),
    (x - x.first(), 'col("x").first()'),
    (x.fill_null(x.mean()), 'col("x").mean()'),
    (x.sum(), 'col("x").sum()'),
    (x.cum_sum(), 'col("x").cum_sum()'),
    (x.shift(), 'col("x").shift('),
    (x.diff(), 'col("x").diff('),
    (x.rank(), 'col("x").rank()'),
    (x.sum().over("y"), ".over("),
    ((x + 1).over("y"), ".over("),
    (pl.len(), "len()"),
    (pl.int_range(pl.len()), "int_range("),
    (x.head(2), "slice("),
    (x.sort(), 'col("x").sort('),
    (x.sort_by(y), "sort_by("),
    (x.fill_null(strategy="forward"), "fill_null_with_strategy()"),
    (x.forward_fill(), "fill_null_with_strategy()"),
    (x.is_duplicated(), "is_duplicated()"),
    (x.is_first_distinct(), "is_first_distinct()"),
    (x.unique(), "unique()"),
    (x.rolling_mean(2), "rolling_mean("),
    (x.reverse(), "reverse()"),
    (x.gather([0]), "gather("),
    (x.filter(x > 1), "filter("),
    (x.rle_id(), "rle_id()"),
    (x.interpolate(), "interpolate()"),
    (x.is_in(y.implode()), 'col("y").implode()'),
    (x.is_in(y), "set of values from an expression"),  # all of `y`, so each chunk's
    (x.replace(y, 0), "set of values from an expression"),
    (x.replace_strict([1], y), "set of values from an expression"),
    (s.str.contains_any(pl.col("p")), "set of values from an expression"),
    (pl.business_day_count(d, d, holidays=pl.col("h")), "set of values"),
    (x + pl.lit(pl.Series([1, 2, 3])), "Series"),
    (x + pl.lit(pl.Series(range(100_000))), "Literal"),  # long: shown by its node's name
    (pl.lit(1).sum(), ".sum()"),
    (s.str.join(","), "concat_vertical"),
    (s.str.to_date(), "strptime("),
    (d.dt.replace_time_zone("UTC", ambiguous="infer"), "replace_time_zone("),  # type: ignore[arg-type]  # Polars takes it; its stubs omit it
    (sc.struct.with_fields(c=pl.field("a").sum()), 'pl.field(["a"]).sum()'),
    (x.cumulative_eval(pl.element().sum()), "umulative_eval("),
    (x.map_batches(lambda c: c - c.min()), "map_batches(...)"),
]


def _ids(cases: list[tuple[pl.Expr, str]]) -> list[str]:
    return [str(expr)[:40] for expr, _ in cases]


@pytest.mark.parametrize("expr", list(ROW_WISE.values()), ids=list(ROW_WISE))
def test_row_wise_expressions_are_accepted(expr: pl.Expr) -> None:
    assert not_row_wise(expr) is None
    ctx = Context()
    actors.with_columns(ctx, ctx.create_channel(), ctx.create_channel(), out=expr)
    actors.select(ctx, ctx.create_channel(), ctx.create_channel(), "x", out=expr)


@pytest.mark.parametrize(("expr", "part"), NOT_ROW_WISE, ids=_ids(NOT_ROW_WISE))
def test_expressions_that_are_not_row_wise_are_refused_when_the_node_is_made(
    expr: pl.Expr, part: str
) -> None:
    ctx = Context()
    with pytest.raises(ExpressionError) as info:
        actors.with_columns(ctx, ctx.create_channel(), ctx.create_channel(), out=expr)
    message = str(info.value)
    assert message.startswith("actor `with_columns#")
    assert part in message
    assert "is not row-wise" in message
    for advice in ("`groupby_agg`", "`join`", "collective", "`map_chunks`"):
        assert advice in message
    assert message.endswith(f"got `{expr.alias('out')}`")
    assert isinstance(info.value, StreamnetError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(("expr", "part"), NOT_ROW_WISE[:8], ids=_ids(NOT_ROW_WISE[:8]))
def test_filter_select_and_read_parquet_refuse_them_too(
    expr: pl.Expr, part: str, tmp_path: Path
) -> None:
    ctx = Context()
    path = tmp_path / "t.parquet"
    pl.DataFrame({"x": [1, 2], "y": [3, 4]}).write_parquet(path)
    makers: dict[str, Callable[[], ActorNode]] = {
        "filter": lambda: actors.filter(ctx, ctx.create_channel(), ctx.create_channel(), expr),
        "select": lambda: actors.select(ctx, ctx.create_channel(), ctx.create_channel(), expr),
        "read_parquet": lambda: actors.read_parquet(ctx, ctx.create_channel(), path, filters=expr),
    }
    for name, make in makers.items():
        with pytest.raises(ExpressionError, match=rf"^actor `{name}#\d+`") as info:
            make()
        assert part in str(info.value)


def test_the_error_comes_before_anything_runs() -> None:
    ran = []

    @define_actor
    async def source(ctx: Context, ch_out: Channel[TableChunk]) -> None:
        ran.append(True)
        await ch_out.drain(ctx)

    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    nodes = [source(ctx, a)]
    with pytest.raises(ExpressionError, match=r"actor `filter#\d+` predicate: "):
        nodes.append(actors.filter(ctx, a, b, x > x.mean()))
    assert ran == []


def test_every_problem_is_listed_at_once() -> None:
    ctx = Context()
    with pytest.raises(ExpressionError) as info:
        actors.select(ctx, ctx.create_channel(), ctx.create_channel(), "x", x.cum_sum(), r=x.rank())
    message = str(info.value)
    assert '\n  - `col("x").cum_sum()`' in message
    assert '\n  - `col("x").rank()` (in `col("x").rank().alias("r")`)' in message


def test_a_select_of_literals_only_is_refused_it_would_make_one_row_per_chunk() -> None:
    ctx = Context()
    with pytest.raises(ExpressionError, match="a select of literals only makes one row per chunk"):
        actors.select(ctx, ctx.create_channel(), ctx.create_channel(), k=pl.lit(1))
    actors.select(ctx, ctx.create_channel(), ctx.create_channel(), "x", k=pl.lit(1))
    actors.with_columns(ctx, ctx.create_channel(), ctx.create_channel(), k=pl.lit(1))


def test_an_expression_polars_cannot_serialize_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Polars serializes a Python function with cloudpickle (a dependency); an install
    # without it is one way to meet an expression Polars cannot serialize.
    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    ctx = Context()
    expr = x.map_batches(lambda c: c * 3, is_elementwise=True)
    with pytest.raises(ExpressionError, match=r"cannot be inspected \(Polars cannot serialize"):
        actors.with_columns(ctx, ctx.create_channel(), ctx.create_channel(), out=expr)


def test_an_expression_is_serialized_once_for_every_check_while_it_lives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An actor's expressions are checked when it is made and again when its plan is
    compiled: the second check reuses what the first learnt, and forgets it with the
    expression."""
    import gc

    from polars.expr.meta import ExprMetaNameSpace

    from streamnet.plans import _row_wise

    serialized = []
    serialize = ExprMetaNameSpace.serialize

    def counted(self: ExprMetaNameSpace, *args: Any, **kwargs: Any) -> Any:
        serialized.append(args)
        return serialize(self, *args, **kwargs)

    monkeypatch.setattr(ExprMetaNameSpace, "serialize", counted)
    expr = (x * 2).alias("y")
    refused = x.cum_sum()
    for _ in range(3):
        assert not_row_wise(expr) is None
        found = not_row_wise(refused)
        assert found is not None and "cum_sum" in found[0]
    assert len(serialized) == 2
    kept = _row_wise._inspections  # noqa: SLF001
    ids = [id(expr), id(refused)]
    assert all(i in kept for i in ids)
    del expr, refused
    gc.collect()
    assert not any(i in kept for i in ids)


def test_python_functions_in_expressions_need_no_optional_package() -> None:
    """`map_elements` is accepted on a base install: Polars serializes it with cloudpickle,
    so cloudpickle is a dependency, not an extra."""
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    names = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0] for r in project["project"]["dependencies"]}
    assert "cloudpickle" in names


def test_type_errors_still_come_first() -> None:
    ctx = Context()
    with pytest.raises(TypeError, match="`predicate` must be a Polars expression"):
        actors.filter(ctx, ctx.create_channel(), ctx.create_channel(), "x > 1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`filters` must be a Polars expression"):
        actors.read_parquet(ctx, ctx.create_channel(), "t.parquet", filters="x")  # type: ignore[arg-type]


@pytest.mark.skipif(
    not hasattr(pl.col("x").meta, "is_row_separable"), reason="Polars 2's meta verdicts"
)
def test_polars_does_not_contradict_what_is_accepted() -> None:
    """Where Polars 2 can tell without a schema, it agrees an accepted expression is row-wise."""
    contradicted = []
    for name, expr in ROW_WISE.items():
        meta: Any = expr.meta
        try:
            separable = meta.is_row_separable()
            preserving = meta.is_length_preserving() or meta.is_scalar()
        except pl.exceptions.PolarsError:  # needs the schema to tell
            continue
        if not (separable and preserving):
            contradicted.append(name)
    assert contradicted == []


# --- Row-wise expressions equal Polars on the whole table, however it is chunked ---


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(0, 30))

    def column(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))

    start = dt.datetime(2020, 1, 1)
    return pl.DataFrame(
        {
            "x": column(st.integers(-20, 20)),
            "y": column(st.integers(-20, 20)),
            "f": column(
                st.sampled_from([0.0, -0.0, 1.5, -2.25, 1e300, float("nan"), float("inf")])
            ),
            "s": column(st.sampled_from(["", "a", "ab,c", "Xyz", "2020-01-05", " q "])),
            "d": [m and start + dt.timedelta(minutes=m) for m in column(st.integers(1, 10**6))],
            "l": column(st.lists(st.integers(-3, 3), max_size=3)),
            "st": [{"a": a, "b": "z"} for a in column(st.integers(0, 5))],
        },
        schema={
            "x": pl.Int64,
            "y": pl.Int64,
            "f": pl.Float64,
            "s": pl.String,
            "d": pl.Datetime("us"),
            "l": pl.List(pl.Int64),
            "st": pl.Struct({"a": pl.Int64, "b": pl.String}),
        },
    )


@st.composite
def cuts(draw: st.DrawFn, n: int) -> list[int]:
    """Random chunk boundaries for ``n`` rows, empty chunks included."""
    inner = draw(st.lists(st.integers(0, n), max_size=6))
    return [0, *sorted(inner), n]


@define_actor
async def _chunks(
    ctx: Context, ch_out: Channel[TableChunk], df: pl.DataFrame, bounds: list[int]
) -> None:
    for seq, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        await ch_out.send(ctx, Message(seq, TableChunk.from_polars(df[lo:hi])))
    await ch_out.drain(ctx)


def _run(df: pl.DataFrame, bounds: list[int], make: Any) -> pl.DataFrame:
    with Context() as ctx:
        a, b = ctx.create_channel(), ctx.create_channel()
        sink = actors.collect(ctx, b, into="polars")
        Network(ctx, [_chunks(ctx, a, df, bounds), make(ctx, a, b), sink]).run()
        out = sink.result()
    assert isinstance(out, pl.DataFrame)
    return out


@pytest.mark.timeout(60)
@given(st.data())
def test_row_wise_with_columns_equals_polars_for_any_chunking(data: st.DataObject) -> None:
    df = data.draw(frames())
    bounds = data.draw(cuts(df.height))
    named = {f"out_{name}": expr for name, expr in ROW_WISE.items()}
    out = _run(df, bounds, lambda c, i, o: actors.with_columns(c, i, o, **named))
    assert_frame_equal(out, df.with_columns(**named))


PREDICATES = [
    (x > y) | x.is_null(),
    f.is_nan() | (f > 1),
    s.str.contains("a") & ~s.str.starts_with("X"),
    ls.list.len() > 1,
    d.dt.minute().is_between(10, 40),
    x.is_in([1, 2, 3, -4]),
    pl.lit(True),
]


@pytest.mark.timeout(60)
@given(st.data())
def test_row_wise_filter_and_select_equal_polars_for_any_chunking(data: st.DataObject) -> None:
    df = data.draw(frames())
    bounds = data.draw(cuts(df.height))
    predicate = data.draw(st.sampled_from(PREDICATES))
    out = _run(df, bounds, lambda c, i, o: actors.filter(c, i, o, predicate))
    assert_frame_equal(out, df.filter(predicate))
    exprs = {"k": pl.lit(7), "z": pl.coalesce(x, y) * 2, "u": s.str.to_uppercase()}
    out = _run(df, bounds, lambda c, i, o: actors.select(c, i, o, "d", **exprs))
    assert_frame_equal(out, df.select("d", **exprs))


@pytest.mark.timeout(60)
@given(st.data())
def test_row_wise_parquet_filters_equal_polars_for_any_row_groups(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    df = data.draw(frames())
    path = tmp_path_factory.mktemp("scan") / "t.parquet"
    df.write_parquet(path, row_group_size=data.draw(st.integers(1, 8)))
    predicate = data.draw(st.sampled_from(PREDICATES))
    with Context() as ctx:
        ch = ctx.create_channel()
        sink = actors.collect(ctx, ch, into="polars")
        Network(ctx, [actors.read_parquet(ctx, ch, path, filters=predicate), sink]).run()
        out = sink.result()
    assert_frame_equal(out, pl.read_parquet(path).filter(predicate))
