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

A runtime places actors there itself: ``runtime.launch(actor_id, behaviour,
device="gpu")`` (or ``device="model"``, the kernel's model on a host thread) with
a `DeviceBehaviour`, its code for the device and its model for the host; the
library has the guide's `calculator` and `counter`, a `windowed_sum` and a
`forwarder` for chains of actors on the device (`kernel_source` is the CUDA C++
a kernel is compiled from).
"""

from streamnet.persistent.device._behaviours import (
    ADD,
    DECREMENT,
    DIVIDE,
    DIVIDE_BY_ZERO,
    INCREMENT,
    INVALID_INPUT,
    MULTIPLY,
    RESET_COUNT,
    SUBTRACT,
    ActorRef,
    CalculateRequest,
    CalculateResponse,
    CounterRequest,
    CounterResponse,
    DeviceBehaviour,
    Sample,
    WindowSum,
    calculator,
    counter,
    forwarder,
    stalling,
    windowed_sum,
)
from streamnet.persistent.device._kernels import kernel_source
from streamnet.persistent.device._model import STALL, Behaviour, Forward, KernelModel, behaviour
from streamnet.persistent.device._proxy import DeviceHeartbeatLost, device_actor
from streamnet.persistent.device._records import HEADER, RecordLayout, RecordLayoutError
from streamnet.persistent.device._ring import RingModel, SpscRing
from streamnet.persistent.device._slots import CONTROL, DeviceSlots, SlotStatistics

__all__ = [
    "ADD", "CONTROL", "DECREMENT", "DIVIDE", "DIVIDE_BY_ZERO", "HEADER", "INCREMENT",
    "INVALID_INPUT", "MULTIPLY", "RESET_COUNT", "STALL", "SUBTRACT", "ActorRef", "Behaviour",
    "CalculateRequest", "CalculateResponse", "CounterRequest", "CounterResponse",
    "DeviceBehaviour", "DeviceHeartbeatLost", "DeviceSlots", "Forward", "KernelModel",
    "RecordLayout", "RecordLayoutError", "RingModel", "Sample", "SlotStatistics", "SpscRing",
    "WindowSum", "behaviour", "calculator", "counter", "device_actor", "forwarder",
    "kernel_source", "stalling", "windowed_sum",
]  # fmt: skip
