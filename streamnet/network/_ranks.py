"""Every rank builds the same network: the fingerprint of its collectives, checked at start.

Collective actors get their operation ids in the order they are made, so ranks
that build the same network in the same order agree on them. A network with
several ranks exchanges its fingerprint before any actor starts: ranks that
built different collectives would otherwise wait on each other forever. The
ranks' backends must agree too (`Backend.fingerprint`): ranks whose Polars
versions differ would hash equal keys into different partitions.
"""

from __future__ import annotations

from collections.abc import Sequence

from streamnet._actor import ActorNode
from streamnet._context import Context
from streamnet._errors import NetworkMismatchError, RemoteRankError

__all__ = ["Fingerprint", "check_ranks_agree", "fingerprint"]

Fingerprint = tuple[tuple[str, int], ...]
"""A network's collectives as ``(kind, operation id)``, in order."""


def fingerprint(actors: Sequence[ActorNode]) -> Fingerprint:
    """The collectives of ``actors`` as ``(kind, operation id)``; equal on every rank."""
    return tuple(
        (node.definition.name, node.op_id) for node in actors if node.op_id is not None
    )


async def check_ranks_agree(ctx: Context, mine: Fingerprint) -> int:
    """Every rank must have built the same collectives, or they would wait on each other.

    Returns the run's number, the same on every rank.

    Raises
    ------
    NetworkMismatchError
        The ranks' fingerprints differ, or their backends' (every rank raises it,
        naming each rank's).
    RemoteRankError
        A peer failed before or while the fingerprints were exchanged.
    """
    comm = ctx.communicator
    try:
        if (known := comm.failure) is not None:
            raise known
        run_id = ctx.activity.next_run()
        backend = ctx.backend.fingerprint()
        everyone = await comm.allgather(("network", run_id), (backend, mine))
        if (known := comm.failure) is not None:  # heard of while exchanging fingerprints
            raise known
    except RemoteRankError as exc:
        if not isinstance(exc.cause, NetworkMismatchError):
            raise
        # A peer found the mismatch first and failed; whichever rank hears of it
        # first, every rank reports the one root cause itself.
        mismatch = NetworkMismatchError(str(exc.cause))
        mismatch.add_note(f"found first by rank {exc.rank}")
        raise mismatch from None
    if any(other != backend for other, _ in everyone):
        lines = "\n".join(f"  rank {rank}: {other}" for rank, (other, _) in enumerate(everyone))
        raise NetworkMismatchError(
            "the ranks run different backends; partitions agree only between ranks of one "
            "backend with the same versions (install the same Polars on every rank):\n" + lines
        )
    if any(other != mine for _, other in everyone):
        lines = "\n".join(
            f"  rank {rank}: {_describe(print_)}" for rank, (_, print_) in enumerate(everyone)
        )
        raise NetworkMismatchError(
            f"the ranks built different networks; their collectives must match one for one "
            f"(build the same network in the same order on every rank):\n{lines}"
        )
    return run_id


def _describe(fingerprint: Fingerprint) -> str:
    if not fingerprint:
        return "no collectives"
    return ", ".join(f"{kind} (op {op_id})" for kind, op_id in fingerprint)
