"""Deprecations: each old name and old call shape works for one release, and warns
`DeprecationWarning` naming what replaces it, at the caller's line."""

from __future__ import annotations

import asyncio
import importlib
import random
from dataclasses import dataclass
from typing import Any

import pytest

import actors
import streamnet
from streamnet import (
    ActorRuntime,
    Backoff,
    ChildSpec,
    PersistentActorContext,
    RestartPolicy,
    persistent_message,
)
from streamnet._deprecation import RENAMED

OLD_NAMES = [
    (module, old, new)
    for package, names in RENAMED.items()
    for old, new in names.items()
    for module in (package, "streamnet.persistent")
    if module.partition(".")[0] == package and hasattr(importlib.import_module(module), new)
]


def test_every_renamed_name_is_served_somewhere() -> None:
    served = {(module.partition(".")[0], old) for module, old, _ in OLD_NAMES}
    assert served == {(package, old) for package, names in RENAMED.items() for old in names}


@pytest.mark.parametrize(("module", "old", "new"), OLD_NAMES)
def test_an_old_name_is_the_new_one_and_warns_naming_it(module: str, old: str, new: str) -> None:
    namespace = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=rf"`{module}\.{old}` is deprecated; use `{module}\.{new}`") as caught:
        value = getattr(namespace, old)
    assert value is getattr(namespace, new)
    assert caught[0].filename == __file__  # the warning points at the caller
    assert old not in namespace.__all__


def test_from_import_of_an_old_name_warns() -> None:
    with pytest.warns(DeprecationWarning, match="use `streamnet.persistent_message`"):
        from streamnet import message
    assert message is persistent_message


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module `streamnet` has no attribute `nothing_here`"):
        streamnet.nothing_here  # noqa: B018
    with pytest.raises(AttributeError):
        actors.ActorContext  # noqa: B018


def test_the_old_persistent_names_keep_the_guide_idiom_working() -> None:
    with pytest.warns(DeprecationWarning, match="use `streamnet.persistent_message`"):
        message = streamnet.message
    with pytest.warns(DeprecationWarning, match="use `streamnet.PersistentActorContext`"):
        context_type = streamnet.ActorContext

    @message
    @dataclass
    class Ping:
        text: str

    assert getattr(Ping("x"), "priority", None) == 128
    assert context_type is PersistentActorContext


# ------------------------------------------------------------------ keyword-only options
@persistent_message
@dataclass
class Echo:
    text: str


async def echo(ctx: PersistentActorContext) -> None:
    while True:
        request = await ctx.receive()
        await ctx.send(request.reply(Echo(request.text)))


def _positional(call: Any, *args: Any) -> Any:
    """``call(*args)``, which must warn that options are passed by position."""
    with pytest.warns(DeprecationWarning, match=r": pass `\w+`.* by keyword \(`\w+=\.\.\.`.*\), not by position") as caught:
        result = call(*args)
    assert caught[0].filename == __file__
    return result


@pytest.mark.timeout(30)
async def test_a_timeout_passed_by_position_works_and_warns() -> None:
    runtime = ActorRuntime()
    await runtime.launch("echo", echo)
    await runtime.activate("echo")
    await _positional(runtime.send, "echo", Echo("a"), 5.0)
    assert (await _positional(runtime.receive, "echo", 5.0)).text == "a"
    reply = await _positional(runtime.request, "echo", Echo("b"), 5.0)
    assert reply.text == "b"
    with pytest.raises(TimeoutError):  # the value reached the parameter
        await _positional(runtime.receive, "echo", 0.01)
    await _positional(runtime.terminate, "echo", 5.0)
    assert runtime.state("echo") == "terminated"
    await _positional(runtime.shutdown, 5.0)


@pytest.mark.timeout(30)
async def test_a_receive_timeout_passed_by_position_works_and_warns() -> None:
    got: list[BaseException] = []

    async def waits(ctx: PersistentActorContext) -> None:
        try:
            await _positional(ctx.receive, 0.01)
        except TimeoutError as exc:
            got.append(exc)

    async with ActorRuntime() as runtime:
        await runtime.launch("w", waits)
        await runtime.activate("w")
        instance = runtime.instance("w")
        assert instance is not None and instance.task is not None
        await asyncio.wait([instance.task])
    assert len(got) == 1


def test_options_of_specs_passed_by_position_work_and_warn() -> None:
    async def work(ctx: PersistentActorContext) -> None: ...

    assert _positional(Backoff, 0.5, 2.0) == Backoff(initial=0.5, maximum=2.0)
    spec = _positional(ChildSpec, "a", work, (), {}, "transient", 1.0)
    assert spec == ChildSpec("a", work, restart="transient", shutdown_timeout=1.0)
    assert _positional(RestartPolicy, 5) == RestartPolicy(max_restarts=5)
    plain = Backoff(jitter=0.0)
    assert _positional(plain.delay, 2, random.Random(0)) == plain.delay(2)


def test_too_many_positional_arguments_are_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"`RestartPolicy` takes 1 positional arguments"):
        RestartPolicy(1, 2, 3)  # type: ignore[call-arg]
    with (
        pytest.raises(TypeError, match="multiple values for `max_restarts`"),
        pytest.warns(DeprecationWarning, match="pass `max_restarts` by keyword"),
    ):
        RestartPolicy(1, max_restarts=2)  # type: ignore[misc]
