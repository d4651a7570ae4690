"""The host's side of a device actor: a persistent actor that stands for one slot.

`device_actor` makes the function an `ActorRuntime` launches for a slot. Its
instance resets the slot, then moves messages: from its inbox into the slot's
host-to-kernel ring (as records, with 64-bit ids), and from the slot's
kernel-to-host ring to the host (``ctx.send``), a reply's correlation id mapped
back to the UUID of the request it answers, so that ``runtime.request`` works as
for any actor. It fails with `DeviceHeartbeatLost` when the slot's heartbeat
stops for ``heartbeat_timeout`` seconds, or when the slot does not take a command
within that time: a supervisor then restarts it as it would any actor, and the
new instance resets the slot. ``runtime.statistics(actor_id).device`` is the
slot's `SlotStatistics`. The runtime's ``deactivate`` and ``reactivate``
deactivate and activate the slot too; when the instance ends, the slot is
deactivated.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from time import monotonic
from uuid import UUID

from streamnet.persistent._actor_context import PersistentActorContext
from streamnet.persistent.device._slots import ACTIVATE, DEACTIVATE, RESET, DeviceSlots

__all__ = ["DeviceHeartbeatLost", "device_actor"]

POLL = 0.001
"""Seconds the proxy waits for a message before it looks at the slot's ring again."""
SPIN = 0.0005
"""For this long after a record last moved, the proxy looks at the slot's ring at every turn
of the event loop instead of every `POLL`: a reply that comes within microseconds is
passed on within microseconds, and an idle slot costs no busy loop."""
REMEMBERED = 1 << 16
"""Messages sent to the slot whose ids the proxy keeps for their replies (the latest): a
reply to an older one comes without the request's id."""


class DeviceHeartbeatLost(RuntimeError):
    """A device actor's slot stopped beating, or did not take a command; the message names
    the slot and how long it was silent."""


def device_actor(
    slots: DeviceSlots, slot: int, *, heartbeat_timeout: float = 1.0
) -> Callable[[PersistentActorContext], Awaitable[None]]:
    """The persistent actor function that stands for ``slot`` of ``slots`` (launch it with
    ``runtime.launch(actor_id, device_actor(...))``).

    Raises
    ------
    ValueError
        ``slot`` is not one of the slots, or ``heartbeat_timeout`` is not > 0.
    """
    if type(slot) is not int or not 0 <= slot < slots.slots:
        raise ValueError(f"device_actor: `slot` must be in 0..{slots.slots - 1}, got {slot!r}")
    if not heartbeat_timeout > 0:
        raise ValueError(
            f"device_actor: `heartbeat_timeout` must be > 0, got {heartbeat_timeout!r}"
        )

    async def run(ctx: PersistentActorContext) -> None:
        layout = slots.layout
        to_kernel, to_host = slots.to_kernel[slot], slots.to_host[slot]
        to_host.pop_many(slots.capacity)  # replies of an earlier instance answer nobody now
        ctx.report_statistics(lambda: slots.statistics(slot))
        await _command(slots, slot, RESET, heartbeat_timeout)
        requests: OrderedDict[int, UUID] = OrderedDict()
        ids = itertools.count(1)
        pulse = _Pulse(slots, slot, heartbeat_timeout)
        moved = monotonic()  # when a record last went in or out
        active = True
        try:
            while not ctx.should_terminate:
                if ctx.is_active != active:  # the runtime paused or resumed the actor: the slot too
                    active = ctx.is_active
                    await _command(
                        slots, slot, ACTIVATE if active else DEACTIVATE, heartbeat_timeout
                    )
                    pulse.restart()
                try:
                    message = await ctx.receive(timeout=0 if monotonic() - moved < SPIN else POLL)
                except TimeoutError:
                    message = None
                if message is not None:
                    number = next(ids)
                    requests[number] = message.message_id
                    if len(requests) > REMEMBERED:
                        requests.popitem(last=False)
                    record = layout.encode(message, message_id=number)
                    while not to_kernel.try_push(record):  # full: the slot drains it
                        pulse.check()
                        await asyncio.sleep(POLL)
                    moved = monotonic()
                for record in to_host.pop_many(slots.capacity):
                    reply, _, answers = layout.decode(record)
                    request = requests.pop(answers, None)
                    if request is not None:
                        reply = dataclasses.replace(reply, correlation_id=request)
                    await ctx.send(reply)
                    moved = monotonic()
                if active:  # a dormant slot does not beat
                    pulse.check()
        finally:
            slots.command(slot, DEACTIVATE)

    run.__name__ = run.__qualname__ = f"device_actor_slot_{slot}"
    return run


MISSES_PER_TIMEOUT = 10
"""A heartbeat counts as missed for every tenth of ``heartbeat_timeout`` the slot stays
silent: a stalled slot misses 10 before its actor fails."""


class _Pulse:
    """The slot's heartbeat as the host side watches it: when it last moved, how many beats
    it missed since (added to the slot's ``missed`` count), and the failure at the timeout."""

    def __init__(self, slots: DeviceSlots, slot: int, timeout: float) -> None:
        self.slots, self.slot, self.timeout = slots, slot, timeout
        self.restart()

    def restart(self) -> None:
        """Watch anew from now (the slot was just told to start or stop)."""
        self.beat, self.since, self.counted = self.slots.heartbeat(self.slot), monotonic(), 0

    def check(self) -> None:
        """Count the beats missed; raise `DeviceHeartbeatLost` once silent for the timeout."""
        now = self.slots.heartbeat(self.slot)
        if now != self.beat:
            self.beat, self.since, self.counted = now, monotonic(), 0
            return
        silent = monotonic() - self.since
        missed = min(MISSES_PER_TIMEOUT, int(silent * MISSES_PER_TIMEOUT / self.timeout))
        if missed > self.counted:
            self.slots.control[self.slot]["missed"] += missed - self.counted
            self.counted = missed
        if silent > self.timeout:
            raise DeviceHeartbeatLost(
                f"device slot {self.slot}: no heartbeat for {self.timeout:g} s (at {now})"
            )


async def _command(slots: DeviceSlots, slot: int, command: int, timeout: float) -> None:
    """Give ``command`` to the slot and wait until the kernel has run it."""
    slots.command(slot, command)
    deadline = monotonic() + timeout
    while slots.pending(slot):
        if monotonic() > deadline:
            raise DeviceHeartbeatLost(
                f"device slot {slot}: the kernel did not take command {command} in {timeout:g} s"
            )
        await asyncio.sleep(POLL)
