"""Schemas: the canonical Arrow types the library emits, and one schema per stream.

Canonical types. One Arrow type per logical type, and only the flavours of a
type are mapped: ``string`` and ``string_view`` become ``large_string``,
``binary`` and ``binary_view`` become ``large_binary``, ``list``, ``list_view``
and ``large_list_view`` become ``large_list`` (its child named ``item``), a
dictionary's indices become ``uint32``, and every field is nullable; the walk
goes into struct, list, map and dictionary children. These are the types Polars
exports (``DataFrame.to_arrow()`` at its oldest compatibility level), so a
source stream and a transformed stream of one table have equal schemas. Every
other type (``date64``, ``timestamp[s]``, ``decimal256``, extension types...)
is left as it is: nothing is cast to another logical type. String views would
spare Polars one copy on export, but pyarrow 16 (the oldest supported) can
neither write them to Parquet nor cast strings to them, and not every Arrow
consumer reads them. A chunk made from an Arrow table of other flavours keeps
its data as it is; it is cast only when asked for as Arrow (see `TableChunk`).

What Polars holds exactly. A type whose round trip through Polars gives another
type (``date64`` comes back as a ``timestamp[ms]``, ``time32[s]`` as a
``time64[ns]``, a UUID as ``large_binary``...) or that Polars cannot hold at all
(``decimal256(50, 2)``, intervals, unions) is never converted silently: a chunk
holding one refuses to become a Polars frame with a `SchemaError` naming the
column and the type (``actors.cast`` converts it on purpose).

One schema per stream. Every chunk of a stream has the schema of its first
chunk, as in Polars. A TableChunk entering a channel is checked against the
first chunk that entered it; one that differs raises `SchemaError` naming the
actor, the channel, the columns and both types. Equal schemas share one
`SchemaInfo` (interned), so the check is an identity comparison in the common
case, whatever the number of columns.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from channels.lowlevel import import_lazily
from streamnet._errors import SchemaError

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    import polars as pl
    import pyarrow as pa
else:  # imported on first use: `import streamnet` stays light
    pa = import_lazily("pyarrow")

__all__ = [
    "unused_name",
    "CANNOT_HOLD",
    "SchemaInfo",
    "StreamSchema",
    "canonical_schema",
    "canonical_type",
    "check_stream",
    "describe_schema",
    "empty_table",
    "frame_of_arrow",
    "info_of_arrow",
    "info_of_frame",
    "info_of_schema",
    "null_schema",
    "polars_to_arrow",
    "schema_differences",
    "type_name",
]


# ----------------------------------------------------------------------- canonical types
def _canonical_field(field: pa.Field, name: str | None = None) -> pa.Field:
    return pa.field(
        field.name if name is None else name,
        canonical_type(field.type),
        nullable=True,
        metadata=field.metadata,
    )


@functools.lru_cache(maxsize=1024)
def canonical_type(dtype: pa.DataType) -> pa.DataType:
    """The canonical flavour of ``dtype``: the large string, binary and list flavours,
    ``uint32`` dictionary indices, nullable children; any other type unchanged."""
    types = pa.types
    if types.is_string(dtype) or types.is_large_string(dtype) or _is(dtype, "is_string_view"):
        return pa.large_string()
    if types.is_binary(dtype) or types.is_large_binary(dtype) or _is(dtype, "is_binary_view"):
        return pa.large_binary()
    if (
        types.is_list(dtype)
        or types.is_large_list(dtype)
        or _is(dtype, "is_list_view")
        or _is(dtype, "is_large_list_view")
    ):
        return pa.large_list(_canonical_field(dtype.value_field, "item"))
    if types.is_fixed_size_list(dtype):
        return pa.list_(_canonical_field(dtype.value_field, "item"), dtype.list_size)
    if types.is_map(dtype):
        key = pa.field("key", canonical_type(dtype.key_type), nullable=False)
        return pa.map_(key, _canonical_field(dtype.item_field, "value"), dtype.keys_sorted)
    if types.is_struct(dtype):
        return pa.struct([_canonical_field(dtype.field(i)) for i in range(dtype.num_fields)])
    if types.is_dictionary(dtype):
        return pa.dictionary(pa.uint32(), canonical_type(dtype.value_type), dtype.ordered)
    return dtype


def _is(dtype: pa.DataType, predicate: str) -> bool:
    """``pa.types.<predicate>(dtype)``, False where this pyarrow lacks the type."""
    check = getattr(pa.types, predicate, None)
    return bool(check(dtype)) if check is not None else False


def canonical_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the canonical types (metadata kept)."""
    return pa.schema([_canonical_field(field) for field in schema], metadata=schema.metadata)


