"""cast: change column types explicitly, the one way a stream's schema changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamnet import (
    Cast,
    Channel,
    Context,
    Step,
    TableChunk,
    define_actor,
    polars_types,
    run_plan,
)

if TYPE_CHECKING:
    from streamnet import IntoSchema

__all__ = ["cast"]


def _cast_step(schema: IntoSchema, strict: bool, **_: Any) -> Step | None:
    types = polars_types(schema, where="cast")
    # A column cast from a type Polars does not hold exactly (date64...) becomes Polars'
    # nearest type (a lossless one) on the way, then the type asked for: see `Cast`.
    return Cast(types, strict=strict) if types else None


def _check_cast(actor: str, *, schema: IntoSchema, **_: Any) -> None:
    polars_types(schema, where="cast")


@define_actor(check=_check_cast, plan=_cast_step)
async def cast(
    ctx: Context,
    ch_in: Channel[TableChunk],
    ch_out: Channel[TableChunk],
    schema: IntoSchema,
    *,
    strict: bool = True,
) -> None:
    """Cast the columns named in ``schema`` to its types; other columns pass unchanged.

    Every chunk of a stream has one schema, and streamnet never casts
    implicitly: a chunk whose types differ from its stream's makes the actor
    that sends it raise `SchemaError`. When two streams of different types must
    meet (``concat``, ``merge``, the sides of a ``join``, the ranks of a
    collective), cast one of them to the types of the other before they meet,
    widening (``Int64`` to ``Float64``) rather than narrowing. Casts follow
    Polars' ``DataFrame.cast``.

    It is also how a column of an Arrow type Polars does not hold exactly
    (``date64``, ``timestamp[s]``, ``time32``, ``fixed_size_binary``, a UUID...)
    gets into the actors that compute with Polars, which refuse it rather than
    change its type silently: name it here with the type it should have
    (``{"day": pl.Date}`` for a ``date64`` column). Its values go through
    Polars' nearest type (``Datetime("ms")`` for ``date64``) on the way.

    Parameters
    ----------
    schema
        ``{"column": type}`` with Polars types (``pl.Float64``) or Arrow types
        (``pa.float64()``), or a Polars or Arrow schema. Every column it names
        must exist.
    strict
        A value that does not fit its new type raises (Polars' strict cast);
        with False it becomes null.

    Raises
    ------
    ColumnNotFoundError
        ``schema`` names a column the stream does not have.

    Examples
    --------
    An integer stream widened to meet a float stream:

    >>> from streamnet import Context, Network
    >>> from actors import cast, collect, concat, from_polars
    >>> ctx = Context()
    >>> ints, floats, wide, out = (ctx.create_channel() for _ in range(4))
    >>> sink = collect(ctx, out, into="polars")
    >>> Network(ctx, [
    ...     from_polars(ctx, ints, pl.DataFrame({"v": [1, 2]})),
    ...     from_polars(ctx, floats, pl.DataFrame({"v": [0.5]})),
    ...     cast(ctx, ints, wide, {"v": pl.Float64}),
    ...     concat(ctx, [wide, floats], out),
    ...     sink,
    ... ]).run()
    >>> sink.result()["v"].to_list()
    [1.0, 2.0, 0.5]
    """
    await run_plan(ctx, ch_in, ch_out)
