"""Joins: Polars' join of the two sides, partition-wise or one side built whole and the other probed chunk by chunk."""

from __future__ import annotations

import itertools
from typing import Literal, get_args

import duckdb
import polars as pl
import pytest
from backend_strategies import COLUMNS
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Backend, ColumnNotFoundError, JoinSpec, SchemaError

How = Literal["inner", "left", "right", "full", "semi", "anti"]
HOWS: tuple[How, ...] = get_args(How)
BROADCASTABLE: tuple[How, ...] = ("inner", "left", "semi", "anti")
PAYLOAD = ["i64", "f64", "s", "d", "dec"]  # sortable, so results compare in any order


@st.composite
def sides(draw: st.DrawFn, max_rows: int = 30) -> tuple[pl.DataFrame, pl.DataFrame, JoinSpec]:
    """Two frames keyed on few values (duplicates and nulls) and a spec joining them."""

    def frame(keys: list[str], rows: int) -> pl.DataFrame:
        payload = draw(st.lists(st.sampled_from(PAYLOAD), max_size=2, unique=True))
        values = {
            name: st.one_of(st.none(), st.integers(0, 4)) if name.endswith("1") else
            st.one_of(st.none(), st.sampled_from(["a", "b"]))
            for name in keys
        }  # fmt: skip
        values |= {name: st.one_of(st.none(), COLUMNS[name][1]) for name in payload}
        types = {name: pl.Int32 if name.endswith("1") else pl.String for name in keys}
        types |= {name: COLUMNS[name][0] for name in payload}
        data = {name: draw(st.lists(v, min_size=rows, max_size=rows)) for name, v in values.items()}
        return pl.DataFrame(data, schema=types)

    nkeys = draw(st.integers(1, 2))
    left_on = ["k1", "k2"][:nkeys]
    right_on = draw(st.sampled_from([left_on, ["r1", "r2"][:nkeys]]))
    left = frame(left_on, draw(st.integers(0, max_rows)))
    right = frame(right_on, draw(st.integers(0, max_rows)))
    how = draw(st.sampled_from(HOWS))
    suffix = draw(st.sampled_from(["_right", "_r"]))
    return left, right, JoinSpec(tuple(left_on), tuple(right_on), how, suffix)


def polars_join(left: pl.DataFrame, right: pl.DataFrame, spec: JoinSpec) -> pl.DataFrame:
    return left.join(
        right,
        left_on=list(spec.left_on),
        right_on=list(spec.right_on),
        how=spec.how,
        suffix=spec.suffix,
    )


def sort_all(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns, nulls_last=True) if df.width else df


