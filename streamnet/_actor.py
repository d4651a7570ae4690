"""Actors: a definition (`ActorDefinition`), the nodes it makes (`ActorNode`), and the
node running the current task (`current_actor`).

A definition makes nodes and each node refers to its definition, so both stay in
this one module; the decorator that makes definitions, with its checks, is
``_define_actor.py``. The modules the Context builds on ask for the running actor
(`current_actor_name`) inside their functions: this module imports the Context.
It is above 400 lines for that reason: a node's binding, state, fusion, link and
what the network's optimiser asks of it (columns, predicates, key filters) all read
its definition.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
import types
import typing
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, cast

from typing_extensions import TypeVar

from channels import Channel
from streamnet._context import Context
from streamnet._deprecation import keyword_only_fields
from streamnet._errors import ActorResultError
from streamnet._typing import ActorState, Role

if TYPE_CHECKING:
    from streamnet.plans import FusionLink, KeySet, PartialAggregate, Predicate, Step

__all__ = [
    "RestartPolicy",
    "ActorDefinition",
    "ActorNode",
    "Endpoint",
    "current_actor",
    "current_actor_name",
    "set_current_actor",
]

P = ParamSpec("P")
R = TypeVar("R", default=Any)
"""What an actor's function returns, and so its node's ``result()`` (Any when unsaid)."""
_S = TypeVar("_S", bound="Step")
_A = TypeVar("_A")

_INPUT_TOKENS = frozenset({"in", "ins", "input", "inputs", "inbox"})
_OUTPUT_TOKENS = frozenset({"out", "outs", "output", "outputs", "outbox"})


_current_node: ContextVar[ActorNode[Any] | None] = ContextVar("streamnet_actor", default=None)


def current_actor() -> ActorNode[Any] | None:
    """The actor node running the current task (or kernel thread), or None outside a Network."""
    return _current_node.get()


def set_current_actor(node: ActorNode) -> None:
    """Make ``node`` the actor of the current task (and the tasks and kernels it starts);
    a Network's driver does this first in each actor's task."""
    _current_node.set(node)


def current_actor_name() -> str | None:
    """The name of the actor running the current task, or None outside a Network."""
    node = _current_node.get()
    return node.name if node is not None else None


def _as_columns(columns: object, declaration: str = "columns") -> frozenset[str] | None:
    """A declaration's answer as column names (None: every column, or not known)."""
    if columns is None:
        return None
    message = f"define_actor({declaration}=...) must give column names or None, got {columns!r}"
    if isinstance(columns, str) or not isinstance(columns, Iterable):
        raise TypeError(message)
    names = frozenset(columns)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(message)
    return names


def role_from_name(name: str) -> Role | None:
    """The role a parameter name announces: ``ch_in`` is an input, ``chs_out`` an output.

    The name is split on ``_``; a part ``in``/``input(s)`` marks an input,
    ``out``/``output(s)`` an output. Anything else (or both) is undecided.
    """
    tokens = set(name.lower().split("_"))
    is_in = bool(tokens & _INPUT_TOKENS)
    is_out = bool(tokens & _OUTPUT_TOKENS)
    if is_in == is_out:
        return None
    return "input" if is_in else "output"


@keyword_only_fields
@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Restart a streaming actor that raises, at most ``max_restarts`` times in ``max_seconds``
    (both keyword-only).

    The restarted actor is called afresh (new state) on the same channels. The
    message it was processing goes back to the head of its input channel, and
    any output whose sequence number it already sent is dropped: a stage that
    handles each message on its own and keeps sequence numbers (a map, a
    filter) then loses and duplicates nothing downstream. Beyond the limit, the
    failure ends the network as any other.
    """

    _: KW_ONLY
    max_restarts: int = 3
    max_seconds: float = 60.0

    def __post_init__(self) -> None:
        if type(self.max_restarts) is not int or self.max_restarts < 1 or self.max_seconds <= 0:
            raise ValueError(
                "RestartPolicy: `max_restarts` must be an int >= 1 and `max_seconds` > 0, "
                f"got {self.max_restarts!r} and {self.max_seconds!r}"
            )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One channel as one actor parameter sees it."""

    parameter: str
    channel: Channel[Any]
    role: Role | None
    payload_type: Any
    """The payload type the parameter's annotation declares, or None."""


