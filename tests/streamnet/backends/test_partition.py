"""Hash partitioning: no row lost, equal keys together whatever their width, on every rank."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest
from backend_strategies import frames
from hypothesis import assume, given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from streamnet import Backend, ColumnNotFoundError, SchemaError, backend_for


@given(df=frames(), partitions=st.integers(1, 7), data=st.data())
def test_every_row_lands_in_one_partition_with_its_equal_keys(
    backend: Backend, df: pl.DataFrame, partitions: int, data: st.DataObject
) -> None:
    keys = data.draw(st.lists(st.sampled_from(df.columns), min_size=1, unique=True))
    numbered = df.with_row_index("__row")
    chunk = backend.from_polars(numbered)
    pieces = backend.hash_partition(chunk, keys, partitions)
    assert all(0 <= p < partitions and piece.num_rows > 0 for p, piece in pieces.items())
    assert all(piece.schema.equals(chunk.schema) for piece in pieces.values())
    parts = [backend.to_polars(piece) for piece in pieces.values()]
    if not parts:
        assert df.height == 0
        return
    assert_frame_equal(pl.concat(parts).sort("__row"), numbered)  # nothing lost or added
    owned = pl.concat([part.select(keys).unique() for part in parts])
    assert owned.height == owned.unique().height  # a key (nulls too) in one partition only
    for part in parts:  # each piece keeps the chunk's order of its rows
        assert part["__row"].is_sorted()


@given(df=frames(), n=st.integers(1, 5), m=st.integers(2, 4), data=st.data())
def test_a_finer_modulus_splits_a_partition_into_its_own_classes(
    backend: Backend, df: pl.DataFrame, n: int, m: int, data: st.DataObject
) -> None:
    keys = data.draw(st.lists(st.sampled_from(df.columns), min_size=1, unique=True))
    chunk = backend.from_polars(df)
    for p, piece in backend.hash_partition(chunk, keys, n).items():
        finer = backend.hash_partition(piece, keys, n * m)
        assert all(q % n == p for q in finer), (p, sorted(finer))
        assert sum(part.num_rows for part in finer.values()) == piece.num_rows


@given(values=st.lists(st.none() | st.integers(-1000, 1000), min_size=1, max_size=50))
def test_integer_keys_hash_alike_whatever_their_width(
    backend: Backend, values: list[int | None]
) -> None:
    def placement(dtype: pa.DataType) -> dict[int | None, int]:
        chunk = backend.from_arrow(pa.table({"k": pa.array(values, dtype)}))
        pieces = backend.hash_partition(chunk, ["k"], 5)
        return {
            v: p for p, piece in pieces.items() for v in backend.to_arrow(piece)["k"].to_pylist()
        }

    wide = placement(pa.int64())
    assert placement(pa.int16()) == wide
    assert placement(pa.int32()) == wide


def test_ranks_of_one_fingerprint_partition_alike(backend: Backend) -> None:
    other = backend_for(backend.name)  # another rank's backend, in the same versions
    assert other.fingerprint() == backend.fingerprint()
    df = pl.DataFrame({"k": [1, 2, None, 4, 5, 6, 7, 8], "s": list("abcdefgh")})
    mine = backend.hash_partition(backend.from_polars(df), ["k", "s"], 3)
    theirs = other.hash_partition(other.from_arrow(df.to_arrow()), ["k", "s"], 3)
    assert mine.keys() == theirs.keys()
    for p in mine:
        assert backend.to_arrow(mine[p]).equals(other.to_arrow(theirs[p]))


def test_another_seed_splits_one_partition_again_keeping_equal_keys_together(
    backend: Backend,
) -> None:
    df = pl.DataFrame({"k": [i % 500 for i in range(2000)], "v": range(2000)})
    first = backend.hash_partition(backend.from_polars(df), ["k"], 4)
    assert backend.hash_partition(backend.from_polars(df), ["k"], 4, seed=0).keys() == first.keys()
    for piece in first.values():
        again = backend.hash_partition(piece, ["k"], 4, seed=1)
        assert len(again) == 4  # the rows of one partition spread over all of them
        assert sum(p.num_rows for p in again.values()) == piece.num_rows
        keys = [set(backend.to_arrow(p)["k"].to_pylist()) for p in again.values()]
        assert sum(len(k) for k in keys) == len(set().union(*keys))  # a key in one place


def test_one_partition_or_no_rows_cuts_nothing(backend: Backend) -> None:
    chunk = backend.from_polars(pl.DataFrame({"k": [1, 2]}))
    assert backend.hash_partition(chunk, ["k"], 1) == {0: chunk}
    assert backend.hash_partition(backend.slice(chunk, 0, 0), ["k"], 4) == {}


def test_bad_keys_or_counts_are_named(backend: Backend) -> None:
    chunk = backend.from_polars(pl.DataFrame({"k": [1], "v": [2]}))
    with pytest.raises(
        ColumnNotFoundError, match=r"key column `z` not found; columns are \['k', 'v'\]"
    ):
        backend.hash_partition(chunk, ["z"], 2)
    with pytest.raises(ValueError, match="`keys` must name at least one column"):
        backend.hash_partition(chunk, [], 2)
    with pytest.raises(ValueError, match="`partitions` must be an int >= 1, got 0"):
        backend.hash_partition(chunk, ["k"], 0)
    with pytest.raises(ValueError, match=r"`seed` must be an int in \[0, 2\*\*32\), got -1"):
        backend.hash_partition(chunk, ["k"], 2, seed=-1)


def test_partition_and_pack_packs_the_pieces_of_other_ranks(backend: Backend) -> None:
    df = pl.DataFrame({"k": list(range(100)), "v": [float(i) for i in range(100)]})
    chunk = backend.from_polars(df)
    pieces = backend.hash_partition(chunk, ["k"], 4)
    kept, packed = backend.partition_and_pack(chunk, ["k"], 4, local={0, 2})
    assert set(kept) | set(packed) == set(pieces)
    assert set(kept) <= {0, 2} and not set(packed) & {0, 2}
    for p, piece in kept.items():
        assert_frame_equal(backend.to_polars(piece), backend.to_polars(pieces[p]))
    for p, wire in packed.items():
        assert_frame_equal(backend.to_polars(backend.unpack(wire)), backend.to_polars(pieces[p]))


@given(df=frames(), data=st.data())
def test_split_by_values_gives_polars_partitions_in_order_without_their_columns(
    backend: Backend, df: pl.DataFrame, data: st.DataObject
) -> None:
    simple = [name for name, dtype in df.schema.items() if not dtype.is_nested()]
    assume(simple)
    keys = data.draw(st.lists(st.sampled_from(simple), min_size=1, unique=True))
    numbered = df.with_row_index("__row")
    pieces = backend.split_by_values(backend.from_polars(numbered), keys)
    expected = numbered.partition_by(keys, maintain_order=True, include_key=False, as_dict=True)
    assert [values for values, _ in pieces] == list(expected)
    for (_, piece), rows in zip(pieces, expected.values(), strict=True):
        assert_frame_equal(backend.to_polars(piece), rows)


def test_split_by_values_refuses_what_would_leave_nothing(backend: Backend) -> None:
    with pytest.raises(SchemaError, match=r"column `l` holds List\(Int64\) values, which cannot name a partition"):
        backend.split_by_values(backend.from_polars(pl.DataFrame({"l": [[1]], "v": [1]})), ["l"])
    chunk = backend.from_arrow(pa.table({"k": [1, 2]}))
    with pytest.raises(ValueError, match="no column would be left to write"):
        backend.split_by_values(chunk, ["k"])
    with pytest.raises(ColumnNotFoundError, match="column `x` not found"):
        backend.split_by_values(chunk, ["x"])


@pytest.mark.parametrize("partitions", [2, 3, 4, 5, 16])
def test_a_few_partitions_cut_by_filters_are_those_polars_partition_by_cuts(partitions: int) -> None:
    """Up to `FILTERED_PARTITIONS` each partition is a filter of the frame; beyond, Polars'
    ``partition_by``: the same pieces either way."""
    from streamnet.backends.cpu._partition import SEED, partition_frame

    df = pl.DataFrame({"k": [i % 37 for i in range(500)], "v": list(range(500))})
    ids = pl.col("k").cast(pl.Int64).hash(SEED) % partitions
    want = df.with_columns(ids.alias("p")).partition_by("p", as_dict=True, include_key=False)
    got = partition_frame(df, ["k"], partitions)
    assert sorted(got) == sorted(int(key[0]) for key in want)
    for key, piece in want.items():
        assert_frame_equal(got[int(key[0])], piece)


@pytest.mark.parametrize(
    "types", [(pa.int16(), pa.uint8()), (pa.int8(), pa.uint64()), (pa.int64(), pa.uint32())]
)
@given(values=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 100)), min_size=1, max_size=30))
def test_several_keys_hash_alike_signed_or_unsigned(
    backend: Backend, types: tuple[pa.DataType, pa.DataType], values: list[tuple[int, int]]
) -> None:
    """The two sides of a join on [a, k] may hold k as Int16 and UInt8: a struct of the
    keys hashes by the fields' types, so both must be cast to one."""

    def placement(dtype: pa.DataType) -> dict[tuple[int, int], int]:
        a, k = zip(*values, strict=True)
        chunk = backend.from_arrow(pa.table({"a": pa.array(a, pa.int64()), "k": pa.array(k, dtype)}))
        pieces = backend.hash_partition(chunk, ["a", "k"], 5)
        return {
            row: p for p, piece in pieces.items() for row in backend.to_polars(piece).iter_rows()
        }

    signed, unsigned = types
    assert placement(signed) == placement(unsigned)
