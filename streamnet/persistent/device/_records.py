"""Fixed-size records: how a `persistent_message` with numeric fields travels through a ring.

A record is a header and a payload of 8-byte words, the same size for every type of
message a ring carries (`RecordLayout.words`: the most fields of any of them):

- header (`HEADER`, 24 bytes): the message type's id (``type_id``, from 1 in the
  order the layout lists the types; 0 is no message), its ``priority`` (0-255), and
  64-bit ``message_id`` and ``correlation_id`` (the host keeps the map between
  these and the messages' UUIDs);
- payload: the message's own fields in declaration order, one word each: ``int``
  as a signed 64-bit integer, ``float`` as a double, ``bool`` as 0 or 1.

A message type whose fields are anything else cannot travel as a record:
`RecordLayout` says which field and why (`RecordLayoutError`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["HEADER", "RecordLayout", "RecordLayoutError"]

HEADER = np.dtype(
    [("type_id", "<u4"), ("priority", "<u4"), ("message_id", "<u8"), ("correlation_id", "<u8")]
)
"""The header of every record: 24 bytes, little-endian, no padding."""

_OWN_FIELDS = frozenset({"message_id", "priority", "correlation_id"})
"""The fields `persistent_message` adds: they travel in the header."""
_WORDS: dict[type, str] = {bool: "<i8", int: "<i8", float: "<f8"}
_INT64 = (-(2**63), 2**63 - 1)


class RecordLayoutError(TypeError):
    """A message type cannot travel as a fixed-size record; the message names the type,
    the field and why."""


@dataclasses.dataclass(frozen=True)
class _TypeLayout:
    cls: type
    type_id: int
    fields: tuple[tuple[str, type], ...]
    view: np.dtype  # the record as this type's fields


class RecordLayout:
    """The records of the message ``types`` (each a `persistent_message` class whose fields
    are ``int``, ``float`` or ``bool``), with ``words`` payload words (default: the most
    fields of any type).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> from streamnet.persistent import persistent_message
    >>> @persistent_message
    ... @dataclass
    ... class Add:
    ...     a: float
    ...     b: float
    >>> layout = RecordLayout([Add])
    >>> layout.itemsize, layout.type_id(Add)
    (40, 1)
    >>> record = layout.encode(Add(1.5, 2.0), message_id=7)
    >>> message, message_id, correlation_id = layout.decode(record)
    >>> (message.a, message.b, message_id, correlation_id)
    (1.5, 2.0, 7, 0)

    Raises
    ------
    RecordLayoutError
        A type is not a `persistent_message`, has a field of another type, appears
        twice, or has more fields than ``words``.
    ValueError
        ``types`` is empty, or ``words`` is not an int >= 0.
    """

    def __init__(self, types: Sequence[type], *, words: int | None = None) -> None:
        types = list(types)
        if not types:
            raise ValueError("RecordLayout: `types` must name at least one message type")
        if words is not None and (type(words) is not int or words < 0):
            raise ValueError(f"RecordLayout: `words` must be an int >= 0, got {words!r}")
        fields = [_fields(cls) for cls in types]
        most = max(len(f) for f in fields)
        if words is None:
            words = most
        self.words = words
        """Payload words per record."""
        self.dtype = np.dtype([("header", HEADER), ("payload", "<u8", (words,))])
        """The record as the ring holds it: the header, then the words unread."""
        self._by_type: dict[type, _TypeLayout] = {}
        self._by_id: dict[int, _TypeLayout] = {}
        for type_id, (cls, own) in enumerate(zip(types, fields, strict=True), start=1):
            if cls in self._by_type:
                raise RecordLayoutError(f"RecordLayout: `{cls.__qualname__}` is listed twice")
            if len(own) > words:
                raise RecordLayoutError(
                    f"RecordLayout: `{cls.__qualname__}` has {len(own)} fields, more than "
                    f"the {words} payload words of a record"
                )
            view = np.dtype(
                [("header", HEADER), *((name, _WORDS[kind]) for name, kind in own)]
                + ([("unused", "<u8", (words - len(own),))] if words > len(own) else [])
            )
            layout = _TypeLayout(cls, type_id, tuple(own), view)
            self._by_type[cls] = layout
            self._by_id[type_id] = layout

    @property
    def itemsize(self) -> int:
        """Bytes per record."""
        return int(self.dtype.itemsize)

    @property
    def types(self) -> tuple[type, ...]:
        """The message types, in the order of their ids."""
        return tuple(layout.cls for layout in self._by_id.values())

    def type_id(self, cls: type) -> int:
        """The id of the message type ``cls`` (KeyError if the layout does not list it)."""
        found = self._by_type.get(cls)
        if found is None:
            raise KeyError(f"RecordLayout: `{cls.__qualname__}` is not one of its types")
        return found.type_id

    def fields_of(self, cls: type) -> tuple[tuple[str, type], ...]:
        """The payload fields of ``cls``, in the order of its record's words, and their kinds
        (KeyError if the layout does not list it)."""
        self.type_id(cls)
        return self._by_type[cls].fields

    def encode(self, message: Any, *, message_id: int, correlation_id: int = 0) -> np.void:
        """``message`` as a record, with the 64-bit ids given.

        Raises
        ------
        KeyError
            The message's type is not one of the layout's.
        ValueError
            An id is not in 0..2^64-1, or an ``int`` field does not fit 64 bits; the
            message names the field.
        """
        layout = self._by_type.get(type(message))
        if layout is None:
            raise KeyError(
                f"RecordLayout: a `{type(message).__qualname__}` is not one of its types "
                f"{[cls.__qualname__ for cls in self._by_type]}"
            )
        for name, value in (("message_id", message_id), ("correlation_id", correlation_id)):
            if type(value) is not int or not 0 <= value < 2**64:
                raise ValueError(f"RecordLayout: `{name}` must be an int in 0..2^64-1, got {value!r}")
        record = np.zeros((), dtype=layout.view)
        record["header"] = (layout.type_id, message.priority, message_id, correlation_id)
        for name, kind in layout.fields:
            value = getattr(message, name)
            if kind is int and not _INT64[0] <= value <= _INT64[1]:
                raise ValueError(
                    f"RecordLayout: `{type(message).__qualname__}.{name}` = {value} does not "
                    "fit a 64-bit integer"
                )
            record[name] = value
        encoded: np.void = record.view(self.dtype)[()]  # type: ignore[assignment]
        return encoded

    def decode(self, record: np.void | np.ndarray) -> tuple[Any, int, int]:
        """The message a record holds, its message id and its correlation id (0: none).

        Raises
        ------
        ValueError
            The record's type id is 0 (no message) or not one of the layout's.
        """
        raw = np.asarray(record).reshape(()).view(self.dtype)
        header = raw["header"]
        type_id = int(header["type_id"])
        layout = self._by_id.get(type_id)
        if layout is None:
            raise ValueError(
                f"RecordLayout: a record of type id {type_id} is none of its types "
                f"(ids 1..{len(self._by_id)})"
            )
        typed = raw.view(layout.view)
        values = {name: kind(typed[name].item()) for name, kind in layout.fields}
        message = layout.cls(**values, priority=int(header["priority"]))
        return message, int(header["message_id"]), int(header["correlation_id"])

    def __repr__(self) -> str:
        names = ", ".join(cls.__qualname__ for cls in self._by_type)
        return f"<RecordLayout of {names}: {self.itemsize} bytes a record>"


def _fields(cls: type) -> list[tuple[str, type]]:
    """The payload fields of the message type ``cls`` and their kinds."""
    if not isinstance(cls, type) or not getattr(cls, "__is_message__", False):
        raise RecordLayoutError(
            f"RecordLayout: `{getattr(cls, '__qualname__', cls)!r}` is not a @persistent_message class"
        )
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # an annotation that does not resolve
        raise RecordLayoutError(
            f"RecordLayout: the field types of `{cls.__qualname__}` do not resolve: {exc}"
        ) from exc
    found = []
    for field in dataclasses.fields(cls):
        if field.name in _OWN_FIELDS:
            continue
        kind = hints.get(field.name)
        if kind not in _WORDS:
            raise RecordLayoutError(
                f"RecordLayout: `{cls.__qualname__}.{field.name}` is a {kind!r}; a record "
                "holds int, float and bool fields only"
            )
        found.append((field.name, kind))
    return found

