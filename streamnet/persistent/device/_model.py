"""A model of the persistent kernel's loop, in Python on a thread of its own.

It does what the device kernel does, over the same control blocks and rings
(`DeviceSlots`): pass after pass over the slots, it runs each slot's pending
command, raises an active slot's heartbeat, and feeds the records waiting in its
host-to-kernel ring to the slot's behaviour, whose replies go to its
kernel-to-host ring (a reply carries the request's id as its correlation id).
The host side is tested against it on any machine; on a GPU a kernel launched
once takes its place.

A behaviour is a callable ``(state, message) -> replies`` with a ``start()`` that
makes its state (reset by `RESET`). `KernelModel.stall` stops a slot's heartbeat
and work, as an actor stuck on the device would.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from streamnet.persistent.device._slots import (
    ACTIVATE,
    ACTIVE,
    DEACTIVATE,
    DORMANT,
    RESET,
    TERMINATE,
    TERMINATED,
    DeviceSlots,
)

__all__ = ["Behaviour", "KernelModel"]

BATCH = 32
"""Records a slot takes from its ring in one pass."""
IDLE_WAIT = 0.0005
"""Seconds a pass that found nothing to do waits before the next."""


class Behaviour(Protocol):
    def start(self) -> Any: ...

    def __call__(self, state: Any, message: Any) -> Iterable[Any]: ...


class KernelModel:
    """The loop over ``slots``, slot ``i`` run by ``behaviours[i]``. Use with ``with``
    (or `start` and `stop`); `stop` ends the thread within a pass."""

    def __init__(self, slots: DeviceSlots, behaviours: Sequence[Behaviour]) -> None:
        if len(behaviours) != slots.slots:
            raise ValueError(
                f"KernelModel: {slots.slots} slots need as many behaviours, got {len(behaviours)}"
            )
        self.slots = slots
        self.behaviours = list(behaviours)
        self.states: list[Any] = [None] * slots.slots
        self.stalled: set[int] = set()
        self.pending: list[deque[Any]] = [deque() for _ in range(slots.slots)]
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None
        """What ended the loop, if a behaviour raised (the slot is then left stalled)."""

    def start(self) -> KernelModel:
        self._thread = threading.Thread(target=self._loop, name="streamnet-kernel-model", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> KernelModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stall(self, slot: int) -> None:
        """Stop ``slot``'s heartbeat and work until it is reset."""
        self.stalled.add(slot)

    def _loop(self) -> None:
        while not self._stop.is_set():
            busy = False
            for slot in range(self.slots.slots):
                busy |= self._pass(slot)
            if not busy:
                self._stop.wait(IDLE_WAIT)

    def _pass(self, slot: int) -> bool:
        slots = self.slots
        block = slots.control[slot]
        command = int(block["command"])
        if command:
            if command == RESET:
                self.states[slot] = self.behaviours[slot].start()
                self.pending[slot].clear()
                slots.to_kernel[slot].pop_many(slots.capacity)  # for the instance before
                self.stalled.discard(slot)
                block["resets"] += 1
                block["state"] = ACTIVE
            elif command == ACTIVATE:
                if self.states[slot] is None:
                    self.states[slot] = self.behaviours[slot].start()
                block["state"] = ACTIVE
            elif command == DEACTIVATE:
                block["state"] = DORMANT
            elif command == TERMINATE:
                block["state"] = TERMINATED
            block["command"] = 0  # done: the host may give the next
        if int(block["state"]) != ACTIVE or slot in self.stalled:
            return bool(command)
        block["heartbeat"] += 1
        busy = self._flush(slot)
        for record in slots.to_kernel[slot].pop_many(BATCH):
            busy = True
            message, message_id, _ = slots.layout.decode(record)
            block["messages_in"] += 1
            try:
                replies = list(self.behaviours[slot](self.states[slot], message))
            except BaseException as exc:  # the actor failed on the device: it stops there
                self.failure = exc
                self.stalled.add(slot)
                return True
            for reply in replies:
                encoded = slots.layout.encode(
                    reply, message_id=next(self._ids), correlation_id=message_id
                )
                self.pending[slot].append(encoded)
            self._flush(slot)
        return busy or bool(command)

    def _flush(self, slot: int) -> bool:
        """Move the slot's replies into its ring as room allows; whether any moved."""
        pending, ring = self.pending[slot], self.slots.to_host[slot]
        moved = False
        while pending and ring.try_push(pending[0]):
            pending.popleft()
            self.slots.control[slot]["messages_out"] += 1
            moved = True
        return moved


def behaviour(start: Callable[[], Any], step: Callable[[Any, Any], Iterable[Any]]) -> Behaviour:
    """A behaviour from its two functions."""

    class _Made:
        def start(self) -> Any:
            return start()

        def __call__(self, state: Any, message: Any) -> Iterable[Any]:
            return step(state, message)

    return _Made()
