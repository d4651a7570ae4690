"""Plans: a chunk through a compiled plan equals Polars' own operations; errors name the step's actor."""

from __future__ import annotations

import datetime as dt
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import (
    Agg,
    Backend,
    Cast,
    ColumnNotFoundError,
    ExpressionError,
    FileReadError,
    Filter,
    ParquetScan,
    PartialAggregate,
    Plan,
    PlanParams,
    Rename,
    ScanTask,
    SchemaError,
    Select,
    Slices,
    Stamp,
    Step,
    WithColumns,
)

x, f, s = pl.col("x"), pl.col("f"), pl.col("s")
Operation = tuple[Step, Callable[[pl.DataFrame], pl.DataFrame]]

# (step, the same operation on a Polars frame): each reads only the columns of `frames()`
# or the column `y` that the first with_columns makes, which the pool always puts first.
STEPS: list[Operation] = [
    (Filter((x > 0) | f.is_null(), actor="filter#0"), lambda df: df.filter((x > 0) | f.is_null())),
    (
        WithColumns((x * 2 + 1, s.str.len_chars().alias("n")), actor="with_columns#1"),
        lambda df: df.with_columns(x * 2 + 1, s.str.len_chars().alias("n")),
    ),
    (Cast({"x": pl.Float64}, actor="cast#2"), lambda df: df.cast({"x": pl.Float64})),
    (Filter(s.str.contains("a"), actor="filter#3"), lambda df: df.filter(s.str.contains("a"))),
    (
        WithColumns((pl.when(f > 1).then(f).otherwise(-f).alias("f"),), actor="with_columns#4"),
        lambda df: df.with_columns(pl.when(f > 1).then(f).otherwise(-f).alias("f")),
    ),
]
FIRST: Operation = (
    WithColumns(((x + f).alias("y"),), actor="with_columns#9"),
    lambda df: df.with_columns((x + f).alias("y")),
)
LAST: list[Operation] = [  # steps that end a plan: they drop or rename columns the others read
    (Select((pl.col("y"), s, x.alias("z")), actor="select#5"), lambda df: df.select("y", "s", z=x)),
    (
        Rename({"y": "why", "s": "ess"}, actor="rename#6"),
        lambda df: df.rename({"y": "why", "s": "ess"}),
    ),
]


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    rows = draw(st.integers(0, 30))

    def column(values: st.SearchStrategy[object]) -> list[object]:
        return draw(st.lists(st.none() | values, min_size=rows, max_size=rows))

    return pl.DataFrame(
        {
            "x": column(st.integers(-100, 100)),
            "f": column(st.floats(-10, 10, allow_nan=False)),
            "s": column(st.sampled_from(["", "a", "ba", "xyz"])),
            "d": column(st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1))),
        },
        schema={"x": pl.Int64, "f": pl.Float64, "s": pl.String, "d": pl.Date},
    )


@settings(max_examples=40)
@given(
    df=frames(),
    middle=st.lists(st.sampled_from(range(len(STEPS))), max_size=4),
    last=st.sampled_from([None, 0, 1]),
    cut=st.integers(0, 30),
)
def test_a_plan_equals_the_same_polars_operations_on_every_chunking(
    backend: Backend, df: pl.DataFrame, middle: list[int], last: int | None, cut: int
) -> None:
    chosen = [FIRST, *(STEPS[i] for i in middle), *([LAST[last]] if last is not None else [])]
    plan = Plan(steps=tuple(step for step, _ in chosen))
    expected = df
    for _, operation in chosen:
        expected = operation(expected)
    chunks = [backend.from_polars(df[:cut]), backend.from_arrow(df[cut:].to_arrow())]
    compiled = backend.compile(plan, chunks[0].schema)
    assert compiled.certain
    outs = [backend.run(compiled, chunk) for chunk in chunks]
    for out in outs:  # the schema compiled is the chunks' own, one shared object
        assert out.schema is compiled.output_schema
        assert backend.to_arrow(out).schema.equals(out.schema)
    assert_frame_equal(pl.concat([backend.to_polars(out) for out in outs]), expected)


def test_equal_schemas_compile_to_one_shared_output_schema(backend: Backend) -> None:
    plan = Plan(steps=(WithColumns((x.cast(pl.Int32).alias("y"),), actor="with_columns#0"),))
    one = backend.compile(plan, backend.from_polars(pl.DataFrame({"x": [1]})).schema)
    two = backend.compile(plan, pa.schema([("x", pa.int64())]))
    shared = one.output_schema
    assert two.output_schema is shared
    assert shared is not None and shared.names == ["x", "y"]
    assert one.input_schema.equals(two.input_schema)


