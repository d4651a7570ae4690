"""Actor definitions whose nodes check their arguments when made, before anything runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec

from streamnet import ActorDefinition, ActorNode, Context

__all__ = ["checked_actor"]

P = ParamSpec("P")


class _CheckedDefinition(ActorDefinition[P]):
    """An actor definition whose nodes call ``check(name, **arguments)`` when made."""

    def __init__(
        self,
        fn: Callable[Concatenate[Context, P], Awaitable[Any]],
        check: Callable[..., None],
        *,
        collective: bool,
    ) -> None:
        super().__init__(fn, name=None, inputs=(), outputs=(), collective=collective)
        self._check = check

    def __call__(self, ctx: Context, /, *args: P.args, **kwargs: P.kwargs) -> ActorNode:
        node = super().__call__(ctx, *args, **kwargs)
        bound = self.signature.bind(ctx, *args, **kwargs)
        bound.apply_defaults()
        self._check(node.name, **bound.arguments)
        return node


def checked_actor(
    check: Callable[..., None], *, collective: bool = False
) -> Callable[[Callable[Concatenate[Context, P], Awaitable[Any]]], ActorDefinition[P]]:
    """Declare an actor whose nodes call ``check(name, **arguments)`` when made.

    ``name`` is the node's name and ``arguments`` its bound arguments (defaults
    applied), so bad arguments fail while the network is built, naming the node.
    """

    def decorate(fn: Callable[Concatenate[Context, P], Awaitable[Any]]) -> ActorDefinition[P]:
        return _CheckedDefinition(fn, check, collective=collective)

    return decorate