def assert_same_rows(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.columns == want.columns
    assert_frame_equal(sort_all(got), sort_all(want))


@settings(max_examples=30)
@given(sides())
def test_join_equals_polars_and_its_schema_is_join_schema(
    backend: Backend, drawn: tuple[pl.DataFrame, pl.DataFrame, JoinSpec]
) -> None:
    left, right, spec = drawn
    lchunk, rchunk = backend.from_polars(left), backend.from_polars(right)
    got = backend.join(lchunk, rchunk, spec)
    assert_same_rows(backend.to_polars(got), polars_join(left, right, spec))
    assert got.schema == backend.join_schema(lchunk.schema, rchunk.schema, spec)


@settings(max_examples=25)
@given(sides(), st.integers(1, 4))
def test_joins_of_hash_partitions_together_are_the_join(
    backend: Backend, drawn: tuple[pl.DataFrame, pl.DataFrame, JoinSpec], partitions: int
) -> None:
    left, right, spec = drawn
    lchunk, rchunk = backend.from_polars(left), backend.from_polars(right)
    lparts = backend.hash_partition(lchunk, spec.left_on, partitions)
    rparts = backend.hash_partition(rchunk, spec.right_on, partitions)
    lempty, rempty = backend.empty(lchunk.schema), backend.empty(rchunk.schema)
    pieces = [
        backend.to_polars(backend.join(lparts.get(p, lempty), rparts.get(p, rempty), spec))
        for p in range(partitions)
    ]
    assert_same_rows(pl.concat(pieces), polars_join(left, right, spec))


@pytest.mark.parametrize("side", ["right", "left"])
@settings(max_examples=30)
@given(sides(), st.data())
def test_probing_a_build_over_any_chunking_of_the_other_side_gives_the_join(
    backend: Backend,
    side: Literal["left", "right"],
    drawn: tuple[pl.DataFrame, pl.DataFrame, JoinSpec],
    data: st.DataObject,
) -> None:
    """The right side built and the left one streamed (any broadcastable join), or, for
    an inner join, the left side built and the right one streamed."""
    left, right, spec = drawn
    hows = BROADCASTABLE if side == "right" else ("inner",)
    spec = JoinSpec(spec.left_on, spec.right_on, data.draw(st.sampled_from(hows)))
    built, streamed = (right, left) if side == "right" else (left, right)
    cuts = sorted(data.draw(st.lists(st.integers(0, streamed.height), max_size=5)))
    bounds = [0, *cuts, streamed.height]
    build = backend.join_build(backend.from_polars(built), spec, side=side)
    assert build.spec == spec and build.side == side and build.rows == built.height
    outs, held, pending = [], 0, 0
    for start, end in itertools.pairwise(bounds):
        out = backend.join_probe(build, backend.from_polars(streamed.slice(start, end - start)))
        held += end - start
        pending += 1
        # the batching rule: streamed rows are held back until twice the built side's rows
        assert (out is not None) == (held >= 2 * built.height)
        if out is not None:
            outs.append(backend.to_polars(out))
            held = pending = 0
    rest = backend.join_flush(build)
    assert (rest is None) == (pending == 0)  # a held chunk is joined even without rows
    if rest is not None:
        outs.append(backend.to_polars(rest))
    assert backend.join_flush(build) is None
    assert_same_rows(pl.concat(outs), polars_join(left, right, spec))


@settings(max_examples=20)
@given(sides())
def test_null_keys_never_match_as_duckdb_counts(
    backend: Backend, drawn: tuple[pl.DataFrame, pl.DataFrame, JoinSpec]
) -> None:
    """An independent engine: DuckDB's SQL join (where NULL = NULL is not true) gives as many rows."""
    left, right, spec = drawn
    on = " and ".join(f"l.{a} = r.{b}" for a, b in zip(spec.left_on, spec.right_on, strict=True))
    sql = {
        "inner": f"select count(*) from left_t l join right_t r on {on}",
        "left": f"select count(*) from left_t l left join right_t r on {on}",
        "right": f"select count(*) from left_t l right join right_t r on {on}",
        "full": f"select count(*) from left_t l full join right_t r on {on}",
        "semi": f"select count(*) from left_t l semi join right_t r on {on}",
        "anti": f"select count(*) from left_t l anti join right_t r on {on}",
    }[spec.how]
    con = duckdb.connect()
    con.register("left_t", left.to_arrow())
    con.register("right_t", right.to_arrow())
    row = con.execute(sql).fetchone()
    con.close()
    assert row is not None
    got = backend.join(backend.from_polars(left), backend.from_polars(right), spec)
    assert got.num_rows == row[0]


@settings(max_examples=30)
@given(sides())
def test_the_fanout_bounds_the_rows_one_left_row_matches_and_is_reached(
    backend: Backend, data: tuple[pl.DataFrame, pl.DataFrame, JoinSpec]
) -> None:
    _, right, spec = data
    fanout = backend.join_fanout(backend.from_polars(right), spec.right_on)
    # every right row as a left row: its matches are the rows sharing its key
    probe = right.rename(dict(zip(spec.right_on, spec.left_on, strict=True))).select(spec.left_on)
    counts = probe.with_row_index("__row").join(
        right, left_on=list(spec.left_on), right_on=list(spec.right_on), how="inner"
    )
    most = counts.group_by("__row").len()["len"].max() if counts.height else 0
    assert fanout == (most or 0)


def test_a_missing_key_names_the_side_and_the_column(backend: Backend) -> None:
    left = backend.from_polars(pl.DataFrame({"id": [1], "x": [1]}))
    right = backend.from_polars(pl.DataFrame({"key": [1]}))
    spec = JoinSpec.of(left_on="id", right_on="nope")
    with pytest.raises(ColumnNotFoundError, match=r"right key column `nope` not found.*\['key'\]"):
        backend.join(left, right, spec)
    with pytest.raises(ColumnNotFoundError, match="right key column `nope`"):
        backend.join_schema(left.schema, right.schema, spec)
    with pytest.raises(ColumnNotFoundError, match="right key column `nope`"):
        backend.join_build(right, spec)
    with pytest.raises(ColumnNotFoundError, match=r"key column `nope` not found.*\['key'\]"):
        backend.join_fanout(right, ["nope"])
    build = backend.join_build(right, JoinSpec.of(left_on="nope", right_on="key"))
    with pytest.raises(
        ColumnNotFoundError, match=r"left key column `nope` not found.*\['id', 'x'\]"
    ):
        backend.join_probe(build, left)


def test_keys_polars_cannot_join_raise_a_schema_error_naming_them(backend: Backend) -> None:
    left = backend.from_polars(pl.DataFrame({"id": [1]}))
    right = backend.from_polars(pl.DataFrame({"id": ["1"]}))
    with pytest.raises(SchemaError, match=r"`id` \(Int64\) with `id` \(String\)"):
        backend.join(left, right, JoinSpec.of("id"))


@pytest.mark.parametrize("how", ["right", "full"])
def test_a_build_refuses_joins_that_keep_unmatched_right_rows(backend: Backend, how: str) -> None:
    right = backend.from_polars(pl.DataFrame({"id": [1]}))
    with pytest.raises(ValueError, match=f"a {how} join keeps unmatched right rows"):
        backend.join_build(right, JoinSpec.of("id", how=how))  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["left", "right", "full", "semi", "anti"])
