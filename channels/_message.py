"""The envelope that travels through channels."""

from __future__ import annotations

import types
import typing
from typing import Any, Generic, TypeVar

__all__ = ["Message"]

T = TypeVar("T")


class Message(Generic[T]):
    """A payload tagged with its sequence number.

    Sequence numbers are unique within a stream and define its order; nothing
    assumes they are dense or that messages arrive in order.

    Examples
    --------
    >>> msg = Message(3, "payload")
    >>> msg.sequence_number, msg.payload
    (3, 'payload')
    """

    __slots__ = ("payload", "sequence_number")

    sequence_number: int
    payload: T

    def __init__(self, sequence_number: int, payload: T) -> None:
        if type(sequence_number) is not int:
            if not isinstance(sequence_number, int) or isinstance(sequence_number, bool):
                raise TypeError(
                    "Message: `sequence_number` must be an int, "
                    f"got {type(sequence_number).__name__} {sequence_number!r}"
                )
            sequence_number = int(sequence_number)
        self.sequence_number = sequence_number
        self.payload = payload

    @property
    def nbytes(self) -> int:
        """Size of the payload in bytes, as the payload reports it (0 if it does not)."""
        return payload_nbytes(self.payload)

    def __repr__(self) -> str:
        return f"Message(sequence_number={self.sequence_number}, payload={self.payload!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return bool(self.sequence_number == other.sequence_number and self.payload == other.payload)

    __hash__ = None  # type: ignore[assignment]


_REPORTS_NBYTES: dict[type, bool] = {}
_REPORTS_ROWS: dict[type, bool] = {}


def payload_nbytes(payload: Any) -> int:
    """Bytes a payload reports through an ``nbytes`` attribute, else 0."""
    kind = type(payload)
    reports = _REPORTS_NBYTES.get(kind)
    if reports is None:
        reports = _REPORTS_NBYTES[kind] = hasattr(payload, "nbytes")
    if not reports:
        return 0
    nbytes = getattr(payload, "nbytes", 0)
    return nbytes if type(nbytes) is int else 0


def payload_rows(payload: Any) -> int:
    """Rows a payload reports through a ``num_rows`` attribute, else 0."""
    kind = type(payload)
    reports = _REPORTS_ROWS.get(kind)
    if reports is None:
        reports = _REPORTS_ROWS[kind] = hasattr(payload, "num_rows")
    if not reports:
        return 0
    rows = getattr(payload, "num_rows", 0)
    return rows if type(rows) is int else 0


_STREAM_CHECKS: dict[type, Any] = {}


def payload_stream_check(payload: Any) -> Any:
    """The ``__stream_check__`` method of a payload's type, or None if it has none.

    A payload type defines ``__stream_check__(self, state, channel, sequence_number)``
    to keep a stream consistent: a channel calls it on every payload that enters,
    with the state the previous payload returned (None for the first), and keeps
    what it returns; it raises to refuse the payload. Channels never look inside.
    """
    kind = type(payload)
    check = _STREAM_CHECKS.get(kind, _UNKNOWN)
    if check is _UNKNOWN:
        check = _STREAM_CHECKS[kind] = getattr(kind, "__stream_check__", None)
    return check


_UNKNOWN: Any = object()


PayloadTraits = tuple[Any, bool, bool]
"""A payload type's ``__stream_check__`` (or None), and whether it reports ``nbytes`` and
``num_rows``: what `Channel.send` asks of every payload, looked up once per type."""

_TRAITS: dict[type, PayloadTraits] = {}


def payload_traits(payload: Any) -> PayloadTraits:
    """The traits of ``payload``'s type (`PayloadTraits`), found on its first instance.

    The same answers as `payload_stream_check`, `payload_nbytes` and `payload_rows`
    give, in one lookup: a channel's send is the hottest path of a network.
    """
    kind = type(payload)
    traits = _TRAITS.get(kind)
    if traits is None:
        payload_nbytes(payload)  # fills the per-type caches those functions keep
        payload_rows(payload)
        traits = _TRAITS[kind] = (
            payload_stream_check(payload),
            _REPORTS_NBYTES[kind],
            _REPORTS_ROWS[kind],
        )
    return traits


def payload_classes(payload_type: Any) -> tuple[type, ...] | None:
    """The classes a payload of the declared ``payload_type`` must be an instance of,
    as ``send`` checks it; None when it checks nothing (``Any``, a TypeVar, None).

    ``int | str`` gives ``(int, str)``; ``list[int]`` gives ``(list,)``.
    """
    if payload_type is None or payload_type is Any or isinstance(payload_type, TypeVar):
        return None
    origin = typing.get_origin(payload_type)
    if origin is typing.Union or origin is types.UnionType:
        flat: list[type] = []
        for arg in typing.get_args(payload_type):
            part = payload_classes(arg)
            if part is None:
                return None
            flat.extend(part)
        return tuple(flat)
    if origin is not None:
        return payload_classes(origin)
    return (payload_type,) if isinstance(payload_type, type) else None
