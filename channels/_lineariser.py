"""Merge several ordered streams into one stream in sequence-number order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from channels._channel import Channel
from channels._errors import SequenceError
from channels._message import Message

__all__ = ["linearise"]

T = TypeVar("T")


async def linearise(ctx: object, inputs: Sequence[Channel[T]], output: Channel[T]) -> None:
    """Forward the messages of ``inputs`` to ``output`` in increasing sequence number.

    Each input must deliver its own messages in increasing sequence number (the
    usual case: one producer per input). The lineariser then holds at most one
    message per input, so buffering stays bounded however the inputs interleave.
    ``output`` is drained when every input has ended.

    Raises
    ------
    SequenceError
        An input went backwards, or two inputs carried the same sequence number;
        the message names both.

    Examples
    --------
    >>> import asyncio
    >>> from channels import Channel, Message
    >>> async def main():
    ...     a, b, out = Channel[str](capacity=4), Channel[str](capacity=4), Channel[str](capacity=8)
    ...     for seq in (0, 3):
    ...         await a.send(None, Message(seq, f"a{seq}"))
    ...     for seq in (1, 2):
    ...         await b.send(None, Message(seq, f"b{seq}"))
    ...     await a.drain(None)
    ...     await b.drain(None)
    ...     await linearise(None, [a, b], out)
    ...     return [m.payload async for m in out]
    >>> asyncio.run(main())
    ['a0', 'b1', 'b2', 'a3']
    """
    heads: list[Message[T] | None] = [None] * len(inputs)
    last: list[int | None] = [None] * len(inputs)
    open_inputs = list(range(len(inputs)))
    while True:
        for index in list(open_inputs):
            if heads[index] is None:
                msg = await inputs[index].recv(ctx)
                if msg is None:
                    open_inputs.remove(index)
                    continue
                previous = last[index]
                if previous is not None and msg.sequence_number <= previous:
                    raise SequenceError(
                        f"lineariser input {index} (`{inputs[index].name}`) sent sequence number "
                        f"{msg.sequence_number} after {previous}; each input must be in "
                        "increasing order"
                    )
                last[index] = msg.sequence_number
                heads[index] = msg
        if not open_inputs:
            break
        best = min(open_inputs, key=lambda i: heads[i].sequence_number)  # type: ignore[union-attr]
        head = heads[best]
        assert head is not None
        for other in open_inputs:
            other_head = heads[other]
            if (
                other != best
                and other_head is not None
                and (other_head.sequence_number == head.sequence_number)
            ):
                raise SequenceError(
                    f"lineariser: sequence number {head.sequence_number} arrived twice, on input "
                    f"{best} (`{inputs[best].name}`) and input {other} (`{inputs[other].name}`)"
                )
        heads[best] = None
        await output.send(ctx, head)
    await output.drain(ctx)