def test_only_an_inner_join_builds_its_left_side(backend: Backend, how: str) -> None:
    left = backend.from_polars(pl.DataFrame({"id": [1]}))
    with pytest.raises(ValueError, match=f"only an inner join .* got how={how!r}"):
        backend.join_build(left, JoinSpec.of("id", how=how), side="left")  # type: ignore[arg-type]


def test_a_build_names_the_side_whose_key_is_missing(backend: Backend) -> None:
    chunk = backend.from_polars(pl.DataFrame({"x": [1]}))
    spec = JoinSpec(("a",), ("b",), "inner")
    with pytest.raises(ColumnNotFoundError, match="left key column `a` not found"):
        backend.join_build(chunk, spec, side="left")
    build = backend.join_build(backend.from_polars(pl.DataFrame({"a": [1]})), spec, side="left")
    with pytest.raises(ColumnNotFoundError, match="right key column `b` not found"):
        backend.join_probe(build, chunk)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"left_on": (), "right_on": ()}, "`left_on` must be a tuple of one or more"),
        ({"left_on": ("a",), "right_on": ("a", "b")}, "differ in length"),
        ({"left_on": ("a",), "right_on": ("a",), "how": "cross"}, "`how` must be inner"),
        ({"left_on": ["a"], "right_on": ("a",)}, "`left_on` must be a tuple"),
    ],
)
def test_a_spec_that_joins_nothing_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JoinSpec(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        JoinSpec.of("a", left_on="a", right_on="a")


@settings(max_examples=30)
@given(sides())
def test_origins_name_the_join_s_columns_and_where_their_values_come_from(
    backend: Backend, drawn: tuple[pl.DataFrame, pl.DataFrame, JoinSpec]
) -> None:
    left, right, spec = drawn
    joined = polars_join(left, right, spec)
    origins = spec.origins(left.columns, right.columns)
    assert origins is not None and list(origins) == joined.columns
    inputs = {"left": left, "right": right}
    for column, origin in origins.items():
        if origin is None:  # the right key of a full join: either side's keys
            assert spec.how == "full"
            continue
        side, name = origin
        values = set(joined[column].drop_nulls().to_list())
        assert values <= set(inputs[side][name].drop_nulls().to_list()), (column, origin)


def _origins_by_polars(
    spec: JoinSpec, left: list[str], right: list[str]
) -> dict[str, tuple[str, str] | None] | None:
    """What Polars makes of the names: it joins one row per side, each column holding its
    own name, the keys a common value."""

    def row(names: list[str], keys: tuple[str, ...], side: str) -> pl.DataFrame:
        return pl.DataFrame({n: ["" if n in keys else f"{side}{n}"] for n in names})

    how = "semi" if spec.how == "anti" else spec.how  # the same columns, and a row
    try:
        joined = row(left, spec.left_on, "L").join(
            row(right, spec.right_on, "R"), left_on=list(spec.left_on),
            right_on=list(spec.right_on), how=how, suffix=spec.suffix,
        )  # fmt: skip
    except pl.exceptions.PolarsError:
        return None
    found: dict[str, tuple[str, str] | None] = {}
    for name, value in zip(joined.columns, joined.row(0), strict=True):
        if value == "" and spec.how == "full":  # the left key, then the right one (both sides')
            found[name] = ("left", name) if name in spec.left_on and not found.get(name) else None
        elif value == "":  # the key the join keeps, perhaps suffixed
            side, keys = ("right", spec.right_on) if spec.how == "right" else ("left", spec.left_on)
            base = name if name in keys else name.removesuffix(spec.suffix)
            found[name] = (side, base) if base in keys else None
        else:
            found[name] = ("left" if value[0] == "L" else "right", value[1:])
    return found


NAMES = ["k", "k2", "x", "y", "x_r", "k_r", "y_r"]


@settings(max_examples=300, deadline=None)
@given(
    left=st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True),
    right=st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True),
    how=st.sampled_from(HOWS),
    data=st.data(),
)
def test_origins_follow_polars_naming_whatever_the_names_clash(
    left: list[str], right: list[str], how: How, data: st.DataObject
) -> None:
    left_on = data.draw(st.sampled_from(left))
    right_on = data.draw(st.sampled_from(right))
    spec = JoinSpec((left_on,), (right_on,), how, "_r")
    assert spec.origins(left, right) == _origins_by_polars(spec, left, right)