# ----------------------------------------------------------------------- Polars' view
CANNOT_HOLD = "Polars cannot hold it"
"""Why a type Polars cannot read at all is refused (not even converted on purpose)."""

def _panic_type() -> type[BaseException]:
    from polars.exceptions import PanicException

    return PanicException


_POLARS_KEYS = (b"_PL_ENUM_VALUES2", b"_PL_ENUM_VALUES", b"_PL_CATEGORICAL2", b"_PL_CATEGORICAL")
"""Field metadata by which Polars says which of its types a dictionary column is (an Enum
and its categories, a Categorical): with them, Polars reads the column back as it was."""


def _says_polars_type(field: pa.Field) -> bool:
    """Whether ``field`` or a field inside it carries Polars' metadata for its type."""
    metadata = field.metadata or {}
    if any(key in metadata for key in _POLARS_KEYS):
        return True
    dtype = field.type
    return any(_says_polars_type(dtype.field(i)) for i in range(dtype.num_fields))


def _polars_round_trip(
    dtype: pa.DataType, field: pa.Field | None = None
) -> tuple[str | None, str | None]:
    import polars as pl

    if pa.types.is_interval(dtype) or (
        pa.types.is_decimal(dtype) and dtype.precision > 38
    ):  # Polars panics on these: do not even try
        return None, CANNOT_HOLD
    try:
        # with the field's metadata, if Polars' (an Enum's categories): Polars reads them
        column = pa.field("c", dtype) if field is None else field.with_name("c")
        frame = pl.from_arrow(pa.Table.from_arrays([pa.nulls(0, dtype)], schema=pa.schema([column])))
        assert isinstance(frame, pl.DataFrame)
        back = polars_to_arrow(frame).schema.field(0).type
    except (Exception, _panic_type()):
        return None, CANNOT_HOLD
    if not canonical_type(back).equals(canonical_type(dtype)):
        return None, f"Polars would make it {type_name(back)}"
    return str(frame.schema["c"]), None


_POLARS_VIEW: dict[tuple[pa.DataType, bool], tuple[str | None, str | None]] = {}


def _polars_view(
    dtype: pa.DataType, field: pa.Field | None = None
) -> tuple[str | None, str | None]:
    """``(Polars' name for dtype, None)`` if Polars holds it exactly, else ``(None, why not)``;
    of the column ``field`` if given (Polars' metadata on it may name the type exactly)."""
    said = field is not None and _says_polars_type(field)
    view = _POLARS_VIEW.get((dtype, said))
    if view is None:
        view = _POLARS_VIEW[dtype, said] = _polars_round_trip(dtype, field if said else None)
    return view


def type_name(dtype: pa.DataType) -> str:
    """``dtype`` as a Polars user reads it (``Int64``, ``String``); Arrow's name for a type
    Polars does not hold exactly (``date64[ms]``)."""
    name, _ = _polars_view(dtype)
    return name if name is not None else str(dtype)


def polars_to_arrow(frame: pl.DataFrame) -> pa.Table:
    """``frame`` as Arrow, with the canonical types (Polars' own export).

    Raises
    ------
    SchemaError
        A column's Polars type has no Arrow form (``Decimal(50, 2)``, ``Int128``
        with an old pyarrow, ``Object``); the message names it.
    """
    import polars as pl

    try:
        table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    except (Exception, _panic_type()) as exc:
        _raise_no_arrow_form(frame, exc)
    if any(_fixed_binary(f.type) for f in table.schema) and not all(
        map(_exports_cheaply, frame.dtypes)
    ):  # an Object column, exported as the addresses of its values
        _raise_no_arrow_form(frame, None)
    if not any(pa.types.is_list(f.type) or pa.types.is_large_list(f.type) for f in table.schema):
        return table
    columns = [pa.chunked_array([_sound(a) for a in c.chunks], c.type) for c in table.columns]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _fixed_binary(dtype: pa.DataType) -> bool:
    """Whether ``dtype`` holds fixed-size binary values at any depth (no Polars type
    exports as that, but ``Object``, as the 8 bytes of each value's address)."""
    if pa.types.is_fixed_size_binary(dtype):
        return True
    return any(_fixed_binary(dtype.field(i).type) for i in range(dtype.num_fields))


