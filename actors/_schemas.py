"""The output schema of a Polars kernel, worked out once per input schema.

A local transform applies one kernel to every chunk of a stream, and every chunk
of a stream has one schema, so the outputs of a kernel share one schema too. The
chunks it makes carry that schema (``TableChunk.from_polars(df, schema=...)``),
and each channel they enter then checks them with an identity comparison instead
of reading the frame's types (costly for wide frames).

The schema is trusted only when it is certain: the kernel run on an empty frame
of the input schema must give exactly the schema of its first real output, and
it must hold no type that depends on the data (``Null``, ``Object``, ``Unknown``,
which a Python function or ``json_decode`` without a type can give). Otherwise
every output chunk has its schema read and checked in full, as any chunk made
without one.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pyarrow as pa

from streamnet import TableChunk

__all__ = ["KernelSchema"]

_UNSURE = (pl.Null, pl.Object, pl.Unknown)


def _sure(dtype: pl.DataType) -> bool:
    """Whether ``dtype`` (and every type nested in it) cannot depend on the data."""
    if isinstance(dtype, _UNSURE) or dtype in _UNSURE:
        return False
    if isinstance(dtype, pl.List | pl.Array):
        return _sure(dtype.inner)  # type: ignore[arg-type]
    if isinstance(dtype, pl.Struct):
        return all(_sure(field.dtype) for field in dtype.fields)  # type: ignore[arg-type]
    return True


class KernelSchema:
    """Makes the output chunks of one kernel, sharing their schema when it is certain.

    Not thread-safe: one actor calls :meth:`chunk` for one chunk at a time
    (from a kernel thread, where reading types costs the event loop nothing).
    """

    def __init__(self, kernel: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
        self.kernel = kernel
        self._known: dict[int, tuple[pa.Schema, pa.Schema]] = {}
        self._trusted = True

    def chunk(self, out: pl.DataFrame, source: TableChunk, frame: pl.DataFrame) -> TableChunk:
        """A chunk of ``out``, which the kernel made from ``frame``, ``source``'s data."""
        if not self._trusted:
            return TableChunk.from_polars(out)
        schema = source.schema
        known = self._known.get(id(schema))
        if known is not None and known[0] is schema:
            return TableChunk.from_polars(out, schema=known[1])
        made = TableChunk.from_polars(out)
        predicted = self._predict(frame)
        if predicted is None or not made.schema.equals(predicted, check_metadata=False):
            self._trusted = False  # the kernel's types depend on the data: check every chunk
        elif all(_sure(dtype) for dtype in out.dtypes):
            if len(self._known) >= 16:
                self._known.clear()
            self._known[id(schema)] = (schema, made.schema)
        else:
            self._trusted = False
        return made

    def _predict(self, frame: pl.DataFrame) -> pa.Schema | None:
        """The schema of the kernel's output for an empty frame of ``frame``'s types."""
        try:
            return TableChunk.from_polars(self.kernel(frame.head(0))).schema
        except Exception:  # a kernel that cannot run on no rows: no prediction
            return None
