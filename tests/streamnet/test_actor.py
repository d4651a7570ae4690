from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from streamnet import ActorNode, Channel, Context, TableChunk, define_actor
from streamnet._actor import role_from_name


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("ch_in", "input"),
        ("chs_in", "input"),
        ("left_in", "input"),
        ("inputs", "input"),
        ("ch_out", "output"),
        ("out", "output"),
        ("outputs", "output"),
        ("left", None),
        ("in_out", None),
        ("inside", None),
    ],
)
def test_role_from_parameter_name(name: str, role: str | None) -> None:
    assert role_from_name(name) == role


def test_define_actor_with_and_without_parentheses() -> None:
    @define_actor
    async def a(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None: ...

    @define_actor()
    async def b(ctx: Context, ch_in: Channel[Any], ch_out: Channel[Any]) -> None: ...

    ctx = Context()
    for definition in (a, b):
        node = definition(ctx, ctx.create_channel(), ctx.create_channel())
        assert isinstance(node, ActorNode)


def test_define_actor_rejects_plain_functions() -> None:
    with pytest.raises(TypeError, match="`.*sync_fn` must be an `async def` function"):

        @define_actor  # type: ignore[arg-type]  # on purpose
        def sync_fn(ctx: Context, ch_out: Channel[Any]) -> None: ...


def test_define_actor_requires_a_context_parameter() -> None:
    with pytest.raises(TypeError, match="Context as its first positional parameter"):

        @define_actor  # type: ignore[arg-type]  # on purpose
        async def no_ctx() -> None: ...

    with pytest.raises(TypeError, match="Context as its first positional parameter"):

        @define_actor  # type: ignore[arg-type]  # on purpose
        async def kw_only(*, ctx: Context) -> None: ...


def test_define_actor_checks_declared_parameters() -> None:
    with pytest.raises(TypeError, match=r"no parameter\(s\) \['nope'\]"):

        @define_actor(inputs=["nope"])
        async def f(ctx: Context, left: Channel[Any]) -> None: ...

    with pytest.raises(TypeError, match="both inputs and outputs"):

        @define_actor(inputs=["x"], outputs=["x"])
        async def g(ctx: Context, x: Channel[Any]) -> None: ...


def test_calling_requires_a_context_first() -> None:
    @define_actor
    async def f(ctx: Context, ch_out: Channel[Any]) -> None: ...

    with pytest.raises(
        TypeError, match="actor `f`: the first argument must be a streamnet.Context"
    ):
        f(Channel(), Channel())  # type: ignore[arg-type]


def test_calling_with_wrong_arguments_names_the_actor() -> None:
    @define_actor
    async def f(ctx: Context, ch_out: Channel[Any]) -> None: ...

    with pytest.raises(TypeError, match="actor `f`: .*argument"):
        f(Context())  # type: ignore[call-arg]


def test_endpoints_found_in_arguments_lists_and_dicts() -> None:
    @define_actor(inputs=["left", "right"])
    async def join(
        ctx: Context,
        left: Channel[Any],
        right: Channel[Any],
        outputs: Mapping[str, Channel[Any]],
        options: dict[str, int] | None,
    ) -> None: ...

    ctx = Context()
    left, right = ctx.create_channel(), ctx.create_channel()
    outs = {"a": ctx.create_channel(), "b": ctx.create_channel()}
    node = join(ctx, left, right, outs, options={"k": 1})
    assert node.inputs == (left, right)
    assert node.outputs == (outs["a"], outs["b"])
    assert node.name == "join#0"
    assert join(ctx, left, right, outs, None).name == "join#1"
    assert node.named("my join").name == "my join"


def test_annotations_give_endpoint_payload_types() -> None:
    @define_actor
    async def f(ctx: Context, ch_in: Channel[TableChunk], chs_out: list[Channel[int]]) -> None: ...

    ctx = Context()
    node = f(ctx, ctx.create_channel(), [ctx.create_channel()])
    assert [e.payload_type for e in node.endpoints] == [TableChunk, int]


def test_a_parameter_annotated_for_type_checkers_only_keeps_the_channels_checked() -> None:
    """A name imported under ``if TYPE_CHECKING:`` (``Unresolved`` here) does not resolve
    at run time: that parameter goes unchecked, the channels keep their payload types."""

    @define_actor
    async def f(
        ctx: Context,
        ch_in: Channel[TableChunk],
        schema: Unresolved,  # type: ignore[name-defined]  # noqa: F821
        ch_out: Channel[int],
    ) -> None: ...

    ctx = Context()
    node = f(ctx, ctx.create_channel(), None, ctx.create_channel())
    assert [e.payload_type for e in node.endpoints] == [TableChunk, int]


def test_decorated_actor_keeps_name_and_doc() -> None:
    @define_actor
    async def documented(ctx: Context, ch_out: Channel[Any]) -> None:
        """Docs."""

    assert documented.__doc__ == "Docs."
    assert documented.__name__ == "documented"


# ---------------------------------------------------------------- checks when a node is made
def at_least(name: str, *, ctx: Context, n: int, step: int, **_: object) -> None:
    if n < step:
        raise ValueError(f"actor `{name}`: `n` must be at least `step` ({step}), got {n}")


def test_a_check_refuses_bad_arguments_before_the_node_is_made() -> None:
    seen: list[dict[str, object]] = []

    def record(name: str, **arguments: object) -> None:
        seen.append({"name": name, **arguments})
        at_least(name, **arguments)  # type: ignore[arg-type]

    @define_actor(collective=True, check=record)
    async def counts(ctx: Context, ch_out: Channel[Any], n: int, *, step: int = 2) -> None:
        pass

    ctx = Context()
    ch = ctx.create_channel()
    with pytest.raises(ValueError, match=r"`counts#0`: `n` must be at least `step` \(2\), got 1"):
        counts(ctx, ch, 1)
    node = counts(ctx, ch, 4)  # the refused call took no name and no operation id
    assert (node.name, node.op_id) == ("counts#0", 0)
    assert seen[-1] == {"name": "counts#0", "ctx": ctx, "ch_out": ch, "n": 4, "step": 2}


def test_a_checked_actor_keeps_every_other_option() -> None:
    from streamnet import RestartPolicy

    @define_actor(check=at_least, stops_early=True, restart=RestartPolicy(), name="stepper")
    async def counts(ctx: Context, ch_out: Channel[Any], n: int, step: int = 1) -> None:
        pass

    ctx = Context()
    node = counts(ctx, ctx.create_channel(), 3)
    assert node.name == "stepper#0"
    assert node.definition.stops_early and node.definition.restart == RestartPolicy()
    with pytest.raises(ValueError, match="actor `stepper#1`"):
        counts(ctx, ctx.create_channel(), 0)


def test_a_check_must_be_callable() -> None:
    async def source(ctx: Context, ch_out: Channel[Any]) -> None:
        pass

    with pytest.raises(TypeError, match="define_actor: `check` must be callable, got 3"):
        define_actor(check=3)(source)  # type: ignore[call-overload]


@pytest.mark.parametrize("option", ["columns", "emits", "predicates", "matches", "rows"])
def test_a_declaration_must_be_callable(option: str) -> None:
    async def source(ctx: Context, ch_out: Channel[Any]) -> None:
        pass

    with pytest.raises(TypeError, match=f"define_actor: `{option}` must be callable, got 3"):
        define_actor(**{option: 3})(source)  # type: ignore[call-overload]


def test_a_filters_answers_to_the_passes_follow_the_predicates_it_is_told_hold() -> None:
    """A node keeps what it answered a Network's passes (`ActorNode.answer`) only while
    its step stays as it is: once told that a conjunct holds on its input, its step, its
    stated predicates and what it passes to its input leave that conjunct out."""
    import polars as pl

    from actors import filter
    from streamnet.network._predicates import _stated
    from streamnet.plans import Filter
    from streamnet.plans._predicates import Predicate

    ctx = Context()
    a, b = ctx.create_channel(), ctx.create_channel()
    first, second = pl.col("x") > 1, pl.col("y") < 2
    node = filter(ctx, a, b, first & second)
    columns: dict[Channel[Any], frozenset[str] | None] = {a: frozenset({"x", "y"})}
    both = {Predicate(first), Predicate(second)}
    assert _stated(node) == both
    assert node.passed_predicates(frozenset(), columns)[a] == both
    assert node.output_columns(columns) == frozenset({"x", "y"})
    node.imply(frozenset({Predicate(first)}))
    step = node.step()
    assert isinstance(step, Filter) and str(step.predicate) == str(second)
    assert _stated(node) == {Predicate(second)}
    assert node.passed_predicates(frozenset(), columns)[a] == {Predicate(second)}
    node.imply(frozenset(both))  # every conjunct holds: no step, nothing of its own to pass
    assert node.step() is None
    assert _stated(node) == frozenset()
    assert node.passed_predicates(frozenset(), columns)[a] == frozenset()
    node.imply(frozenset())  # told nothing holds after all: the whole predicate again
    assert _stated(node) == both
    ctx.close()