def _sound(array: pa.Array) -> pa.Array:
    """``array`` with each list's empty values at offset 0.

    Polars 1.44 exports a list column whose rows hold no values (a slice of one
    that held some) with an empty values array at an offset past the end of its
    buffer. Arrow reads it, but its IPC writer then writes a batch it cannot read
    back, or with other rows' validity: a spilled chunk or a piece sent to
    another rank would come back wrong. The empty values are the same at offset 0.
    (Lists within lists are mended; lists within structs are left as they are.)
    """
    dtype = array.type
    if not (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)):
        return array
    values = array.values
    if len(values) == 0 and values.offset != 0:
        sound = pa.nulls(0, values.type)
    else:
        sound = _sound(values)
        if sound is values:
            return array
    buffers = array.buffers()[:2]  # validity and offsets of the list itself
    return pa.Array.from_buffers(
        dtype, len(array), buffers, array.null_count, array.offset, children=[sound]
    )


def _raise_no_arrow_form(frame: pl.DataFrame, exc: BaseException | None) -> NoReturn:
    bad = [
        f"`{name}` ({dtype})" for name, dtype in frame.schema.items() if not _exports(name, dtype)
    ] or [f"({exc})"]
    actor = _actor_name()
    where = f"actor `{actor}`: " if actor else ""
    raise SchemaError(
        f"{where}a Polars frame cannot become Arrow: column {', '.join(bad)} has a type "
        "Arrow cannot hold; cast it first (`actors.cast`, or a reader's `schema=`); "
        f"got {dict(frame.schema)}"
    ) from None


def _exports_cheaply(dtype: Any) -> bool:
    """False for a type Polars is known to panic on when exporting it, and for ``Object``
    (at any depth), which it exports as the 8 bytes of each value's address."""
    import polars as pl

    if isinstance(dtype, pl.Object):
        return False
    if isinstance(dtype, pl.List | pl.Array):
        return _exports_cheaply(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return all(_exports_cheaply(field.dtype) for field in dtype.fields)
    return not (isinstance(dtype, pl.Decimal) and (dtype.precision or 0) > 38)


def _exports(name: str, dtype: Any) -> bool:
    import polars as pl

    if not _exports_cheaply(dtype):
        return False
    try:
        pl.DataFrame(schema={name: dtype}).to_arrow(compat_level=pl.CompatLevel.oldest())
    except (Exception, _panic_type()):
        return False
    return True


# ----------------------------------------------------------------------- interned schemas
class SchemaInfo:
    """A canonical schema and what the library derives from it, one object per schema.

    Equal schemas share one SchemaInfo (see :func:`info_of_schema`), so chunks of
    one stream compare by identity. Derived facts are worked out once, when first
    needed.
    """

    __slots__ = ("_inexact", "_polars", "_views", "arrow")

    def __init__(self, arrow: pa.Schema) -> None:
        self.arrow = arrow
        self._polars: tuple[list[str], list[Any]] | None = None
        self._inexact: list[tuple[str, pa.DataType, str]] | None = None
        self._views: int | None = None

    def views(self) -> int:
        """How many top-level columns hold strings or binary values (Polars keeps a 16-byte
        view of each value)."""
        found = self._views
        if found is None:
            kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary,
                     pa.types.is_large_binary, pa.types.is_string_view, pa.types.is_binary_view)  # fmt: skip
            found = self._views = sum(any(k(f.type) for k in kinds) for f in self.arrow)
        return found

    def inexact(self) -> list[tuple[str, pa.DataType, str]]:
        """``(column, type, why)`` of each column Polars does not hold exactly."""
        found = self._inexact
        if found is None:
            found = []
            for field in self.arrow:
                _, why = _polars_view(field.type, field)
                if why is not None:
                    found.append((field.name, field.type, why))
            self._inexact = found
        return found

    def __repr__(self) -> str:
        return f"<SchemaInfo {describe_schema(self.arrow)}>"