def test_a_python_function_without_a_known_type_makes_the_plan_uncertain(
    backend: Backend,
) -> None:
    with warnings.catch_warnings():  # Polars suggests a native expression for this lambda
        warnings.simplefilter("ignore", pl.exceptions.PolarsInefficientMapWarning)
        udf = x.map_elements(lambda v: str(v), return_dtype=pl.String).alias("t")
    plan = Plan(steps=(WithColumns((udf,), actor="with_columns#0"),))
    chunk = backend.from_polars(pl.DataFrame({"x": [1, 2]}))
    compiled = backend.compile(plan, chunk.schema)
    assert not compiled.certain and compiled.output_schema is None
    out = backend.to_polars(backend.run(compiled, chunk))
    assert_frame_equal(out, pl.DataFrame({"x": [1, 2], "t": ["1", "2"]}))
    null = Plan(steps=(WithColumns((pl.lit(None).alias("n"),), actor="with_columns#1"),))
    assert not backend.compile(null, chunk.schema).certain  # a Null column: typed by the data


def test_each_step_is_checked_against_what_its_predecessors_leave(backend: Backend) -> None:
    schema = pa.schema([("x", pa.int64()), ("s", pa.large_string())])
    made = WithColumns(((x + 1).alias("y"),), actor="with_columns#0")
    renamed = Rename({"y": "z"}, actor="rename#1")
    backend.compile(Plan(steps=(made, renamed, Filter(pl.col("z") > 0, actor="filter#2"))), schema)
    with pytest.raises(ColumnNotFoundError) as info:
        backend.compile(
            Plan(steps=(made, renamed, Filter(pl.col("y") > 0, actor="filter#2"))), schema
        )
    assert str(info.value).startswith(
        "actor `filter#2`: column `y` not found (filter predicate); columns are ['x', 's', 'z']"
    )
    with pytest.raises(ColumnNotFoundError, match=r"^actor `cast#1`: columns `a`, `b` not found"):
        backend.compile(
            Plan(steps=(made, Cast({"b": pl.Int8, "a": pl.Int8}, actor="cast#1"))), schema
        )


def test_an_expression_that_is_not_row_wise_is_refused_naming_its_actor(backend: Backend) -> None:
    plan = Plan(
        steps=(Filter(x > 0, actor="filter#0"), WithColumns((x.cum_sum(),), actor="with_columns#1"))
    )
    with pytest.raises(ExpressionError, match=r"^actor `with_columns#1` expressions: .*cum_sum"):
        backend.compile(plan, pa.schema([("x", pa.int64())]))


def test_types_that_do_not_apply_raise_polars_error_naming_the_actor(backend: Backend) -> None:
    schema = pa.schema([("x", pa.int64()), ("s", pa.large_string())])
    with pytest.raises(
        pl.exceptions.InvalidOperationError, match=r"^actor `with_columns#1`: arithmetic"
    ):
        backend.compile(
            Plan(
                steps=(
                    Filter(x > 0, actor="filter#0"),
                    WithColumns((s + x,), actor="with_columns#1"),
                )
            ),
            schema,
        )
    with pytest.raises(pl.exceptions.InvalidOperationError, match=r"^actor `filter#0`: .*Boolean"):
        backend.compile(Plan(steps=(Filter(x, actor="filter#0"),)), schema)


def test_an_error_while_running_names_the_step_that_fails(backend: Backend) -> None:
    plan = Plan(steps=(
        Filter(pl.col("s") != "", actor="filter#0"),
        Cast({"s": pl.Int64}, actor="cast#1"),
        WithColumns(((pl.col("s") * 2).alias("t"),), actor="with_columns#2"),
    ))  # fmt: skip
    chunk = backend.from_polars(pl.DataFrame({"s": ["1", "", "a"]}))
    compiled = backend.compile(plan, chunk.schema)
    with pytest.raises(pl.exceptions.InvalidOperationError) as info:
        backend.run(compiled, chunk)
    assert info.value.__notes__ == ["in the Cast step of actor `cast#1`"]
    fine = backend.run(compiled, backend.from_polars(pl.DataFrame({"s": ["1", "", "3"]})))
    assert backend.to_polars(fine)["t"].to_list() == [2, 6]