class ActorNode(Generic[R]):
    """An actor ready to run in a Network: its function, its Context and its arguments.

    Made by calling a function decorated with :func:`define_actor`; not running yet.
    ``R`` is what the function returns: ``result()`` gives it once the node is done.
    """

    __slots__ = (
        "_args",
        "_bound",
        "_committed",
        "_declared",
        "_definition",
        "_fused",
        "_implied",
        "_inputs_meet",
        "_io",
        "_key_sets",
        "_kwargs",
        "_link",
        "_name",
        "_network",
        "_pruned",
        "_pushed",
        "_result",
        "_state",
        "_steps",
        "ctx",
        "endpoints",
        "op_id",
    )

    def __init__(
        self,
        definition: ActorDefinition[..., R],
        ctx: Context,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        endpoints: tuple[Endpoint, ...],
        bound: dict[str, Any] | None = None,
    ) -> None:
        self._definition = definition
        self.ctx = ctx
        self._args = args
        self._kwargs = kwargs
        self._bound = bound
        """Every parameter's argument, defaults included (None: not bound yet)."""
        self.endpoints = endpoints
        self._io: tuple[tuple[Endpoint, ...], tuple[Channel[Any], ...], tuple[Channel[Any], ...]] | None = None
        self._name = ctx.actor_name(definition.name)
        self.op_id: int | None = ctx.next_op_id() if definition.collective else None
        """The collective operation id (same on every rank), or None for a local actor."""
        self._network: object | None = None
        self._state: ActorState = "created"
        self._result: Any = None
        self._fused: tuple[Step, ...] = ()
        self._link: FusionLink | None = None
        self._pruned: frozenset[str] | None = None
        self._pushed: frozenset[Predicate] = frozenset()
        self._committed: frozenset[Predicate] = frozenset()
        self._implied: frozenset[Predicate] = frozenset()
        self._key_sets: dict[str, tuple[KeySet, ...]] = {}
        self._inputs_meet = False
        # steps made from the arguments, by maker: (the name they carry, the step)
        self._steps: dict[Callable[..., Any], tuple[str, Any]] = {}
        # what the node answered a Network's passes (its outputs' columns, the predicates
        # it passes, its rows), by what they asked: the passes ask again and again (a
        # source lists its files; a step's predicates are read from Polars' JSON form)
        self._declared: dict[Hashable, Any] = {}

    @property
    def contributes_step(self) -> bool:
        """Whether the node's definition declares its plan step (``define_actor(plan=...)``)."""
        return self._definition.plan is not None

    def step(self) -> Step | None:
        """The node's own plan step, its ``actor`` this node's name; None when the
        definition declares no plan, or the step is empty for these arguments."""
        step = self._made(self._definition.plan)
        if self._implied and step is not None:
            from streamnet.plans import Filter  # plans import the runtime lazily
            from streamnet.plans._predicates import Predicate, conjuncts

            if isinstance(step, Filter):

                def rest(step: Filter = step) -> Step | None:
                    implied = self._implied
                    kept = [c for c in conjuncts(step.predicate) if Predicate(c) not in implied]
                    if not kept:
                        return None
                    return dataclasses.replace(step, predicate=functools.reduce(operator.and_, kept))

                return self.answer("step", rest)
        return step

    @property
    def implied_predicates(self) -> frozenset[Predicate]:
        """For a filter, the conjuncts of its predicate that hold on every row of its input
        already (a Network found a source that applies them, and nothing between that
        changes their columns): its step leaves them out (see `imply`)."""
        return self._implied

    def imply(self, predicates: frozenset[Predicate]) -> None:
        """Know ``predicates`` to hold on every row of the input: a filter's step leaves
        out those of its conjuncts (a Network's predicate pushdown does this)."""
        self._implied = frozenset(predicates)

    def aggregate_step(self) -> PartialAggregate | None:
        """The partial step of a group-by that can take partials (``define_actor(aggregate=...)``),
        its ``actor`` this node's name; None when it cannot, for these arguments."""
        return self._made(self._definition.aggregate)

    def _made(self, make: Callable[..., _S | None] | None) -> _S | None:
        """The step ``make`` makes of the node's arguments, made once per name (a
        Network's passes ask many times; steps are immutable, the arguments fixed)."""
        if make is None:
            return None
        made = self._steps.get(make)
        if made is not None and made[0] == self._name:
            return made[1]  # type: ignore[no-any-return]
        step = make(**self._arguments())
        if step is not None:
            step = dataclasses.replace(step, actor=self._name)
        self._steps[make] = (self._name, step)
        return step

    def needed_columns(
        self, wanted: frozenset[str] | None
    ) -> dict[Channel[Any], frozenset[str] | None]:
        """The columns the node needs of each input channel to give the columns ``wanted``
        of its outputs (None: every column), for a Network's column pruning.

        From its declaration (``define_actor(columns=...)``), else from its plan
        step, else every column of every input (an actor whose code is not known).
        """
        inputs = [e for e in self.endpoints if e.role == "input"]
        declared = self._definition.columns
        if declared is not None:
            needs = declared(wanted, **self._arguments())
            if isinstance(needs, Mapping):
                return {e.channel: _as_columns(needs.get(e.parameter)) for e in inputs}
            return {e.channel: _as_columns(needs) for e in inputs}
        if self.contributes_step:
            from streamnet.plans._columns import step_needs  # plans import the runtime lazily

            step = self.step()
            needs = wanted if step is None else step_needs(step, wanted)
            return {e.channel: needs for e in inputs}
        return {e.channel: None for e in inputs}

    def _arguments(self) -> dict[str, Any]:
        """Every parameter's argument, defaults included (bound once: a Network's passes
        ask many times)."""
        if self._bound is None:
            bound = self._definition.signature.bind(self.ctx, *self._args, **self._kwargs)
            bound.apply_defaults()
            self._bound = dict(bound.arguments)
        return dict(self._bound)

    def _by_parameter(
        self, columns: Mapping[Channel[Any], frozenset[str] | None]
    ) -> dict[str, frozenset[str] | None]:
        """Input columns per input parameter: a parameter of several channels gets their
        columns when they agree, None otherwise."""
        out: dict[str, frozenset[str] | None] = {}
        for e in self.endpoints:
            if e.role != "input":
                continue
            names = columns.get(e.channel)
            out[e.parameter] = names if out.get(e.parameter, names) == names else None
        return out

    def output_columns(
        self, columns: Mapping[Channel[Any], frozenset[str] | None]
    ) -> frozenset[str] | None:
        """The columns of the node's outputs, given those of its inputs (None: not known),
        for a Network's predicate pushdown.

        From its declaration (``define_actor(emits=...)``), else from its plan step;
        not known for an actor whose code is not known.
        """
        declared = self._definition.emits
        if declared is not None:
            given = self._by_parameter(columns)
            return self.answer(
                ("emits", *sorted(given.items())),
                lambda: _as_columns(declared(given, **self._arguments()), "emits"),
            )
        if self.contributes_step:
            from streamnet.plans._columns import step_outputs  # plans import the runtime lazily

            inputs = list(columns.values())
            names = inputs[0] if len(inputs) == 1 else None

            def outputs() -> frozenset[str] | None:
                step = self.step()
                return names if step is None else step_outputs(step, names)

            return self.answer(("outputs", names), outputs)
        return None

    def passed_predicates(
        self,
        wanted: frozenset[Predicate],
        columns: Mapping[Channel[Any], frozenset[str] | None],
    ) -> dict[Channel[Any], frozenset[Predicate]]:
        """The predicates that may also be applied to each input channel, given those that
        every consumer of the node's outputs applies anyway (``wanted``) and the columns of
        its inputs (None: not known), for a Network's predicate pushdown.

        From its declaration (``define_actor(predicates=...)``), else from its plan
        step; none for an actor whose code is not known.
        """
        found = self.answer(("passes", wanted, *columns.items()), lambda: self._passes(wanted, columns))
        return dict(found)

    def answer(self, question: Hashable, make: Callable[[], _A]) -> _A:
        """What ``make()`` gives, made once per ``question`` while the node's step stays
        as it is (its name and implied predicates): a Network's passes ask the same of a
        node again and again, and each answer may read its step through Polars."""
        key = (question, self._name, self._implied)
        if key not in self._declared:
            self._declared[key] = make()
        found: _A = self._declared[key]
        return found

    def _passes(
        self,
        wanted: frozenset[Predicate],
        columns: Mapping[Channel[Any], frozenset[str] | None],
    ) -> dict[Channel[Any], frozenset[Predicate]]:
        inputs = [e for e in self.endpoints if e.role == "input"]
        declared = self._definition.predicates
        if declared is not None:
            passed = declared(wanted, self._by_parameter(columns), **self._arguments())
            if isinstance(passed, Mapping):
                return {e.channel: frozenset(passed.get(e.parameter, ())) for e in inputs}
            return {e.channel: frozenset(cast("Iterable[Predicate]", passed)) for e in inputs}
        if self.contributes_step:
            from streamnet.plans._predicates import step_passes

            step = self.step()
            through = wanted if step is None else step_passes(step, wanted)
            return {e.channel: through for e in inputs}
        return {e.channel: frozenset() for e in inputs}

    def key_matches(self) -> list[tuple[str, tuple[str, ...], str, tuple[str, ...]]]:
        """What the node's declaration (``define_actor(matches=...)``) says of its inputs:
        ``(build, build_keys, probe, probe_keys)`` for each input parameter ``probe``
        whose rows it drops unless their ``probe_keys`` are among the ``build_keys`` of
        input ``build``; none without one."""
        declared = self._definition.matches
        if declared is None:
            return []
        return [
            (str(b), tuple(bk), str(p), tuple(pk))
            for b, bk, p, pk in declared(**self._arguments())  # type: ignore[attr-defined]
        ]

    def estimated_rows(self) -> int | None:
        """About how many rows a source gives (``define_actor(rows=...)``); None: not known."""
        declared = self._definition.rows
        if declared is None:
            return None
        rows = self.answer("rows", lambda: declared(**self._arguments()))
        return rows if isinstance(rows, int) else None

    def filters_rows(self) -> bool:
        """Whether the node drops rows by a predicate of its own: its step is a filter, or
        it is a source that applies predicates (``define_actor(pushdown=True)``) given
        one as ``filters=``."""
        from streamnet.plans import Filter  # plans import the runtime lazily

        if isinstance(self.step(), Filter):
            return True
        if not self._definition.pushdown:
            return False
        return self._arguments().get("filters") is not None

    @property
    def key_sets(self) -> Mapping[str, tuple[KeySet, ...]]:
        """Per input parameter, the key sets the node publishes once it has read that input
        whole (a Network's key filters give them; see `KeySet`)."""
        return self._key_sets

    def publish_keys_from(self, parameter: str, key_sets: Sequence[KeySet]) -> None:
        """Publish ``key_sets`` once the input ``parameter`` is read (a Network does this)."""
        self._key_sets[parameter] = (*self._key_sets.get(parameter, ()), *key_sets)

    @property
    def pushed_predicates(self) -> frozenset[Predicate]:
        """For a source that applies predicates (``define_actor(pushdown=True)``), those the
        actors downstream apply anyway, as a Network's predicate pushdown found them: rows
        failing one need not be read."""
        return self._pushed

    def push(self, predicates: frozenset[Predicate]) -> None:
        """Apply ``predicates`` too (a Network's predicate pushdown does this for a source)."""
        self._pushed = frozenset(predicates)

    @property
    def committed_predicates(self) -> frozenset[Predicate]:
        """Of the `pushed_predicates`, those the source must apply to every row: a filter
        downstream leaves them out (`imply`), so one it cannot apply is an error, not
        a predicate left to that filter."""
        return self._committed

    def commit(self, predicates: frozenset[Predicate]) -> None:
        """Apply ``predicates`` (among the pushed ones) without fail (a Network does this
        for a source when it leaves a filter's conjuncts out)."""
        self._committed = frozenset(predicates)

    @property
    def pruned_columns(self) -> frozenset[str] | None:
        """For a source that prunes (``define_actor(prunes=True)``), the columns its
        consumers need, as a Network's column pruning found them; None: every column."""
        return self._pruned

    def prune_to(self, columns: frozenset[str] | None) -> None:
        """Read only ``columns`` (a Network's column pruning does this for a pruning source)."""
        self._pruned = columns

    @property
    def link(self) -> FusionLink | None:
        """The link between a fused chain's head and the group-by it feeds partials,
        on both of them (a Network's fusion sets it); None otherwise."""
        return self._link

    @property
    def fused_steps(self) -> tuple[Step, ...]:
        """The steps of the actors fused after this one, which it runs too (a Network's
        fusion sets them; empty otherwise)."""
        return self._fused

    def fuse(self, steps: Sequence[Step], link: FusionLink | None = None) -> None:
        """Run ``steps`` after the node's own step, feeding the group-by of ``link`` if
        any (a Network does this when it fuses)."""
        self._fused = tuple(steps)
        self._link = link

    def link_to(self, link: FusionLink) -> None:
        """Receive the partials of ``link``'s head (a Network does this when it fuses)."""
        self._link = link

    @property
    def name(self) -> str:
        """Unique within its Context: the definition's name and an index (``accumulator#0``)."""
        return self._name

    @property
    def definition(self) -> ActorDefinition[..., R]:
        """The decorated function this node was made from."""
        return self._definition

    def named(self, name: str) -> Self:
        """Give the node another name (for statistics and errors); returns the node."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"actor name must be a non-empty str, got {name!r}")
        self._name = name
        return self

    @property
    def inputs(self) -> tuple[Channel[Any], ...]:
        """Channels this actor consumes, each once."""
        return self._channels()[1]

    @property
    def outputs(self) -> tuple[Channel[Any], ...]:
        """Channels this actor produces into, each once."""
        return self._channels()[2]

    def _channels(
        self,
    ) -> tuple[tuple[Endpoint, ...], tuple[Channel[Any], ...], tuple[Channel[Any], ...]]:
        """The endpoints, and the channels in and out of them (found once: a Network's
        passes ask many times)."""
        found = self._io
        if found is None or found[0] is not self.endpoints:
            endpoints = self.endpoints
            found = self._io = (
                endpoints,
                _unique(e.channel for e in endpoints if e.role == "input"),
                _unique(e.channel for e in endpoints if e.role == "output"),
            )
        return found

    def call(self, endpoints: Mapping[Channel[Any], Any] | None = None) -> Coroutine[Any, Any, R]:
        """Start the actor's coroutine (the Network does this).

        ``endpoints`` maps some of its channels to what the function gets in their
        place, wherever they are among its arguments (a runtime's wrappers).
        """
        args, kwargs = self._args, self._kwargs
        if endpoints:
            args = tuple(_replace_channels(arg, endpoints) for arg in args)
            kwargs = {key: _replace_channels(arg, endpoints) for key, arg in kwargs.items()}
        coro = self._definition.fn(self.ctx, *args, **kwargs)
        return cast("Coroutine[Any, Any, R]", coro)  # an `async def`, checked when declared

    @property
    def state(self) -> ActorState:
        """``"created"``, ``"running"``, ``"done"``, ``"failed"`` or ``"cancelled"``."""
        return self._state

    def set_state(self, state: ActorState, result: Any = None) -> None:
        """Record where the node's run stands, with its ``result`` when ``state`` is
        ``"done"`` (the Network's driver does this)."""
        self._state = state
        if state == "done":
            self._result = result

    @property
    def inputs_meet_upstream(self) -> bool:
        """Whether two of the node's inputs come from one node upstream (a fanout, say; a
        Network finds this). An actor that reads its inputs one after another must then
        read the later ones ahead: the node upstream waits for the input not read yet
        to take its messages before it sends more into the one being read."""
        return self._inputs_meet

    def mark_inputs_meet_upstream(self) -> None:
        """Note that two inputs come from one upstream node (a Network does this)."""
        self._inputs_meet = True

    @property
    def network(self) -> object | None:
        """The Network this node was built into, or None (a node belongs to one network)."""
        return self._network

    def attach(self, network: object) -> None:
        """Give the node to ``network`` (a Network does this when it is built)."""
        self._network = network

    def result(self) -> R:
        """What the actor's function returned (a sink's table, a scan's report...).

        Raises
        ------
        ActorResultError
            The actor has not finished, or did not finish successfully.
        """
        if self._state != "done":
            raise ActorResultError(
                f"actor `{self._name}` is {self._state}; its result exists once it is done"
            )
        return cast("R", self._result)

    def __repr__(self) -> str:
        ins = ", ".join(c.name for c in self.inputs)
        outs = ", ".join(c.name for c in self.outputs)
        return f"<ActorNode {self._name} in=[{ins}] out=[{outs}]>"


def _unique(channels: Iterable[Channel[Any]]) -> tuple[Channel[Any], ...]:
    seen: dict[int, Channel[Any]] = {}
    for channel in channels:
        seen.setdefault(id(channel), channel)
    return tuple(seen.values())


class ActorDefinition(Generic[P, R]):
    """A decorated actor function; calling it with a Context and arguments gives an
    `ActorNode`. ``P`` are the function's parameters after the Context, ``R`` what it returns.
    """

    __name__: str
    """The function's name, as on the function (``__doc__`` and ``__module__`` too)."""

    def __init__(
        self,
        fn: Callable[Concatenate[Context, P], Awaitable[R]],
        *,
        name: str | None,
        inputs: Sequence[str],
        outputs: Sequence[str],
        collective: bool = False,
        restart: RestartPolicy | None = None,
        stops_early: bool = False,
        check: Callable[..., object] | None = None,
        plan: Callable[..., Step | None] | None = None,
        head: bool = False,
        aggregate: Callable[..., PartialAggregate | None] | None = None,
        columns: Callable[..., object] | None = None,
        prunes: bool = False,
        emits: Callable[..., object] | None = None,
        predicates: Callable[..., object] | None = None,
        pushdown: bool = False,
        matches: Callable[..., object] | None = None,
        rows: Callable[..., object] | None = None,
    ) -> None:
        self.fn = fn
        self.collective = collective
        self.restart = restart
        self.stops_early = stops_early
        self.check = check
        """Called as ``check(name, **arguments)`` before each node is made, or None."""
        self.plan = plan
        """Called as ``plan(**arguments)``: the node's plan step (or None), or None."""
        self.head = head
        """A source that runs the steps of the actors fused after it (``define_actor(head=...)``)."""
        self.aggregate = aggregate
        """Called as ``aggregate(**arguments)``: the group-by's partial step (or None), or None."""
        self.columns = columns
        """Called as ``columns(wanted, **arguments)``: the input columns a node needs, or None."""
        self.prunes = prunes
        """A source that reads only the columns its consumers need (``define_actor(prunes=...)``)."""
        self.emits = emits
        """Called as ``emits(columns, **arguments)``: the columns of a node's outputs, or None."""
        self.predicates = predicates
        """Called as ``predicates(wanted, columns, **arguments)``: the predicates that move to
        a node's inputs, or None."""
        self.pushdown = pushdown
        """A source that applies the predicates pushed to it (``define_actor(pushdown=...)``)."""
        self.matches = matches
        """Called as ``matches(**arguments)``: which inputs' keys must match, or None."""
        self.rows = rows
        """Called as ``rows(**arguments)``: about how many rows a source gives, or None."""
        self.name: str = name or str(getattr(fn, "__name__", "actor"))
        self.signature = inspect.signature(fn)
        self._explicit: dict[str, Role] = {p: "input" for p in inputs}
        self._explicit.update({p: "output" for p in outputs})
        self._hints: dict[str, Any] | None = None
        functools.update_wrapper(self, fn)

    def __call__(self, ctx: Context, /, *args: P.args, **kwargs: P.kwargs) -> ActorNode[R]:
        if not isinstance(ctx, Context):
            raise TypeError(
                f"actor `{self.name}`: the first argument must be a streamnet.Context, "
                f"got {type(ctx).__name__}"
            )
        try:
            bound = self.signature.bind(ctx, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"actor `{self.name}`: {exc}") from None
        endpoints = self._endpoints(bound.arguments)
        bound.apply_defaults()
        if self.check is not None:
            self.check(ctx.actor_name(self.name, take=False), **bound.arguments)
        return ActorNode(self, ctx, args, kwargs, endpoints, dict(bound.arguments))

    def role_of(self, parameter: str) -> Role | None:
        """The role of a channel parameter: declared, or read from its name."""
        return self._explicit.get(parameter) or role_from_name(parameter)

    def _endpoints(self, arguments: Mapping[str, Any]) -> tuple[Endpoint, ...]:
        endpoints: list[Endpoint] = []
        params = list(arguments.items())[1:]  # skip the Context
        for parameter, value in params:
            channels = list(_channels_in(value))
            if not channels:
                continue
            role = self.role_of(parameter)
            payload_type = _payload_type_of(self._type_hints().get(parameter))
            endpoints.extend(Endpoint(parameter, ch, role, payload_type) for ch in channels)
        return tuple(endpoints)

    def _type_hints(self) -> dict[str, Any]:
        """The function's annotations, evaluated. One that does not resolve (a name
        imported only for type checkers, under ``if TYPE_CHECKING:``) leaves its own
        parameter unannotated, not the others: channels keep their payload types."""
        if self._hints is None:
            try:
                self._hints = typing.get_type_hints(self.fn)
            except Exception:
                self._hints = _hints_one_by_one(self.fn)
        return self._hints

    def __repr__(self) -> str:
        return f"<actor definition {self.name}{self.signature}>"


def _hints_one_by_one(fn: Callable[..., Any]) -> dict[str, Any]:
    """``typing.get_type_hints(fn)``, each annotation on its own: those that do not
    resolve are left out."""
    namespace = getattr(inspect.unwrap(fn), "__globals__", {})
    hints: dict[str, Any] = {}
    for name, annotation in inspect.get_annotations(fn).items():
        one = types.SimpleNamespace(__annotations__={name: annotation})
        try:
            hints.update(typing.get_type_hints(one, globalns=namespace))
        except Exception:  # unresolved forward references: no checks for this one
            continue
    return hints


def _replace_channels(value: Any, endpoints: Mapping[Channel[Any], Any]) -> Any:
    """``value`` with the channels of ``endpoints`` replaced, in the containers where
    `_channels_in` finds channels."""
    if isinstance(value, Channel):
        return endpoints.get(value, value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_replace_channels(item, endpoints) for item in value]
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
            return type(value)(*items)
        return type(value)(items)
    if isinstance(value, Mapping):
        return {key: _replace_channels(item, endpoints) for key, item in value.items()}
    return value


def _channels_in(value: Any) -> Iterable[Channel[Any]]:
    if isinstance(value, Channel):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _channels_in(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _channels_in(item)


def _payload_type_of(annotation: Any) -> Any:
    """``Channel[T]`` (or a container of them) gives T; anything else None."""
    if annotation is None:
        return None
    origin = typing.get_origin(annotation)
    if origin is Channel:
        args = typing.get_args(annotation)
        return args[0] if args else None
    if origin is not None:
        for arg in typing.get_args(annotation):
            found = _payload_type_of(arg)
            if found is not None:
                return found
    return None
