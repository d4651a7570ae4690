"""The slots of a persistent kernel: one control block and two rings per actor, in one buffer.

A control block (`CONTROL`, 64 bytes: a line of its own) holds what the host and
the kernel tell each other about one slot:

- ``command``, written by the host, cleared by the kernel once done: `ACTIVATE`,
  `DEACTIVATE`, `TERMINATE`, `RESET` (state reinitialised, records still waiting
  in the host-to-kernel ring dropped, then active);
- ``state``, written by the kernel: `DORMANT`, `ACTIVE`, `TERMINATED`;
- ``heartbeat``, which the kernel raises on each pass over an active slot (the host
  fails a slot whose heartbeat stops);
- ``messages_in`` and ``messages_out``, and ``resets``, counted by the kernel;
- ``missed``, written by the host: heartbeats the slot missed (see `device_actor`).

After the control blocks come, per slot, its host-to-kernel ring and its
kernel-to-host ring (`SpscRing`s of the layout's records). On a GPU the buffer is
pinned host memory that the device maps; here it is a NumPy array.

Each slot also has a kernel-to-kernel ring (``from_kernel``), in a buffer of its
own (``links``: device memory on a GPU, which the host does not read): the ring
another slot forwards records into. A ring has one producer, so a slot takes
records from one other slot at most (a chain, or a tree towards its root's
children; never two slots into one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamnet.persistent.device._records import RecordLayout
from streamnet.persistent.device._ring import SpscRing

__all__ = [
    "ACTIVATE", "ACTIVE", "CONTROL", "DEACTIVATE", "DORMANT", "RESET", "TERMINATE",
    "TERMINATED", "DeviceSlots", "SlotStatistics",
]  # fmt: skip

# states (written by the kernel)
DORMANT, ACTIVE, TERMINATED = 0, 1, 2
STATE_NAMES = {DORMANT: "dormant", ACTIVE: "active", TERMINATED: "terminated"}
# commands (written by the host; 0: none pending)
ACTIVATE, DEACTIVATE, TERMINATE, RESET = 1, 2, 3, 4

CONTROL = np.dtype(
    [
        ("command", "<u4"),
        ("state", "<u4"),
        ("heartbeat", "<u8"),
        ("messages_in", "<u8"),
        ("messages_out", "<u8"),
        ("resets", "<u4"),
        ("parent", "<i4"),
        ("missed", "<u8"),
        ("reserved", "<u8", (2,)),
    ]
)
"""One slot's control block: 64 bytes."""
assert CONTROL.itemsize == 64


@dataclass(frozen=True)
class SlotStatistics:
    """A snapshot of one slot, as its control block and rings show it.

    Attributes
    ----------
    slot, state
        The slot, and its state as the kernel last wrote it (``"dormant"``,
        ``"active"``, ``"terminated"``).
    heartbeat
        Passes of the kernel over the slot while active.
    messages_in, messages_out
        Records the kernel took from the slot's host-to-kernel ring, and put into its
        kernel-to-host ring.
    resets
        Times the slot's state was begun anew (each instance of its actor resets it).
    heartbeats_missed
        Heartbeats the host side found missing while the slot was active: one for each
        tenth of the heartbeat timeout it stayed silent (a stalled slot misses ten
        before its actor fails).
    to_kernel, to_host
        Records waiting in each ring now.
    """

    slot: int
    state: str
    heartbeat: int
    messages_in: int
    messages_out: int
    resets: int
    heartbeats_missed: int
    to_kernel: int
    to_host: int


class DeviceSlots:
    """``slots`` actor slots, each with ``capacity`` records of ``layout`` per ring, in one
    buffer (`nbytes` bytes; a new zeroed one by default).

    Raises
    ------
    ValueError
        ``slots`` is not an int >= 1, or the rings' capacity is not a power of two.
    """

    def __init__(
        self,
        layout: RecordLayout,
        slots: int,
        capacity: int,
        buffer: np.ndarray | None = None,
        links: np.ndarray | None = None,
    ) -> None:
        if type(slots) is not int or slots < 1:
            raise ValueError(f"DeviceSlots: `slots` must be an int >= 1, got {slots!r}")
        self.layout = layout
        self.slots = slots
        self.capacity = capacity
        ring_bytes = SpscRing.nbytes(layout.dtype, capacity)
        size = self.nbytes(layout, slots, capacity)
        raw = np.zeros(size, dtype=np.uint8) if buffer is None else buffer.reshape(-1).view(np.uint8)
        if raw.nbytes < size:
            raise ValueError(f"DeviceSlots: the buffer has {raw.nbytes} bytes, {size} needed")
        self.buffer = raw
        self.control = raw[: slots * CONTROL.itemsize].view(CONTROL)
        start = slots * CONTROL.itemsize
        self.to_kernel: list[SpscRing] = []
        self.to_host: list[SpscRing] = []
        for _ in range(slots):
            self.to_kernel.append(SpscRing(layout.dtype, capacity, raw[start : start + ring_bytes]))
            start += ring_bytes
            self.to_host.append(SpscRing(layout.dtype, capacity, raw[start : start + ring_bytes]))
            start += ring_bytes
        link = np.zeros(slots * ring_bytes, dtype=np.uint8) if links is None else links.reshape(-1)
        if link.nbytes < slots * ring_bytes:
            raise ValueError(
                f"DeviceSlots: the links buffer has {link.nbytes} bytes, {slots * ring_bytes} needed"
            )
        self.links = link.view(np.uint8)
        self.from_kernel = [
            SpscRing(layout.dtype, capacity, self.links[i * ring_bytes : (i + 1) * ring_bytes])
            for i in range(slots)
        ]

    @staticmethod
    def nbytes(layout: RecordLayout, slots: int, capacity: int) -> int:
        """The bytes of the control blocks and the rings."""
        return slots * (CONTROL.itemsize + 2 * SpscRing.nbytes(layout.dtype, capacity))

    @staticmethod
    def links_nbytes(layout: RecordLayout, slots: int, capacity: int) -> int:
        """The bytes of the kernel-to-kernel rings."""
        return slots * SpscRing.nbytes(layout.dtype, capacity)

    def command(self, slot: int, command: int) -> None:
        """Ask the kernel to run ``command`` on ``slot`` (it clears the word once done)."""
        self.control[slot]["command"] = command

    def pending(self, slot: int) -> bool:
        """Whether the kernel has not yet run the last command given to ``slot``."""
        return bool(self.control[slot]["command"])

    def state(self, slot: int) -> int:
        return int(self.control[slot]["state"])

    def heartbeat(self, slot: int) -> int:
        return int(self.control[slot]["heartbeat"])

    def statistics(self, slot: int) -> SlotStatistics:
        """What ``slot``'s control block and rings show now."""
        block = self.control[slot]
        state = int(block["state"])
        return SlotStatistics(
            slot, STATE_NAMES.get(state, f"unknown ({state})"), int(block["heartbeat"]),
            int(block["messages_in"]), int(block["messages_out"]), int(block["resets"]),
            int(block["missed"]),
            len(self.to_kernel[slot]), len(self.to_host[slot]),
        )  # fmt: skip