def test_a_leading_cast_converts_a_type_polars_does_not_hold_exactly(backend: Backend) -> None:
    day = dt.datetime(2024, 5, 6)
    chunk = backend.from_arrow(pa.table({"d": pa.array([day], pa.date64()), "x": [1]}))
    cast = Plan(steps=(Cast({"d": pl.Date}, actor="cast#0"), Filter(x > 0, actor="filter#1")))
    out = backend.to_polars(backend.run(backend.compile(cast, chunk.schema), chunk))
    assert out["d"].to_list() == [day.date()]
    with pytest.raises(SchemaError, match=r"column `d` has type date64"):
        backend.compile(Plan(steps=(Filter(x > 0, actor="filter#0"),)), chunk.schema)


def test_a_stamp_step_adds_the_rank_and_the_sequence_number(backend: Backend) -> None:
    chunk = backend.from_polars(pl.DataFrame({"x": [1, 2]}))
    compiled = backend.compile(Plan(steps=(Stamp(actor="groupby_agg#0"),)), chunk.schema)
    out = backend.to_polars(backend.run(compiled, chunk, params=PlanParams(rank=3, sequence=7)))
    expected = pl.DataFrame({"x": [1, 2], "__rank": [3, 3], "__seq": [7, 7]})
    assert_frame_equal(out, expected)
    assert compiled.output_schema is not None and compiled.output_schema.names == expected.columns


def test_a_plan_of_no_steps_passes_chunks_through(backend: Backend) -> None:
    chunk = backend.from_polars(pl.DataFrame({"x": [1, 2]}))
    compiled = backend.compile(Plan(), chunk.schema)
    assert compiled.output_schema is chunk.schema
    assert_frame_equal(backend.to_polars(backend.run(compiled, chunk)), pl.DataFrame({"x": [1, 2]}))


def test_bad_arguments_are_refused_clearly(backend: Backend) -> None:
    chunk = backend.from_polars(pl.DataFrame({"x": [1]}))
    plan = Plan(steps=(Filter(x > 0, actor="filter#0"),))
    with pytest.raises(TypeError, match="compile: expected a Plan, got list"):
        backend.compile([], chunk.schema)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`input_schema` must be a pyarrow.Schema, got dict"):
        backend.compile(plan, {"x": pl.Int64})
    slices = Plan(Slices(chunk, actor="from_polars#0"))
    with pytest.raises(ValueError, match=r"a Slices source \(of actor `from_polars#0`\)"):
        backend.compile(slices, chunk.schema)
    with pytest.raises(FileReadError, match="cannot read `missing.parquet`"):
        backend.compile(Plan(ParquetScan((Path("missing.parquet"),))), chunk.schema)
    compiled = backend.compile(plan, chunk.schema)
    other = backend.from_polars(pl.DataFrame({"x": [1.5]}))
    with pytest.raises(SchemaError, match=r"not have the schema the plan was compiled for.*got"):
        backend.run(compiled, other)


def _tasks(path: Path) -> list[ScanTask]:
    """One task per row group of ``path``, as `streamnet.io` plans them."""
    metadata = pq.read_metadata(path)
    tasks, offset = [], 0
    for group in range(metadata.num_row_groups):
        rows = metadata.row_group(group).num_rows
        tasks.append(ScanTask(path, (group,), offset, rows))
        offset += rows
    return tasks


@settings(max_examples=20, deadline=None)
@given(
    df=frames(),
    middle=st.lists(st.sampled_from(range(len(STEPS))), max_size=3),
    last=st.sampled_from([None, 0, 1]),
    group_rows=st.integers(1, 12),
    pushed=st.booleans(),
)
def test_a_scan_plan_equals_polars_reading_each_row_group_then_the_steps(
    backend: Backend, df: pl.DataFrame, middle: list[int], last: int | None, group_rows: int,
    pushed: bool,
) -> None:  # fmt: skip
    chosen = [FIRST, *(STEPS[i] for i in middle), *([LAST[last]] if last is not None else [])]
    predicate = (x.is_null() | (x > -50)) if pushed else None
    columns = ("x", "f", "s") if pushed else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        df.write_parquet(path, row_group_size=group_rows)
        source = ParquetScan((path,), columns, predicate, actor="read_parquet#0")
        plan = Plan(source, tuple(step for step, _ in chosen))
        compiled = backend.compile(plan, pq.read_schema(path))
        assert compiled.certain
        whole = pl.read_parquet(path)
        for task in [*_tasks(path), ScanTask(path, (), 0, 0)]:
            piece = whole.slice(task.offset, task.rows)
            if predicate is not None:
                piece = piece.filter(predicate).select(columns)
            for _, operation in chosen:
                piece = operation(piece)
            out = backend.scan(compiled, task)
            assert out.schema is compiled.output_schema
            assert_frame_equal(backend.to_polars(out), piece)


