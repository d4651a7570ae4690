"""``@persistent_message``: dataclass messages for persistent actors, with id, priority and
correlation (a network's `streamnet.Message` is another thing: the envelope of a stream)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, overload
from uuid import UUID, uuid4

__all__ = ["is_persistent_message", "persistent_message", "reply"]

C = TypeVar("C", bound=type)
M = TypeVar("M")


@overload
def persistent_message(cls: C, /) -> C: ...


@overload
def persistent_message(cls: None = None, /, *, priority: int = 128) -> Callable[[C], C]: ...


def persistent_message(cls: Any = None, /, *, priority: int = 128) -> Any:
    """Make a class a persistent actor's message: a dataclass with ``message_id`` (a fresh UUID),
    ``priority`` (0-255, higher is delivered first; default 128) and
    ``correlation_id`` (the ``message_id`` of the request it answers, or None).

    Fields the class already declares are kept. ``msg.reply(response)`` returns
    ``response`` with its ``correlation_id`` set to ``msg.message_id``.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @persistent_message
    ... @dataclass
    ... class Ping:
    ...     text: str
    >>> @persistent_message
    ... @dataclass
    ... class Pong:
    ...     text: str
    >>> ping = Ping("hi")
    >>> pong = ping.reply(Pong("hi back"))
    >>> pong.correlation_id == ping.message_id, ping.priority
    (True, 128)
    """
    if type(priority) is not int or not 0 <= priority <= 255:
        raise ValueError(
            f"@persistent_message: `priority` must be an int in 0..255, got {priority!r}"
        )

    def decorate(klass: C) -> C:
        if not dataclasses.is_dataclass(klass):
            klass = dataclasses.dataclass(klass)  # type: ignore[assignment]
        have = {f.name for f in dataclasses.fields(klass)}
        extra: list[tuple[str, Any, Any]] = []
        if "message_id" not in have:
            extra.append(("message_id", UUID, dataclasses.field(default_factory=uuid4)))
        if "priority" not in have:
            extra.append(("priority", int, dataclasses.field(default=priority)))
        if "correlation_id" not in have:
            extra.append(("correlation_id", UUID | None, dataclasses.field(default=None)))
        parent_post_init = getattr(klass, "__post_init__", None)

        def __post_init__(self: Any) -> None:
            if parent_post_init is not None:
                parent_post_init(self)
            value = self.priority
            if type(value) is not int or not 0 <= value <= 255:
                raise ValueError(
                    f"{type(self).__name__}: `priority` must be an int in 0..255, got {value!r}"
                )

        params = klass.__dataclass_params__  # type: ignore[attr-defined]
        made = dataclasses.make_dataclass(
            klass.__name__,
            extra,
            bases=(klass,),
            namespace={
                "__post_init__": __post_init__,
                "reply": _reply_method,
                "__doc__": klass.__doc__,
            },
            frozen=params.frozen,
            eq=params.eq,
            order=params.order,
        )
        made.__module__ = klass.__module__
        made.__qualname__ = klass.__qualname__
        made.__is_message__ = True  # type: ignore[attr-defined]
        return made  # type: ignore[return-value]

    return decorate(cls) if cls is not None else decorate


def _reply_method(self: Any, response: M) -> M:
    return reply(self, response)


def reply(request: Any, response: M) -> M:
    """``response`` answering ``request``: a copy whose ``correlation_id`` is the request's id."""
    if not is_persistent_message(response):
        raise TypeError(
            f"reply: the response must be a @persistent_message, got {type(response).__name__}"
        )
    fields = getattr(response, "__dict__", None)
    if fields is None:  # slotted dataclass: the general (slower) way
        return dataclasses.replace(response, correlation_id=request.message_id)  # type: ignore[type-var]
    answer = object.__new__(type(response))
    answer.__dict__.update(fields)  # a shallow copy, as dataclasses.replace makes
    object.__setattr__(answer, "correlation_id", request.message_id)  # frozen ones too
    return answer


def is_persistent_message(value: Any) -> bool:
    """Whether ``value`` is an instance of a ``@persistent_message`` class."""
    return bool(getattr(type(value), "__is_message__", False))

