"""Hypothesis strategies: random frames of many column types, with nulls."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import polars as pl
from hypothesis import strategies as st

# name: (Polars type, values)
COLUMNS: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "i8": (pl.Int8, st.integers(-128, 127)),
    "i32": (pl.Int32, st.integers(-50, 50)),
    "i64": (pl.Int64, st.integers(-(2**62), 2**62)),
    "u16": (pl.UInt16, st.integers(0, 2**16 - 1)),
    "f64": (pl.Float64, st.floats(-1e6, 1e6, allow_nan=False)),
    "b": (pl.Boolean, st.booleans()),
    "s": (pl.String, st.sampled_from(["a", "bb", "ccc", "", "é"])),
    "d": (pl.Date, st.dates(datetime.date(1970, 1, 1), datetime.date(2100, 1, 1))),
    "t": (
        pl.Datetime("us"),
        st.datetimes(datetime.datetime(1970, 1, 1), datetime.datetime(2100, 1, 1)),
    ),
    "dec": (
        pl.Decimal(10, 2),
        st.decimals(-(10**7), 10**7, places=2, allow_nan=False, allow_infinity=False).map(
            lambda v: v.quantize(decimal.Decimal("0.01"))
        ),
    ),
    "l": (pl.List(pl.Int64), st.lists(st.integers(-5, 5), max_size=3)),
}


@st.composite
def frames(draw: st.DrawFn, max_rows: int = 40) -> pl.DataFrame:
    """A frame of a random choice of the columns above (at least one), nulls included."""
    names = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=6, unique=True))
    rows = draw(st.integers(0, max_rows))
    data = {
        name: draw(st.lists(st.one_of(st.none(), COLUMNS[name][1]), min_size=rows, max_size=rows))
        for name in names
    }
    return pl.DataFrame(data, schema={name: COLUMNS[name][0] for name in names})
