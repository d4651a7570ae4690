"""Rough row counts of the nodes of a plan, for the translator's choices (a join's build side).

A scan's rows come from what is known before anything runs: a Parquet file's
footer, a frame's height, a text file's bytes (``TEXT_ROW_BYTES`` per row). A
predicate keeps ``SELECTIVITY`` of the rows, a group-by ``GROUPS`` of them (one row
without keys), an inner join as many as its larger input (a key joined to the key
of a table), and so on. The numbers are guesses, compared with each other only:
the join reads its right side whole before it streams its left, so the side
guessed smaller goes to the right.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from actors._query._plan import PlanNode
from streamnet import FileReadError, SchemaError, read_parquet_footers

__all__ = ["GROUPS", "SELECTIVITY", "TEXT_ROW_BYTES", "UNKNOWN_ROWS", "RowEstimates"]

SELECTIVITY = 0.25
"""The share of rows a predicate is guessed to keep."""
GROUPS = 0.5
"""The share of its input a keyed group-by is guessed to give."""
TEXT_ROW_BYTES = 100
"""Bytes a row of a CSV or NDJSON file is guessed to take."""
UNKNOWN_ROWS = 1e9
"""The rows of a source nothing is known of (a channel): guessed large, so that it streams."""


class RowEstimates:
    """Guessed row counts of plan nodes, each worked out once."""

    def __init__(self) -> None:
        self._known: dict[int, float] = {}

    def __call__(self, node: PlanNode) -> float:
        if node.id not in self._known:
            self._known[node.id] = self._rows(node)
        return self._known[node.id]

    def _rows(self, node: PlanNode) -> float:
        args = node.args
        inputs = [self(child) for child in node.inputs]
        first = inputs[0] if inputs else 0.0
        kept = SELECTIVITY if args.get("predicate") is not None else 1.0
        if node.op == "parquet":
            rows = _parquet_rows(args["paths"])
        elif node.op in ("csv", "ndjson"):
            rows = _text_rows(args["paths"])
        elif node.op == "frame":
            rows = float(args["frame"].height)
        elif node.op == "channel":
            rows = UNKNOWN_ROWS
        elif node.op == "filter":
            rows = first
        elif node.op == "aggregate":
            rows = first * GROUPS if args["keys"] else 1.0
        elif node.op == "join":
            rows = _joined(args["how"], inputs[0], inputs[1])
        elif node.op == "union":
            rows = sum(inputs)
        elif node.op == "distinct":
            rows = first * GROUPS
        else:  # steps that keep their input's rows (or unknown ones: as many)
            rows = max(inputs, default=UNKNOWN_ROWS)
        zlice = args.get("slice") or args.get("pre_slice")
        if zlice is not None and zlice[1] is not None:
            rows = min(rows, float(zlice[1]))
        return rows * kept


def _joined(how: str, left: float, right: float) -> float:
    if how in ("semi", "anti", "left"):
        return left
    if how == "right":
        return right
    if how == "full":
        return left + right
    if how == "cross":
        return left * right
    return max(left, right)


def _parquet_rows(paths: list[str]) -> float:
    """The rows of the files, from their footers (unknown when they cannot be read); a
    local file's footer is the one the scan reads again (`read_parquet_footers` keeps it)."""
    try:
        if any("://" in str(path) for path in paths):
            return float(pl.scan_parquet(paths).select(pl.len()).collect().item())
        footers = read_parquet_footers([Path(path) for path in paths])
        return float(sum(footer.num_rows for footer in footers.metadata))
    except (OSError, FileReadError, SchemaError, pl.exceptions.PolarsError):
        return UNKNOWN_ROWS


def _text_rows(paths: list[str]) -> float:
    try:
        return sum(os.path.getsize(path) for path in paths) / TEXT_ROW_BYTES
    except OSError:
        return UNKNOWN_ROWS
