"""Where a runtime's device actors live: a kernel per device, a slot per actor id.

`ActorRuntime.launch(actor_id, behaviour, device=...)` asks its `DevicePlacement`
for the actor's host side. The first launch on a device starts that device's
kernel (`open_kernel`) with the library's behaviours and those the runtime was
given, its records laid out for all their messages; each actor id then keeps
one slot for the runtime's life, so that a supervisor's restart finds the same
slot (which the new instance resets). A behaviour's `ActorRef` parameters become
the slots of the actors they name, which must already be on the same device.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from streamnet.persistent.device._behaviours import LIBRARY, ActorRef, DeviceBehaviour
from streamnet.persistent.device._kernels import DEVICES, DeviceKernel, open_kernel
from streamnet.persistent.device._proxy import device_actor
from streamnet.persistent.device._records import RecordLayout

__all__ = ["DevicePlacement", "kernel_behaviours"]

HEARTBEAT_TIMEOUT = 1.0
"""Seconds a device actor's slot may go without a heartbeat, unless ``launch`` says."""


def kernel_behaviours(
    own: Sequence[DeviceBehaviour] = (),
) -> tuple[list[DeviceBehaviour], RecordLayout]:
    """What a kernel is built with: the library's behaviours, then those of ``own`` whose
    names are new, and the record layout of all their messages."""
    known = [make() for make in LIBRARY]
    for behaviour in own:
        if all(b.name != behaviour.name for b in known):
            known.append(behaviour)
    messages: list[type] = []
    for b in known:
        messages += [m for m in b.messages if m not in messages]
    return known, RecordLayout(messages)


class DevicePlacement:
    """The device actors of one runtime (see the module doc): ``behaviours`` beyond the
    library's, ``slots`` per kernel, ``capacity`` records per ring.

    Raises
    ------
    ValueError
        ``slots`` is not an int >= 1, or ``capacity`` not a power of two.
    """

    def __init__(
        self, behaviours: Sequence[DeviceBehaviour] = (), *, slots: int = 16, capacity: int = 64
    ) -> None:
        if type(slots) is not int or slots < 1:
            raise ValueError(f"device_slots must be an int >= 1, got {slots!r}")
        if type(capacity) is not int or capacity < 1 or capacity & (capacity - 1):
            raise ValueError(f"device_ring_capacity must be a power of two >= 1, got {capacity!r}")
        self.behaviours = tuple(behaviours)
        self.slot_count = slots
        self.capacity = capacity
        self.kernels: dict[str, DeviceKernel] = {}
        self._slots: dict[str, dict[str, int]] = {}  # device -> actor id -> slot

    def actor(
        self,
        actor_id: str,
        behaviour: object,
        device: str,
        heartbeat_timeout: float | None,
    ) -> Callable[..., Awaitable[None]]:
        """The host side of ``actor_id`` running ``behaviour`` in a slot on ``device``.

        Raises
        ------
        TypeError
            ``behaviour`` is not a `DeviceBehaviour`.
        ValueError
            ``device`` is unknown; the kernel does not run this behaviour; every slot
            is taken; or a parameter names an actor not on this device.
        BackendUnavailableError
            ``device="gpu"`` where CuPy or a CUDA device is missing.
        """
        if not isinstance(behaviour, DeviceBehaviour):
            raise TypeError(
                f"launch: actor `{actor_id}` on device={device!r} needs a DeviceBehaviour "
                f"(see streamnet.persistent.device), got {behaviour!r}"
            )
        if device not in DEVICES:
            raise ValueError(f"launch: device must be one of {list(DEVICES)}; got {device!r}")
        kernel = self._kernel(device, behaviour)
        taken = self._slots.setdefault(device, {})
        params = [self._param(p, taken, actor_id, device) for p in behaviour.params]
        slot = taken.get(actor_id)
        if slot is None:
            if len(taken) == self.slot_count:
                raise ValueError(
                    f"launch: all {self.slot_count} slots of the {device} kernel are taken "
                    f"(by {sorted(taken)}); give ActorRuntime(device_slots=...) more"
                )
            slot = taken[actor_id] = len(taken)
        kernel.assign(slot, behaviour, params)
        timeout = HEARTBEAT_TIMEOUT if heartbeat_timeout is None else heartbeat_timeout
        return device_actor(kernel.slots, slot, heartbeat_timeout=timeout)

    def slot(self, device: str, actor_id: str) -> int | None:
        """The slot ``actor_id`` has on ``device``, if any."""
        return self._slots.get(device, {}).get(actor_id)

    def close(self, timeout: float = 5.0) -> None:
        """Stop every kernel."""
        kernels, self.kernels = self.kernels, {}
        for kernel in kernels.values():
            kernel.close(timeout)

    def _kernel(self, device: str, behaviour: DeviceBehaviour) -> DeviceKernel:
        kernel = self.kernels.get(device)
        if kernel is None:
            known, layout = kernel_behaviours((*self.behaviours, behaviour))
            kernel = open_kernel(device, layout, known, self.slot_count, self.capacity)
            self.kernels[device] = kernel
        kernel.index(behaviour)  # raises if the kernel was started without it
        missing = [m.__qualname__ for m in behaviour.messages if m not in kernel.slots.layout.types]
        if missing:
            raise ValueError(
                f"device behaviour `{behaviour.name}` carries {missing}, which the {device} "
                "kernel's records were not laid out for: list the behaviour in "
                "`ActorRuntime(device_behaviours=...)`"
            )
        return kernel

    @staticmethod
    def _param(value: Any, taken: dict[str, int], actor_id: str, device: str) -> int | float:
        if not isinstance(value, ActorRef):
            return value  # type: ignore[no-any-return]
        slot = taken.get(value.actor_id)
        if slot is None:
            raise ValueError(
                f"launch: actor `{actor_id}` names `{value.actor_id}`, which is not a device "
                f"actor on {device!r} (launch it there first); got {sorted(taken)}"
            )
        return slot