def test_a_scan_that_fails_names_the_file_or_the_step(backend: Backend) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        pl.DataFrame({"s": ["1", "x"]}).write_parquet(path)
        task = _tasks(path)[0]
        steps = (Cast({"s": pl.Int64}, actor="cast#3"),)
        compiled = backend.compile(Plan(ParquetScan((path,)), steps), pq.read_schema(path))
        with pytest.raises(pl.exceptions.InvalidOperationError) as info:
            backend.scan(compiled, task)
        assert "in the Cast step of actor `cast#3`" in "".join(info.value.__notes__)
        plain = backend.compile(Plan(ParquetScan((path,))), pq.read_schema(path))
        path.write_bytes(b"not parquet")
        with pytest.raises(FileReadError, match="cannot read `.*t.parquet`"):
            backend.scan(plain, task)
        with pytest.raises(FileReadError, match="cannot read `.*t.parquet`"):
            backend.scan(compiled, task)
        with pytest.raises(TypeError, match="run it with `scan`"):
            backend.run(compiled, backend.from_polars(pl.DataFrame({"s": ["1"]})))


def test_the_tasks_of_a_scan_read_a_file_s_footer_once_until_it_is_written_again(
    backend: Backend,
) -> None:
    """Every task of every compiled plan that reads a file slices one Polars scan of it
    (which keeps the footer it read); a file written again meanwhile is read anew (the
    CPU backend's choice: another backend may read its files as it likes)."""
    if backend.name != "cpu":
        pytest.skip("how a task reads its file is the backend's choice; this is the CPU's")
    from streamnet.backends.cpu._plans import polars_scan

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        pl.DataFrame({"x": range(30)}).write_parquet(path, row_group_size=10)
        compiled = backend.compile(Plan(ParquetScan((path,))), pq.read_schema(path))
        got = [backend.to_polars(backend.scan(compiled, task))["x"].to_list() for task in _tasks(path)]
        assert got == [list(range(0, 10)), list(range(10, 20)), list(range(20, 30))]
        first = polars_scan(str(path))
        backend.compile(Plan(ParquetScan((path,))), pq.read_schema(path))
        assert polars_scan(str(path)) is first  # another plan of the same file: the same scan
        pl.DataFrame({"x": range(100, 150)}).write_parquet(path, row_group_size=25)
        again = [backend.to_polars(backend.scan(compiled, task))["x"].to_list() for task in _tasks(path)]
        assert again == [list(range(100, 125)), list(range(125, 150))]
        assert polars_scan(str(path)) is not first


def test_a_scan_into_partials_stops_grouping_keys_that_do_not_repeat(backend: Backend) -> None:
    """Grouping a task whose keys barely repeat gives about as many partials as rows: the
    tasks after it give their rows as partials, for the merge to group once (the CPU
    kernel's choice: another backend may group at any cardinality)."""
    if backend.name != "cpu":
        pytest.skip("how partials are made is the backend's choice; this is the CPU's")
    rows = 20_000
    df = pl.DataFrame({"k": [i * 4 // 5 for i in range(3 * rows)], "x": range(3 * rows)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.parquet"
        df.write_parquet(path, row_group_size=rows)
        step = PartialAggregate(("k",), (Agg("x", "sum"),), actor="groupby_agg#0")
        source = ParquetScan((path,), None, None, actor="read_parquet#0")
        compiled = backend.compile(Plan(source, (step,)), pq.read_schema(path))
        first, *rest = _tasks(path)
        grouped = backend.to_polars(backend.scan(compiled, first))
        assert grouped.height == rows * 4 // 5  # grouped: five rows to four keys
        for task in rest:
            out = backend.scan(compiled, task)
            assert out.schema is compiled.output_schema
            assert out.num_rows == task.rows  # the rows as partials
        partials = pl.concat(
            [grouped, *(backend.to_polars(backend.scan(compiled, task)) for task in rest)]
        )
        merged = partials.group_by("k").agg(pl.col(partials.columns[1]).sum().alias("x"))
        want = df.group_by("k").agg(pl.col("x").sum())
        assert_frame_equal(merged.sort("k"), want.sort("k"), check_dtypes=False)
