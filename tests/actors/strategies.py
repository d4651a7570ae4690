"""Hypothesis strategies for random frames with nulls."""

from __future__ import annotations

import polars as pl
from hypothesis import strategies as st


@st.composite
def frames(draw: st.DrawFn, max_rows: int = 60) -> pl.DataFrame:
    n = draw(st.integers(0, max_rows))
    ints = draw(st.lists(st.one_of(st.none(), st.integers(-50, 50)), min_size=n, max_size=n))
    floats = draw(
        st.lists(
            st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=n, max_size=n
        )
    )
    strs = draw(
        st.lists(
            st.one_of(st.none(), st.sampled_from(["a", "bb", "ccc", ""])), min_size=n, max_size=n
        )
    )
    return pl.DataFrame(
        {"i": ints, "f": floats, "s": strs},
        schema={"i": pl.Int64, "f": pl.Float64, "s": pl.String},
    )


chunk_rows = st.integers(1, 25)