_LIMIT = 32
# The schemas seen last, newest first. Each is replaced whole, never mutated, so that
# kernel threads may read one while another thread replaces it.
_interned: tuple[SchemaInfo, ...] = ()
_by_raw: tuple[tuple[pa.Schema, SchemaInfo], ...] = ()
_by_polars: tuple[tuple[list[str], list[Any], SchemaInfo], ...] = ()
_lock = threading.Lock()


def info_of_schema(schema: pa.Schema) -> SchemaInfo:
    """The SchemaInfo of a schema already canonical (the one shared by equal schemas)."""
    global _interned
    for info in _interned:
        if info.arrow is schema:
            return info
    for info in _interned:
        if info.arrow.equals(schema, check_metadata=True):
            return info
    with _lock:
        for info in _interned:
            if info.arrow.equals(schema, check_metadata=True):
                return info
        info = SchemaInfo(schema)
        _interned = (info, *_interned[: _LIMIT - 1])
    return info


def info_of_arrow(schema: pa.Schema) -> SchemaInfo:
    """The SchemaInfo of a table of ``schema`` (any flavours): of its canonical form."""
    global _by_raw
    for info in _interned:  # a canonical schema a chunk gave
        if info.arrow is schema:
            return info
    for seen, info in _by_raw:
        if seen is schema or seen.equals(schema, check_metadata=True):
            return info
    for _, _, info in _by_polars:  # a frame's schema, which may have left `_interned`
        if info.arrow is schema:
            return info
    info = info_of_schema(canonical_schema(schema))
    _by_raw = ((schema, info), *_by_raw[: _LIMIT - 1])
    return info


def info_of_frame(frame: pl.DataFrame) -> SchemaInfo:
    """The SchemaInfo of a Polars frame's Arrow export, without exporting any row.

    Raises
    ------
    SchemaError
        A column's type has no Arrow form (see :func:`polars_to_arrow`).
    """
    import polars as pl

    global _by_polars
    names, dtypes = frame.columns, frame.dtypes
    for seen_names, seen_dtypes, info in _by_polars:
        if seen_names == names and seen_dtypes == dtypes:
            return info
    if any(not _exports_cheaply(dtype) for dtype in dtypes):  # Polars would panic
        _raise_no_arrow_form(frame, None)
    exported = polars_to_arrow(pl.DataFrame(schema=list(zip(names, dtypes, strict=True))))
    info = info_of_schema(canonical_schema(exported.schema))
    _by_polars = ((names, dtypes, info), *_by_polars[: _LIMIT - 1])
    return info


