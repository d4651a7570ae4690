"""The parts of GPU-resident persistent actors that do not need a GPU: the fixed-size
records their messages travel as (`RecordLayout`), and the single-producer,
single-consumer ring that carries records between the host and a device actor,
or between two device actors (`SpscRing`, and `RingModel` for checking its
protocol step by step); the slots of a persistent kernel, a control block and two
rings each (`DeviceSlots`); the host's side of a device actor, a persistent
actor that stands for one slot under the usual runtime and supervisors
(`device_actor`); and a model of the kernel's loop in Python (`KernelModel`).

A persistent kernel keeps one slot per actor; the host writes records into each
slot's host-to-kernel ring and reads replies from its kernel-to-host ring, both
in pinned host memory that the device maps; actors pass records to each other
through rings in device memory. The rings here hold the same bytes in a NumPy
buffer, laid out as the kernel reads them, so that the host side and the
protocol are tested on any machine, the host side against the model. The kernel
itself needs a GPU.
"""

from streamnet.persistent.device._model import Behaviour, KernelModel, behaviour
from streamnet.persistent.device._proxy import DeviceHeartbeatLost, device_actor
from streamnet.persistent.device._records import HEADER, RecordLayout, RecordLayoutError
from streamnet.persistent.device._ring import RingModel, SpscRing
from streamnet.persistent.device._slots import CONTROL, DeviceSlots, SlotStatistics

__all__ = [
    "CONTROL", "HEADER", "Behaviour", "DeviceHeartbeatLost", "DeviceSlots", "KernelModel",
    "RecordLayout", "RecordLayoutError", "RingModel", "SlotStatistics", "SpscRing", "behaviour",
    "device_actor",
]  # fmt: skip
