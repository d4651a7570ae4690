"""define_actor: turn an ``async def`` into a factory of actor nodes, checking it first."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, overload

from typing_extensions import TypeVar

from streamnet._actor import ActorDefinition, RestartPolicy
from streamnet._context import Context

if TYPE_CHECKING:
    from streamnet.plans import PartialAggregate, Step

__all__ = ["define_actor"]

P = ParamSpec("P")
R = TypeVar("R", default=Any)


@overload
def define_actor(
    fn: Callable[Concatenate[Context, P], Awaitable[R]], /
) -> ActorDefinition[P, R]: ...


@overload
def define_actor(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
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
) -> Callable[[Callable[Concatenate[Context, P], Awaitable[R]]], ActorDefinition[P, R]]: ...


def define_actor(
    fn: Callable[Concatenate[Context, P], Awaitable[R]] | None = None,
    /,
    *,
    name: str | None = None,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
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
) -> Any:
    """Declare an actor: an ``async def`` whose first parameter is the Context.

    Usable with or without parentheses. Calling the decorated function with a
    Context and its arguments returns an :class:`ActorNode` (nothing runs
    yet). When the actor exits, normally or not, the runtime drains its output
    channels and releases its inputs, so a forgotten ``drain`` never deadlocks.

    Each channel parameter must be known as an input or an output. Names say it
    (``ch_in``, ``chs_in``, ``left_in``; ``ch_out``, ``outputs``); otherwise
    list the parameter in ``inputs=`` or ``outputs=``.

    Parameters
    ----------
    name
        Base name for the actor's nodes (default: the function's name).
    inputs, outputs
        Parameters that hold input / output channels whatever their names.
    collective
        The actor talks to its peers on other ranks. Each node then gets an
        operation id (``node.op_id``), assigned in the order nodes are made, so
        every rank that builds the same network gets the same ids; a Network
        checks at start that all ranks agree.
    restart
        A :class:`RestartPolicy`: restart the actor when it raises instead of
        failing the network (not for collectives).
    stops_early
        The actor may return before its inputs end (it takes what it needs
        and stops). Otherwise returning while an input it consumes (alone) still
        has data coming is an `UnreadInputError`, since the data would be lost
        silently; an actor that stops on purpose can also shut that input down
        itself (``await ch_in.shutdown(ctx)``), as ``actors.limit`` does. Either
        way, its producers then stop with it.
    check
        Checks a node's arguments when it is made, before the node exists (so
        a refused call takes no name and no operation id): called as
        ``check(name, **arguments)`` with the name the node would get and its
        arguments bound to the function's parameters, defaults applied (the
        Context included). What it raises, the call raises, so a bad argument
        fails while the network is built, naming the actor.
    plan
        Declares the actor's per-chunk work as a plan step (`Filter`, `Select`,
        `WithColumns`, `Rename`, `Cast`): called as ``plan(**arguments)`` with
        the node's arguments bound as for ``check``, it returns the node's step
        (its ``actor`` is filled in with the node's name) or None for no work.
        The actor's body then calls ``await run_plan(ctx, ch_in, ch_out)``, which
        runs the node's step and the steps of the actors a Network fused after
        it (see `Network`'s ``fuse``).
    head
        The actor, a source without a plan step, can head a fused chain: it runs
        the steps of the actors a Network fuses after it (`ActorNode.fused_steps`)
        within its own per-chunk work (``read_parquet`` runs them in its scan).
    aggregate
        The actor is a group-by that can take partials instead of rows: called as
        ``plan`` is, it returns its `PartialAggregate` step (None when its
        aggregations need the rows). A Network may then end a fused chain
        feeding it with that step; the actor still runs, and its node's
        `ActorNode.link` (a `FusionLink`) says that its input carries partials.
    columns
        Declares which input columns the actor reads, for a Network's column
        pruning: called as ``columns(wanted, **arguments)`` with the columns
        wanted of its outputs (a frozenset, or None for every column) and its
        arguments bound as for ``check``, it returns the columns it needs of
        every input (names, or None for every column), or a mapping from input
        parameter name to those. Without it, an actor that has no ``plan`` needs
        every column of its inputs (its code is not known); one with a ``plan``
        needs what its step reads.
    prunes
        The actor, a source, reads only the columns that the actors downstream
        need (`ActorNode.pruned_columns`, set by a Network; ``read_parquet``
        decodes no other column).
    emits
        Declares the columns of the actor's outputs, for a Network's predicate
        pushdown (which must know which input of a join a column comes from):
        called as ``emits(columns, **arguments)`` with the columns of each input
        parameter (a mapping from parameter name to a frozenset, or None when not
        known), it returns the output's column names, or None when not known.
        Without it, an actor with a ``plan`` gives what its step gives; any other
        actor's columns are not known.
    predicates
        Declares which row predicates may move from the actor's outputs to its
        inputs, for a Network's predicate pushdown: called as
        ``predicates(wanted, columns, **arguments)`` with the `Predicate` s that
        every consumer of its outputs applies anyway (a frozenset) and its inputs'
        columns (as for ``emits``), it returns those that may be applied to every
        input as well, or a mapping from input parameter name to those. Moving
        one must never change what the actor gives, and one that holds on every
        input row must hold on every output row (the Network then leaves a
        filter out where a source applies its predicate upstream): a
        row-preserving actor (``shuffle``, ``sort``) lets all through, a join
        those over one side's columns where that side's rows are kept as they
        are, a group-by those over its keys; an actor that makes rows of its own
        (a total row, rows filled with nulls) lets through none over their columns.
        Without it, an actor with a ``plan`` lets through what its step does not
        redefine (a ``filter`` adds its own predicate); any other actor none (a
        barrier). Both declarations take their first two arguments by position.
    pushdown
        The actor, a source, also applies the predicates a Network pushes to it
        (`ActorNode.pushed_predicates`), so rows that fail one need not be read
        (``read_parquet`` adds them to its scan's predicate, row-group statistics
        included). Its consumers apply them too, except the `committed_predicates
        <ActorNode.committed_predicates>`: a filter leaves those out, so the source
        must apply them to every row, or raise.
    matches
        Declares inputs whose rows the actor drops unless their keys appear in
        another input (a join), for a Network's key filters: called as
        ``matches(**arguments)``, it returns ``(build, build_keys, probe,
        probe_keys)`` tuples of input parameter names and key columns. When the
        Network finds that input ``build`` is cut down (a filter reaches its
        sources) and reading it whole first cannot stall the network, it gives
        the node one `KeySet` per key (`ActorNode.key_sets`), which the actor
        publishes once it has read ``build`` whole; the sources that input
        ``probe``'s key filter reaches then wait for them and skip rows whose key
        is not among them.
    rows
        About how many rows the actor, a source, gives: called as
        ``rows(**arguments)``, an int or None (a Network prefers the smaller
        input of a join to give its keys to the other).

    Raises
    ------
    TypeError
        ``fn`` is not an ``async def`` function, takes no Context parameter,
        ``inputs``/``outputs`` name parameters it does not have, or ``check``,
        ``plan``, ``aggregate``, ``columns``, ``emits`` or ``predicates`` is not callable.

    Examples
    --------
    >>> from streamnet import Context, Message, TableChunk
    >>> @define_actor()
    ... async def accumulator(ctx, ch_in, ch_out):
    ...     while (msg := await ch_in.recv(ctx)) is not None:
    ...         table = TableChunk.from_message(msg)
    ...         await ch_out.send(ctx, Message(msg.sequence_number, table))
    ...     await ch_out.drain(ctx)
    >>> ctx = Context()
    >>> node = accumulator(ctx, ctx.create_channel(), ctx.create_channel())
    >>> node.name
    'accumulator#0'

    A ``check`` refuses bad arguments while the network is built:

    >>> def at_least_one(name, ctx, ch_out, n):
    ...     if n < 1:
    ...         raise ValueError(f"actor `{name}`: `n` must be >= 1, got {n!r}")
    >>> @define_actor(check=at_least_one)
    ... async def count(ctx, ch_out, n):
    ...     for i in range(n):
    ...         await ch_out.send(ctx, Message(i, i))
    >>> count(ctx, ctx.create_channel(), 0)
    Traceback (most recent call last):
    ...
    ValueError: actor `count#0`: `n` must be >= 1, got 0
    """

    def decorate(
        function: Callable[Concatenate[Context, P], Awaitable[R]],
    ) -> ActorDefinition[P, R]:
        label = getattr(function, "__qualname__", repr(function))
        if isinstance(function, ActorDefinition):
            raise TypeError(f"define_actor: `{label}` is already an actor definition")
        if not inspect.iscoroutinefunction(function):
            raise TypeError(
                f"define_actor: `{label}` must be an `async def` function, "
                f"got {type(function).__name__}"
            )
        params = list(inspect.signature(function).parameters.values())
        if not params or params[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise TypeError(
                f"define_actor: `{label}` must take the Context as its first positional "
                "parameter, e.g. `async def {0}(ctx, ch_in, ch_out)`".format(
                    getattr(function, "__name__", "actor")
                )
            )
        names = {p.name for p in params[1:]}
        unknown = [p for p in (*inputs, *outputs) if p not in names]
        if unknown:
            raise TypeError(
                f"define_actor: `{label}` has no parameter(s) {unknown} named in inputs/outputs; "
                f"its parameters are {sorted(names)}"
            )
        if restart is not None and collective:
            raise TypeError(f"define_actor: `{label}` is collective and cannot be restarted alone")
        if check is not None and not callable(check):
            raise TypeError(f"define_actor: `check` must be callable, got {check!r}")
        if plan is not None and not callable(plan):
            raise TypeError(f"define_actor: `plan` must be callable, got {plan!r}")
        if aggregate is not None and not callable(aggregate):
            raise TypeError(f"define_actor: `aggregate` must be callable, got {aggregate!r}")
        declarations = {
            "columns": columns, "emits": emits, "predicates": predicates, "matches": matches,
            "rows": rows,
        }  # fmt: skip
        for option, value in declarations.items():
            if value is not None and not callable(value):
                raise TypeError(f"define_actor: `{option}` must be callable, got {value!r}")
        both = sorted(set(inputs) & set(outputs))
        if both:
            raise TypeError(f"define_actor: `{label}` lists {both} as both inputs and outputs")
        return ActorDefinition(
            function, name=name, inputs=inputs, outputs=outputs, collective=collective,
            restart=restart, stops_early=bool(stops_early), check=check, plan=plan, head=bool(head),
            aggregate=aggregate, columns=columns, prunes=bool(prunes), emits=emits,
            predicates=predicates, pushdown=bool(pushdown), matches=matches, rows=rows,
        )  # fmt: skip

    if fn is not None:
        return decorate(fn)
    return decorate
