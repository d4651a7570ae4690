"""What a collective actor uses to talk to its peers: its operation's tags on the communicator.

`Collective` speaks as a `Communicator` does, arguments in the same order
(``send(dest, tag, payload)``, ``recv(source, tag)``, ``allgather(tag, value)``); its
tags are the operation's own, which it prefixes with the operation id.
"""

from __future__ import annotations

import pickle
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from channels.lowlevel import current_counter
from streamnet._actor import current_actor
from streamnet._context import Context
from streamnet._errors import NetworkMismatchError, SchemaError
from streamnet._schema import describe_schema, schema_differences
from streamnet._table_chunk import TableChunk
from streamnet.comm._communicator import Communicator, Tag
from streamnet.observe._statistics import ActorRecorder, CollectiveTraffic

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Collective", "CollectiveTraffic"]

_STEPS = "streamnet allgather steps"
"""The tag part of the one ordered stream that carries an operation's allgathers."""


_RETURNED = ("streamnet", "the actor returned")
"""The last step of an operation on a rank, taken once its actor returned (`Collective.end`)."""


def _described(wire: tuple[Hashable, ...]) -> str:
    """An allgather's tag as its actor gave it (without the operation id)."""
    if wire == _RETURNED:
        return "nothing (its actor had returned)"
    parts = wire[1:]
    return repr(parts[0] if len(parts) == 1 else parts)


def payload_bytes(payload: Any) -> int:
    """The bytes ``payload`` moves: a chunk's ``nbytes``, the items of a tuple, list or dict
    added up, None nothing, any other object its pickled size."""
    if payload is None:
        return 0
    if isinstance(payload, TableChunk):
        return payload.nbytes
    if isinstance(payload, tuple | list):
        return sum(payload_bytes(item) for item in payload)
    if isinstance(payload, dict):
        return sum(payload_bytes(k) + payload_bytes(v) for k, v in payload.items())
    try:
        return len(pickle.dumps(payload, protocol=5))
    except Exception:  # the communicator reports what cannot travel
        return 0


