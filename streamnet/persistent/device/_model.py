"""A model of the persistent kernel's loop, in Python on a thread of its own.

It does what the device kernel does, over the same control blocks and rings
(`DeviceSlots`): pass after pass over the slots, it runs each slot's pending
command, raises an active slot's heartbeat, and feeds the records waiting in its
host-to-kernel ring to the slot's behaviour, whose replies go to its
kernel-to-host ring (a reply carries the request's id as its correlation id).
The host side is tested against it on any machine; on a GPU a kernel launched
once takes its place.

A behaviour is a callable ``(state, message) -> outputs`` with a ``start()`` that
makes its state (reset by `RESET`). An output is a reply to the host, a
`Forward` (a record for another slot's kernel-to-kernel ring, its ids kept), or
`STALL`. Records from the slot's kernel-to-kernel ring come before those from the
host. `KernelModel.stall`, or a behaviour's `STALL`, stops a slot's heartbeat and
work until it is reset, as an actor stuck on the device would.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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

__all__ = ["STALL", "Behaviour", "Forward", "KernelModel"]

BATCH = 32
"""Records a slot takes from its ring in one pass."""
IDLE_WAIT = 0.0005
"""Seconds a pass that found nothing to do waits before the next."""


class Behaviour(Protocol):
    def start(self) -> Any: ...

    def __call__(self, state: Any, message: Any) -> Iterable[Any]: ...


@dataclass(frozen=True)
class Forward:
    """A behaviour's output for ``slot``'s kernel-to-kernel ring: ``message``, with the ids
    of the record it came from."""

    slot: int
    message: Any


STALL = object()
"""A behaviour's output that stops its slot's heartbeat and work until the slot is reset."""


class KernelModel:
    """The loop over ``slots``, slot ``i`` run by ``behaviours[i]`` (None: a slot no actor
    has yet; `assign` gives it one). Use with ``with`` (or `start` and `stop`); `stop`
    ends the thread within a pass."""

    def __init__(self, slots: DeviceSlots, behaviours: Sequence[Behaviour | None]) -> None:
        if len(behaviours) != slots.slots:
            raise ValueError(
                f"KernelModel: {slots.slots} slots need as many behaviours, got {len(behaviours)}"
            )
        self.slots = slots
        self.behaviours: list[Behaviour | None] = list(behaviours)
        self.states: list[Any] = [None] * slots.slots
        self.stalled: set[int] = set()
        self.pending: list[deque[tuple[int | None, Any]]] = [deque() for _ in range(slots.slots)]
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

    @property
    def running(self) -> bool:
        """Whether the loop's thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> KernelModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def assign(self, slot: int, behaviour: Behaviour) -> None:
        """Run ``slot`` with ``behaviour`` from its next reset or activation on (as a device
        kernel reads a slot's behaviour from its configuration)."""
        self.behaviours[slot] = behaviour
        self.states[slot] = None

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
        behaviour = self.behaviours[slot]
        if command and behaviour is None:  # no actor here: nothing to start
            block["command"] = 0
            return True
        if command:
            assert behaviour is not None
            if command == RESET:
                self.states[slot] = behaviour.start()
                self.pending[slot].clear()
                slots.to_kernel[slot].pop_many(slots.capacity)  # for the instance before
                slots.from_kernel[slot].pop_many(slots.capacity)
                self.stalled.discard(slot)
                block["resets"] += 1
                block["state"] = ACTIVE
            elif command == ACTIVATE:
                if self.states[slot] is None:
                    self.states[slot] = behaviour.start()
                block["state"] = ACTIVE
            elif command == DEACTIVATE:
                block["state"] = DORMANT
            elif command == TERMINATE:
                block["state"] = TERMINATED
            block["command"] = 0  # done: the host may give the next
        if int(block["state"]) != ACTIVE or slot in self.stalled or behaviour is None:
            return bool(command)
        block["heartbeat"] += 1
        busy = self._flush(slot)
        if self.pending[slot]:  # no room downstream: take nothing more (back-pressure)
            return busy
        records = slots.from_kernel[slot].pop_many(BATCH)
        if not len(records):
            records = slots.to_kernel[slot].pop_many(BATCH)
        for record in records:
            busy = True
            message, message_id, correlation_id = slots.layout.decode(record)
            block["messages_in"] += 1
            try:
                outputs = list(behaviour(self.states[slot], message))
            except BaseException as exc:  # the actor failed on the device: it stops there
                self.failure = exc
                self.stalled.add(slot)
                return True
            for output in outputs:
                if output is STALL:
                    self.stalled.add(slot)
                elif isinstance(output, Forward):
                    encoded = slots.layout.encode(
                        output.message, message_id=message_id, correlation_id=correlation_id
                    )
                    self.pending[slot].append((output.slot, encoded))
                else:
                    encoded = slots.layout.encode(
                        output, message_id=next(self._ids), correlation_id=message_id
                    )
                    self.pending[slot].append((None, encoded))
            self._flush(slot)
        return busy or bool(command)

    def _flush(self, slot: int) -> bool:
        """Move the slot's outputs into their rings, in order, as room allows; whether any
        moved."""
        pending, slots = self.pending[slot], self.slots
        moved = False
        while pending:
            to, record = pending[0]
            ring = slots.to_host[slot] if to is None else slots.from_kernel[to]
            if not ring.try_push(record):
                break
            pending.popleft()
            slots.control[slot]["messages_out"] += 1
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
