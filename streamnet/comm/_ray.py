"""Ray: a rank's communicator when the ranks of a run are Ray actors (see `run_on_ray`).

Installed with the ``ray`` extra. Tables travel in the wire format of
:mod:`streamnet.comm._wire`: their Arrow IPC buffers become NumPy byte arrays,
which Ray places in its shared object store and the receiving rank reads without
a copy. A send returns once the peer has the message, which bounds what is in
flight. A rank that fails tells the others, whose networks fail with
`RemoteRankError`; a rank whose job ended tells them too, and one still waiting
for a message from it fails with `NetworkMismatchError`.
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import numpy as np

from streamnet._errors import NetworkMismatchError
from streamnet.comm import _wire
from streamnet.comm._communicator import Communicator, FailureRecord, Tag, remote_error
from streamnet.comm._tagged_inbox import TaggedInbox

__all__ = ["RankEndpoint", "RayCommunicator", "failure_blob"]

_ENDED = object()  # in a source's sequence: its job ended after the messages before it


class RankEndpoint:
    """One rank's end of the exchange: what its Ray actor receives, and from whom.

    Every method is ``async``, so all of them run on the actor's one event loop.
    """

    def __init__(self, rank: int, nranks: int) -> None:
        self.rank = rank
        self.nranks = nranks
        self.peers: list[Any] = []
        self.inbox = TaggedInbox()  # slots: (source, tag)
        self.next_in: dict[int, int] = {}  # per source: the sequence number delivered next
        self.early: dict[int, dict[int, tuple[Tag, Any]]] = {}  # arrived before their turn
        self.next_out: dict[int, int] = {}
        self.failures = FailureRecord()
        self.finished: set[int] = set()  # the peers whose job ended (after all they sent)

    async def connect(self, peers: list[Any]) -> None:
        self.peers = peers

    async def deliver(
        self, source: int, seq: int, tag: Tag, header: bytes, buffers: list[Any]
    ) -> None:
        """Take message ``seq`` from ``source``; messages may arrive out of order."""
        if self.failures.failed is not None:
            return
        self._arrived(source, seq, (tag, _wire.loads(header, buffers)))

    async def ended(self, source: int, seq: int) -> None:
        """``source``'s job ended after its messages before ``seq``."""
        self._arrived(source, seq, _ENDED)

    def _arrived(self, source: int, seq: int, item: Any) -> None:
        early = self.early.setdefault(source, {})
        early[seq] = item
        expected = self.next_in.get(source, 0)
        while expected in early:
            item = early.pop(expected)
            if item is _ENDED:
                self.finished.add(source)
                self.inbox.wake(lambda slot: slot[0] == source)
            else:
                self.inbox.put((source, item[0]), item[1])
            expected += 1
        self.next_in[source] = expected

    async def abort(self, rank: int, blob: bytes) -> None:
        self.fail(rank, blob)

    def fail(self, rank: int, blob: bytes) -> None:
        """Record the failure of ``rank``, wake every receiver to raise it, tell the watchers."""
        if self.failures.failed is None and self.failures.record(rank, _cause(blob)):
            self.inbox.wake()

    def raise_if_failed(self) -> None:
        self.failures.check()

    def check_waiting(self, source: int, tag: Tag) -> None:
        """Raise before a receiver waits on ``source`` if a rank failed, or if ``source``'s
        job ended (what it sent before was taken already: nothing more will come)."""
        self.failures.check()
        if source in self.finished:
            raise NetworkMismatchError(
                f"rank {self.rank} waits for a message (tag {tag!r}) from rank {source}, whose "
                f"job already ended: the ranks ran different networks or collectives (rank "
                f"{source} returned without this step)"
            )


class RayCommunicator(Communicator):
    """The communicator of one rank hosted by :func:`run_on_ray`."""

    def __init__(self, host: RankEndpoint) -> None:
        self._host = host

    @property
    def rank(self) -> int:
        return self._host.rank

    @property
    def nranks(self) -> int:
        return self._host.nranks

    async def send(self, dest: int, tag: Tag, payload: Any) -> None:
        self._check_peer(dest, "dest")
        host = self._host
        host.raise_if_failed()
        if dest == host.rank:
            host.inbox.put((dest, tag), payload)
            return
        if _wire.is_bulky(payload):  # a table: write its bytes in a thread
            loop = asyncio.get_running_loop()
            header, buffers = await loop.run_in_executor(None, _wire.dumps, payload)
        else:
            header, buffers = _wire.dumps(payload)
        arrays = [np.frombuffer(buffer, dtype=np.uint8) for buffer in buffers]
        seq = host.next_out.get(dest, 0)
        host.next_out[dest] = seq + 1
        delivered = host.peers[dest].deliver.remote(host.rank, seq, tag, header, arrays)
        try:
            await delivered
        except Exception as exc:  # the peer's process is gone
            host.raise_if_failed()
            raise remote_error(dest, exc) from exc

    async def recv(self, source: int, tag: Tag) -> Any:
        self._check_peer(source, "source")
        host = self._host
        return await host.inbox.get((source, tag), lambda: host.check_waiting(source, tag))

    def abort(self, cause: BaseException) -> None:
        host = self._host
        if host.failures.failed is not None:
            return
        blob = failure_blob(cause)
        host.fail(host.rank, blob)
        for peer, handle in enumerate(host.peers):
            if peer != host.rank:
                handle.abort.remote(host.rank, blob)

    def finish(self) -> None:
        host = self._host
        if host.failures.failed is not None:
            return  # the peers were told of the failure
        for peer, handle in enumerate(host.peers):
            if peer != host.rank:
                seq = host.next_out.get(peer, 0)
                host.next_out[peer] = seq + 1
                handle.ended.remote(host.rank, seq)

    def _failure_record(self) -> FailureRecord:
        return self._host.failures

    def __repr__(self) -> str:
        return f"<RayCommunicator rank {self.rank} of {self.nranks}>"


def failure_blob(cause: BaseException) -> bytes:
    """``cause`` pickled for a peer (as a RuntimeError naming it, if it does not pickle)."""
    try:
        blob = pickle.dumps(cause)
        pickle.loads(blob)
    except Exception:
        blob = pickle.dumps(RuntimeError(f"{type(cause).__name__}: {cause}"))
    return blob


def _cause(blob: bytes) -> BaseException:
    cause = pickle.loads(blob)
    return cause if isinstance(cause, BaseException) else RuntimeError(repr(cause))