class Collective:
    """The running collective operation of the current actor.

    Every tag it uses starts with the actor's operation id, so two collectives
    of one network never mix their messages, and the same actor on every rank
    talks to its twins only. What it sends and receives is counted in
    ``traffic``, the actor's `CollectiveTraffic`, which its statistics recorder
    holds (``network.statistics().collectives``): every send, receive and
    allgather, also schema agreements.

    Raises
    ------
    RuntimeError
        Made outside a collective actor (one declared ``@define_actor(collective=True)``).
    """

    def __init__(self, ctx: Context) -> None:
        node = current_actor()
        if node is None or node.op_id is None:
            raise RuntimeError(
                "Collective: only a running collective actor has an operation; declare it "
                "with @define_actor(collective=True) and run it in a Network"
            )
        self.op_id: int = node.op_id
        self.ctx = ctx
        self.comm: Communicator = ctx.communicator
        self.rank = ctx.rank
        self.nranks = ctx.nranks
        self.name = node.name
        counter = current_counter()
        recorder = counter if isinstance(counter, ActorRecorder) else None
        if recorder is not None and recorder.traffic is None:
            recorder.traffic = CollectiveTraffic()
        self.traffic: CollectiveTraffic = (
            recorder.traffic if recorder is not None and recorder.traffic else CollectiveTraffic()
        )
        """What this actor's collectives moved on this rank (shared by its `Collective` objects)."""

    @property
    def peers(self) -> list[int]:
        """Every other rank."""
        return [r for r in range(self.nranks) if r != self.rank]

    def tag(self, *parts: Hashable) -> tuple[Hashable, ...]:
        """The communicator's tag of this operation's tag ``parts``: ``(op_id, *parts)``."""
        return (self.op_id, *parts)

    def _wire(self, tag: Tag) -> tuple[Hashable, ...]:
        """The communicator's tag of one of this operation's tags (a tuple gives its parts)."""
        try:
            hash(tag)
        except TypeError:
            raise TypeError(
                f"actor `{self.name}`: a collective's tag must be hashable, got "
                f"{type(tag).__name__}; the order is send(dest, tag, payload), as a "
                "Communicator's"
            ) from None
        return self.tag(*tag) if isinstance(tag, tuple) else self.tag(tag)

    async def send(self, dest: int, tag: Tag, payload: Any) -> None:
        """Send ``payload`` to ``dest`` with this operation's ``tag`` (as `Communicator.send`).

        Raises
        ------
        TypeError
            ``tag`` is not hashable.
        """
        await self.comm.send(dest, self._wire(tag), payload)
        self.ctx.activity.exchanged += 1  # progress, for Context(stall_timeout=...)
        self.traffic.add_sent(dest, payload_bytes(payload))

    async def recv(self, source: int, tag: Tag) -> Any:
        """The next payload from ``source`` with this operation's ``tag`` (as `Communicator.recv`)."""
        payload = await self.comm.recv(source, self._wire(tag))
        self.ctx.activity.exchanged += 1
        self.traffic.add_received(source, payload_bytes(payload))
        return payload

    async def allgather(self, tag: Tag, value: Any) -> list[Any]:
        """Every rank's ``value`` in rank order (as `Communicator.allgather`).

        An operation's allgathers (its schema agreements among them) are steps that
        every rank takes in the same order, as MPI's collectives are: they travel in
        one ordered stream with their tags, so ranks that took different steps fail
        at once, naming both, instead of waiting for each other forever.

        Raises
        ------
        NetworkMismatchError
            Another rank's step at this point had another tag.
        TypeError
            ``tag`` is not hashable.
        """
        wire = self._wire(tag)
        if self.nranks == 1:
            return [value]
        everyone = await self._step(wire, value)
        self.ctx.activity.exchanged += 1
        mine = payload_bytes(value)
        for peer in self.peers:
            self.traffic.add_sent(peer, mine)
            self.traffic.add_received(peer, payload_bytes(everyone[peer]))
        return everyone

    async def end(self) -> None:
        """The operation's last step on this rank, once its actor returned: every rank
        takes it after its last allgather, so a rank whose actor returned while another
        still takes a step (a step skipped by a condition on rank-local data) fails at
        once on both, instead of leaving the other waiting forever. The Network takes it
        for every collective actor that returns, on several ranks.

        Raises
        ------
        NetworkMismatchError
            Another rank took a step where this rank's actor had returned.
        """
        if self.nranks > 1:
            await self._step(_RETURNED, None)

    async def _step(self, wire: tuple[Hashable, ...], value: Any) -> list[Any]:
        """Every rank's ``value`` for the step ``wire``, on the operation's one ordered
        stream of steps; `NetworkMismatchError` where a rank took another step there."""
        tagged = await self.comm.allgather(self.tag(_STEPS), (wire, value))
        for peer, (theirs, _) in enumerate(tagged):
            if theirs != wire:
                raise NetworkMismatchError(
                    f"actor `{self.name}`: rank {peer} gathered {_described(theirs)} where "
                    f"rank {self.rank} gathered {_described(wire)}; every rank of a "
                    "collective actor must take the same collective steps in the same order "
                    "(a step taken, or a return, on some ranks only, by a condition on "
                    "rank-local data, breaks that)"
                )
        return [v for _, v in tagged]

    async def agree_schema(
        self, tag: Tag, schema: pa.Schema | None, *, channel: str | None = None
    ) -> pa.Schema | None:
        """The schema of the collective's input stream, the same on every rank.

        Every rank passes the schema of its input (``TableChunk.schema`` of a
        chunk; None when its stream had no chunk), so a rank without a chunk still
        learns the schema from its peers. Returns it, or None when no rank had a
        chunk. ``tag`` tells apart several agreements of one operation (``()`` for
        one); ``channel`` names the input in errors.

        Raises
        ------
        SchemaError
            Two ranks' inputs differ in schema: every rank raises it, naming the
            actor, the channel, the ranks, the columns and both types.
        """
        parts = tag if isinstance(tag, tuple) else (tag,)
        everyone = await self.allgather(("schema", *parts), schema)
        known = [(rank, s) for rank, s in enumerate(everyone) if s is not None]
        if not known:
            return None
        first_rank, first = known[0]
        for rank, other in known[1:]:
            if not other.equals(first, check_metadata=False):
                where = f"actor `{self.name}`" + (f", channel `{channel}`" if channel else "")
                problems = "; ".join(schema_differences(first, other, of=f"rank {first_rank}"))
                raise SchemaError(
                    f"{where}: the chunks on rank {rank} do not have the schema of those on "
                    f"rank {first_rank}: {problems}; every rank's chunks of one stream must "
                    "share one schema (cast them explicitly first, with `actors.cast`); "
                    f"got {describe_schema(other)}"
                )
        return first