def empty_table(schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` (its metadata included) with no rows, one empty chunk per
    column. ``Schema.empty_table()`` imports pandas (a tenth of a second, the first
    time); this does not.

    Examples
    --------
    >>> empty_table(pa.schema([("x", pa.int64())])).to_pydict()
    {'x': []}
    """
    arrays = [pa.nulls(0, field.type) for field in schema]
    return pa.Table.from_batches([pa.RecordBatch.from_arrays(arrays, schema=schema)])


def null_schema(columns: Iterable[str]) -> pa.Schema:
    """A schema of ``columns``, each of the Null type: columns that no data has typed yet
    (a stream that ended without a chunk anywhere).

    Examples
    --------
    >>> null_schema(["a", "b"]).types
    [DataType(null), DataType(null)]
    """
    return pa.schema([(name, pa.null()) for name in columns])


# ----------------------------------------------------------------------- describing
def describe_schema(schema: pa.Schema) -> str:
    """``{name: type, ...}`` for error messages, in the words of a Polars user.

    Types are named as Polars names them; a type Polars does not hold exactly
    keeps its Arrow name, so that the message never names a type the data
    does not have.

    Examples
    --------
    >>> import pyarrow as pa
    >>> describe_schema(pa.schema([("id", pa.int64()), ("name", pa.string()), ("day", pa.date64())]))
    '{id: Int64, name: String, day: date64[ms]}'
    """
    return "{" + ", ".join(f"{field.name}: {type_name(field.type)}" for field in schema) + "}"


def schema_differences(expected: pa.Schema, got: pa.Schema, *, of: str = "the stream") -> list[str]:
    """How ``got`` differs from ``expected`` (the schema ``of`` something), one phrase per column.

    Empty when they are equal. Types are compared without metadata; column order
    counts, as in Polars.
    """
    want = {field.name: field for field in expected}
    have = {field.name: field for field in got}
    out: list[str] = []
    for field in got:
        if field.name not in want:
            out.append(f"column `{field.name}` ({type_name(field.type)}) is not in {of}")
        elif not field.type.equals(want[field.name].type):
            out.append(
                f"column `{field.name}` has type {type_name(field.type)} where {of} has "
                f"{type_name(want[field.name].type)}"
            )
    out.extend(
        f"column `{field.name}` ({type_name(field.type)}) is missing"
        for field in expected
        if field.name not in have
    )
    if not out and expected.names != got.names:
        out.append(f"columns come in the order {got.names} where {of} has {expected.names}")
    if not out and not got.equals(expected, check_metadata=False):
        out.append(f"fields differ from {of} in nullability")
    return out


# ----------------------------------------------------------------------- one per stream
@dataclass(slots=True)
class StreamSchema:
    """The schema of a stream, set by its first chunk: what a channel remembers."""

    info: SchemaInfo
    sequence_number: int
    actor: str | None


def check_stream(
    state: StreamSchema | None, info: SchemaInfo, channel: str, sequence_number: int
) -> StreamSchema:
    """The stream's schema once a chunk of schema ``info`` entered the channel ``channel``.

    An identity comparison when the chunk shares its stream's SchemaInfo (the
    common case), a comparison of schemas otherwise; never of data.

    Raises
    ------
    SchemaError
        ``chunk`` does not have the schema of the stream's first chunk.
    """
    if state is None:
        return StreamSchema(info, sequence_number, _actor_name())
    if info is state.info:
        return state
    expected = state.info.arrow
    if info.arrow.equals(expected, check_metadata=False):
        return state
    actor = _actor_name()
    where = f"actor `{actor}`, channel `{channel}`" if actor else f"channel `{channel}`"
    origin = str(state.sequence_number)
    if state.actor is not None and state.actor != actor:
        origin += f", sent by `{state.actor}`"
    problems = "; ".join(schema_differences(expected, info.arrow))
    raise SchemaError(
        f"{where}: chunk {sequence_number} does not match the schema the stream's first chunk "
        f"({origin}) set: {problems}; every chunk of a stream must share one schema (to combine "
        "streams of different types, cast them explicitly first, with `actors.cast`); "
        f"got {describe_schema(info.arrow)}"
    )


def _actor_name() -> str | None:
    """The running actor's name (its module builds on this one: imported when asked)."""
    from streamnet._actor import current_actor_name

    return current_actor_name()


def frame_of_arrow(data: pa.Table | pa.RecordBatch, *, rechunk: bool = True) -> pl.DataFrame:
    """``pl.from_arrow(data)`` with every column's name kept: Polars names a column whose
    name is empty ``column_<i>`` (and fails when that name is taken), where its readers
    and pyarrow keep the empty name."""
    import polars as pl

    names = data.schema.names
    empty_named = "" in names
    if empty_named:
        data = data.rename_columns(
            [name or unused_name(f"__empty_{i}", names) for i, name in enumerate(names)]
        )
    frame = pl.from_arrow(data, rechunk=rechunk)
    assert isinstance(frame, pl.DataFrame)
    if empty_named:
        frame.columns = names
    return frame


def unused_name(name: str, taken: Collection[str]) -> str:
    """``name``, with more leading underscores until it is none of ``taken``: a scratch
    column that a step adds and drops is named apart from its input's own columns."""
    while name in taken:
        name = "_" + name
    return name
