"""The persistent kernel a runtime's device actors live in, behind one interface
(`DeviceKernel`): the CUDA kernel on a GPU (`CudaKernel`, through CuPy), the same
kernel source compiled for the host with a thread per slot (`HostKernel`), or the
kernel's model in Python (`ModelKernel`).

`CudaKernel` compiles one kernel (`kernel_source`) with every behaviour it may run,
launches it once with a block per slot, and keeps it running until `close`:

- the control blocks and the host rings are in pinned host memory the device
  reaches (unified addressing: one pointer on both sides), the kernel-to-kernel
  rings in device memory;
- each slot's behaviour (an index into the compiled ones) and parameters are in
  pinned memory too, written by the host before it resets the slot;
- thread 0 of each block runs its slot's loop: the pending command, the heartbeat,
  then one record at a time (kernel-to-kernel ring first), its output delivered
  before the next record is taken (back-pressure), the count published after a
  system-wide fence;
- `close` raises a stop word every loop reads, then waits for the kernel to end.
"""

from __future__ import annotations

import ctypes
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from streamnet._errors import BackendUnavailableError
from streamnet.persistent.device._behaviours import PARAM_WORDS, STATE_WORDS, DeviceBehaviour
from streamnet.persistent.device._model import KernelModel
from streamnet.persistent.device._records import RecordLayout
from streamnet.persistent.device._ring import LINE
from streamnet.persistent.device._slots import (
    ACTIVATE,
    ACTIVE,
    CONTROL,
    DEACTIVATE,
    DORMANT,
    RESET,
    TERMINATE,
    TERMINATED,
    DeviceSlots,
)

__all__ = [
    "CompiledKernel", "CudaKernel", "DeviceKernel", "HostKernel", "ModelKernel", "kernel_source",
    "open_kernel",
]  # fmt: skip

DEVICES = ("gpu", "host", "model")
"""Where device actors can live: ``"gpu"`` (the CUDA kernel), ``"host"`` (the same kernel
source compiled for the host, a thread per slot) or ``"model"`` (the kernel's model in
Python, on a host thread)."""


class DeviceKernel:
    """One persistent kernel: its `slots`, the behaviours it runs, and its end."""

    kind: str
    slots: DeviceSlots
    behaviours: tuple[DeviceBehaviour, ...]

    def index(self, behaviour: DeviceBehaviour) -> int:
        """The position of ``behaviour``'s kind (by name) among those the kernel runs.

        Raises
        ------
        ValueError
            The kernel was started without it.
        """
        for i, known in enumerate(self.behaviours):
            if known.name == behaviour.name:
                return i
        raise ValueError(
            f"device behaviour `{behaviour.name}` is not one the {self.kind} kernel runs "
            f"({[b.name for b in self.behaviours]}): a kernel is built when the first device "
            "actor is launched; list your own behaviours in "
            "`ActorRuntime(device_behaviours=...)`"
        )

    def assign(self, slot: int, behaviour: DeviceBehaviour, params: Sequence[int | float]) -> None:
        """Run ``slot`` with ``behaviour`` and ``params`` from its next reset on."""
        raise NotImplementedError

    def close(self, timeout: float = 5.0) -> None:
        """Stop the kernel and wait for it to end (at most ``timeout`` seconds)."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Whether the kernel still runs (until `close`)."""
        raise NotImplementedError


class ModelKernel(DeviceKernel):
    """The kernel's model (`KernelModel`) on a thread of its own."""

    kind = "model"

    def __init__(self, slots: DeviceSlots, behaviours: Sequence[DeviceBehaviour]) -> None:
        self.slots = slots
        self.behaviours = tuple(behaviours)
        self.model = KernelModel(slots, [None] * slots.slots).start()
        self._finalizer = weakref.finalize(self, self.model.stop)  # its thread ends with it

    def assign(self, slot: int, behaviour: DeviceBehaviour, params: Sequence[int | float]) -> None:
        self.index(behaviour)
        self.model.assign(slot, behaviour.model(params))

    def close(self, timeout: float = 5.0) -> None:
        self._finalizer.detach()
        self.model.stop(timeout)

    @property
    def running(self) -> bool:
        return self.model.running


def open_kernel(
    device: str,
    layout: RecordLayout,
    behaviours: Sequence[DeviceBehaviour],
    slots: int,
    capacity: int,
) -> DeviceKernel:
    """A running kernel of ``slots`` slots on ``device`` (`DEVICES`).

    Raises
    ------
    ValueError
        ``device`` is none of `DEVICES`.
    BackendUnavailableError
        ``"gpu"`` without CuPy or without a CUDA device; the message says which.
    """
    if device == "model":
        return ModelKernel(DeviceSlots(layout, slots, capacity), behaviours)
    if device == "gpu":
        return CudaKernel(layout, behaviours, slots, capacity)
    if device == "host":
        return HostKernel(layout, behaviours, slots, capacity)
    raise ValueError(f"device actors live on one of {list(DEVICES)}; got device={device!r}")


# ------------------------------------------------------------------ the CUDA kernel
_PRELUDE = """
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned int u32;

#define SLOTS {slots}
#define WORDS {words}
#define CAPACITY {capacity}ULL
#define STATE_WORDS {state_words}
#define PARAM_WORDS {param_words}
#define ACTIVATE {activate}
#define DEACTIVATE {deactivate}
#define TERMINATE {terminate}
#define RESET {reset}
#define DORMANT {dormant}
#define ACTIVE {active}
#define TERMINATED {terminated}

struct Header {{ u32 type_id; u32 priority; u64 message_id; u64 correlation_id; }};
struct Record {{ Header h; u64 w[WORDS > 0 ? WORDS : 1]; }};
struct Control {{
    u32 command; u32 state; u64 heartbeat; u64 messages_in; u64 messages_out;
    u32 resets; int parent; u64 missed; u64 reserved[2];
}};
struct Ring {{ u64 head; char pad0[{line} - 8]; u64 tail; char pad1[{line} - 8]; Record r[1]; }};
struct Out {{ Record rec; int dest; bool stall; }};  // dest: -2 none, -1 the host, else a slot

__device__ inline double sn_f64(const Record& r, int i) {{ return __longlong_as_double((i64)r.w[i]); }}
__device__ inline i64 sn_i64(const Record& r, int i) {{ return (i64)r.w[i]; }}
__device__ inline void sn_set_f64(Record& r, int i, double v) {{ r.w[i] = (u64)__double_as_longlong(v); }}
__device__ inline void sn_set_i64(Record& r, int i, i64 v) {{ r.w[i] = (u64)v; }}
__device__ inline Record& sn_reply(Out& out, u32 type_id, const Record& in) {{
    out.dest = -1;
    out.rec.h.type_id = type_id;
    out.rec.h.priority = in.h.priority;
    out.rec.h.message_id = 0;  // numbered by the loop
    out.rec.h.correlation_id = in.h.message_id;
    for (int i = 0; i < WORDS; ++i) out.rec.w[i] = 0;
    return out.rec;
}}
__device__ inline void sn_forward(Out& out, int slot, const Record& in) {{ out.dest = slot; out.rec = in; }}
__device__ inline void sn_stall(Out& out) {{ out.stall = true; }}

__device__ inline u64 sn_load(const u64* p) {{ return *(const volatile u64*)p; }}
__device__ inline u32 sn_load32(const u32* p) {{ return *(const volatile u32*)p; }}
__device__ inline void sn_store(u64* p, u64 v) {{ *(volatile u64*)p = v; }}
__device__ inline void sn_store32(u32* p, u32 v) {{ *(volatile u32*)p = v; }}

__device__ bool sn_push(Ring* ring, const Record& rec) {{
    u64 tail = sn_load(&ring->tail);
    if (tail - sn_load(&ring->head) >= CAPACITY) return false;
    volatile u64* to = (volatile u64*)&ring->r[tail & (CAPACITY - 1)];
    const u64* from = (const u64*)&rec;
    for (unsigned i = 0; i < sizeof(Record) / 8; ++i) to[i] = from[i];
    __threadfence_system();  // the record before its count
    sn_store(&ring->tail, tail + 1);
    return true;
}}

__device__ bool sn_pop(Ring* ring, Record* rec) {{
    u64 head = sn_load(&ring->head);
    if (head == sn_load(&ring->tail)) return false;
    __threadfence_system();  // the count before the record
    const volatile u64* from = (const volatile u64*)&ring->r[head & (CAPACITY - 1)];
    u64* to = (u64*)rec;
    for (unsigned i = 0; i < sizeof(Record) / 8; ++i) to[i] = from[i];
    __threadfence_system();  // read before the slot is given back
    sn_store(&ring->head, head + 1);
    return true;
}}
"""

_LOOP = """
extern "C" __global__ void sn_persistent(
    Control* control, char* host_rings, char* links, const int* behaviour_of,
    const i64* params, i64* states, const int* stop, u64 ring_bytes)
{{
    const int slot = blockIdx.x;
    if (threadIdx.x != 0 || slot >= SLOTS) return;
    Control* c = control + slot;
    Ring* to_kernel = (Ring*)(host_rings + (2 * slot) * ring_bytes);
    Ring* to_host = (Ring*)(host_rings + (2 * slot + 1) * ring_bytes);
    Ring* mine = (Ring*)(links + slot * ring_bytes);
    i64* state = states + slot * STATE_WORDS;
    const i64* p = params + slot * PARAM_WORDS;
    Out out; out.dest = -2; out.stall = false;
    bool stalled = false;
    u64 numbered = 0;
    Record in;
    while (!*(const volatile int*)stop) {{
        u32 command = sn_load32(&c->command);
        if (command) {{
            u32 state_now = sn_load32(&c->state);
            if (command == RESET) {{
                for (int i = 0; i < STATE_WORDS; ++i) state[i] = 0;
                while (sn_pop(to_kernel, &in)) {{}}  // for the instance before
                while (sn_pop(mine, &in)) {{}}
                out.dest = -2; stalled = false;
                c->resets += 1;
                state_now = ACTIVE;
            }} else if (command == ACTIVATE) state_now = ACTIVE;
            else if (command == DEACTIVATE) state_now = DORMANT;
            else if (command == TERMINATE) state_now = TERMINATED;
            sn_store32(&c->state, state_now);
            __threadfence_system();
            sn_store32(&c->command, 0);  // done: the host may give the next
        }}
        if (sn_load32(&c->state) != ACTIVE || stalled) {{ __nanosleep(2000); continue; }}
        sn_store(&c->heartbeat, c->heartbeat + 1);
        if (out.dest != -2) {{  // the last output still waits for room
            Ring* ring = out.dest == -1 ? to_host : (Ring*)(links + out.dest * ring_bytes);
            if (!sn_push(ring, out.rec)) {{ __nanosleep(500); continue; }}
            out.dest = -2;
            sn_store(&c->messages_out, c->messages_out + 1);
        }}
        if (!sn_pop(mine, &in) && !sn_pop(to_kernel, &in)) {{ __nanosleep(200); continue; }}
        sn_store(&c->messages_in, c->messages_in + 1);
        out.stall = false;
        switch (*(const volatile int*)(behaviour_of + slot)) {{
{cases}
            default: break;
        }}
        if (out.stall) {{ stalled = true; out.dest = -2; continue; }}
        if (out.dest == -1) out.rec.h.message_id = ((u64)(slot + 1) << 48) | ++numbered;
        if (out.dest != -2) {{
            Ring* ring = out.dest == -1 ? to_host : (Ring*)(links + out.dest * ring_bytes);
            if (sn_push(ring, out.rec)) {{
                out.dest = -2;
                sn_store(&c->messages_out, c->messages_out + 1);
            }}
        }}
    }}
}}
"""


def kernel_source(
    layout: RecordLayout, behaviours: Sequence[DeviceBehaviour], slots: int, capacity: int
) -> str:
    """The CUDA C++ of the persistent kernel ``sn_persistent`` running ``behaviours``
    (behaviour ``i`` in slots whose configuration says ``i``)."""
    defines = []
    for cls in layout.types:
        name = cls.__name__
        defines.append(f"#define SN_TYPE_{name} {layout.type_id(cls)}")
        for index, (field, _) in enumerate(layout.fields_of(cls)):
            defines.append(f"#define SN_FIELD_{name}_{field} {index}")
    functions = [
        f"__device__ void sn_{b.name}(i64* state, const i64* params, const Record& in, Out& out)"
        f"\n{{{b.cuda}}}\n"
        for b in behaviours
    ]
    cases = "\n".join(
        f"            case {i}: sn_{b.name}(state, p, in, out); break;"
        for i, b in enumerate(behaviours)
    )
    prelude = _PRELUDE.format(
        slots=slots, words=layout.words, capacity=capacity, state_words=STATE_WORDS,
        param_words=PARAM_WORDS, activate=ACTIVATE, deactivate=DEACTIVATE, terminate=TERMINATE,
        reset=RESET, dormant=DORMANT, active=ACTIVE, terminated=TERMINATED, line=LINE,
    )  # fmt: skip
    return "\n".join([prelude, *defines, "", *functions, _LOOP.format(cases=cases)])


class CompiledKernel(DeviceKernel):
    """The kernel compiled from `kernel_source`, launched once over one host buffer (the
    control blocks and host rings, then each slot's behaviour index and parameters, then
    the stop word) and the links buffer; `CudaKernel` runs it on a GPU, `HostKernel` on
    host threads. Subclasses provide the memory, the launch and the wait."""

    def __init__(
        self,
        layout: RecordLayout,
        behaviours: Sequence[DeviceBehaviour],
        slots: int,
        capacity: int,
    ) -> None:
        self.behaviours = tuple(behaviours)
        host = DeviceSlots.nbytes(layout, slots, capacity)
        config = 8 * slots + 8 * PARAM_WORDS * slots + 64  # behaviour, parameters, stop word
        memory, base = self._host_memory(host + config)
        links, links_base = self._links_memory(DeviceSlots.links_nbytes(layout, slots, capacity))
        # On a GPU the host never reads the kernel-to-kernel rings: ``links`` is then a
        # stand-in of their size.
        self.slots = DeviceSlots(layout, slots, capacity, memory[:host], links)
        rest = memory[host:]
        self._behaviour_of = rest[: 8 * slots].view(np.int32)[:slots]
        self._params = rest[8 * slots : 8 * slots + 8 * PARAM_WORDS * slots].view(np.int64)
        self._stop = rest[-64:].view(np.int32)[:1]
        self._behaviour_of[:] = -1
        pointers = (
            base, base + slots * CONTROL.itemsize, links_base, base + host,
            base + host + 8 * slots, base + host + config - 64,
        )  # fmt: skip
        ring_bytes = self.slots.to_kernel[0].buffer.nbytes
        source = kernel_source(layout, self.behaviours, slots, capacity)
        self._done, release, kept = self._launch(source, slots, pointers, ring_bytes)
        self._timeout = [5.0]
        # Stops the kernel when closed, when collected unclosed, and at interpreter exit: its
        # threads or blocks must never read memory that was freed under them. It keeps that
        # memory (``kept``), and nothing of the kernel object.
        self._finalizer = weakref.finalize(
            self, _end, self.kind, self._stop, self._done, release, self._timeout, (memory, kept)
        )

    def assign(self, slot: int, behaviour: DeviceBehaviour, params: Sequence[int | float]) -> None:
        index = self.index(behaviour)
        words = np.zeros(PARAM_WORDS, dtype=np.int64)
        for i, value in enumerate(params):
            words[i] = value if isinstance(value, int) else np.float64(value).view(np.int64)
        self._params[slot * PARAM_WORDS : (slot + 1) * PARAM_WORDS] = words
        self._behaviour_of[slot] = index  # read by the kernel at each record

    def close(self, timeout: float = 5.0) -> None:
        self._timeout[0] = timeout
        self._finalizer()

    @property
    def running(self) -> bool:
        return self._finalizer.alive and not self._done()  # the handle is gone once ended

    # what a subclass provides
    def _host_memory(self, nbytes: int) -> tuple[np.ndarray, int]:
        """Zeroed memory both sides reach, as a NumPy view, and its address for the kernel."""
        raise NotImplementedError

    def _links_memory(self, nbytes: int) -> tuple[np.ndarray | None, int]:
        """Zeroed memory for the kernel-to-kernel rings (None if the host cannot read it),
        and its address for the kernel."""
        raise NotImplementedError

    def _launch(
        self, source: str, slots: int, pointers: tuple[int, ...], ring_bytes: int
    ) -> tuple[Callable[[], bool], Callable[[], None], object]:
        """Compile ``source`` and start ``sn_persistent`` with a block per slot; whether it
        has ended, what frees its resources once it has, and what must live until then
        (none of them may hold the kernel object)."""
        raise NotImplementedError


def _end(
    kind: str,
    stop: np.ndarray,
    done: Callable[[], bool],
    release: Callable[[], None],
    timeout: list[float],
    kept: object,
) -> None:
    """Raise the stop word, wait for the kernel to end, then free its resources."""
    stop[0] = 1
    deadline = time.monotonic() + timeout[0]
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the {kind} persistent kernel did not stop within {timeout[0]:g} s of being "
                "told to"
            )
        time.sleep(0.001)
    release()


class CudaKernel(CompiledKernel):
    """The persistent kernel on the current CUDA device, through CuPy (see the module doc).

    Raises
    ------
    BackendUnavailableError
        CuPy is not installed, or no CUDA device is visible.
    """

    kind = "gpu"

    def _host_memory(self, nbytes: int) -> tuple[np.ndarray, int]:
        self._cupy = _cupy()
        # Everything of this kernel's goes on its own stream: a device-wide synchronisation
        # would wait for every persistent kernel, forever.
        self._stream = self._cupy.cuda.Stream(non_blocking=True)
        self._pinned = _Pinned(self._cupy.cuda.runtime, nbytes)
        return self._pinned.array, self._pinned.pointer

    def _links_memory(self, nbytes: int) -> tuple[np.ndarray | None, int]:
        with self._stream:
            self._links = self._cupy.zeros(nbytes, dtype=self._cupy.uint8)
        return None, int(self._links.data.ptr)

    def _launch(
        self, source: str, slots: int, pointers: tuple[int, ...], ring_bytes: int
    ) -> tuple[Callable[[], bool], Callable[[], None], object]:
        cupy = self._cupy
        stream, pinned = self._stream, self._pinned
        with stream:
            states = cupy.zeros(slots * STATE_WORDS, dtype=cupy.int64)
        stream.synchronize()  # zeroed before the kernel reads them
        module = cupy.RawModule(code=source, options=("-std=c++17",))
        kernel = module.get_function("sn_persistent")
        control, rings, links, behaviour_of, params, stop = (np.uintp(p) for p in pointers)
        args = (
            control,
            rings,
            links,
            behaviour_of,
            params,
            states,
            stop,
            np.uint64(ring_bytes),
        )
        with stream:
            kernel((slots,), (32,), args)
        return (lambda: bool(stream.done)), pinned.free, (states, self._links, stream)


class HostKernel(CompiledKernel):
    """The same kernel source compiled for the host with a C++ compiler (``$CXX``, else
    ``c++``), a thread per slot: device behaviours' CUDA code run and tested without a GPU.

    Raises
    ------
    BackendUnavailableError
        No C++ compiler is found, or the source does not compile (its errors shown).
    """

    kind = "host"

    def _host_memory(self, nbytes: int) -> tuple[np.ndarray, int]:
        self._memory = np.zeros(nbytes, dtype=np.uint8)
        return self._memory, self._memory.ctypes.data

    def _links_memory(self, nbytes: int) -> tuple[np.ndarray | None, int]:
        self._link_memory = np.zeros(nbytes, dtype=np.uint8)
        return self._link_memory, self._link_memory.ctypes.data

    def _launch(
        self, source: str, slots: int, pointers: tuple[int, ...], ring_bytes: int
    ) -> tuple[Callable[[], bool], Callable[[], None], object]:
        states = np.zeros(slots * STATE_WORDS, dtype=np.int64)
        library = _compile_for_host(source)
        library.sn_launch.restype = ctypes.c_void_p
        library.sn_running.argtypes = library.sn_join.argtypes = [ctypes.c_void_p]
        control, rings, links, behaviour_of, params, stop = (ctypes.c_void_p(p) for p in pointers)
        handle = library.sn_launch(
            control, rings, links, behaviour_of, params,
            ctypes.c_void_p(states.ctypes.data), stop, ctypes.c_uint64(ring_bytes),
        )  # fmt: skip
        return (
            lambda: library.sn_running(handle) == 0,
            lambda: library.sn_join(handle),
            (states, self._link_memory),
        )


_HOST_PRELUDE = """
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>
#define __device__
#define __global__
struct sn_dim3 { unsigned x, y, z; };
static thread_local sn_dim3 blockIdx, threadIdx;
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __nanosleep(unsigned) {  // an idle slot: a thread per slot must not spin a core
    std::this_thread::sleep_for(std::chrono::microseconds(50));
}
inline double __longlong_as_double(long long v) { double d; __builtin_memcpy(&d, &v, 8); return d; }
inline long long __double_as_longlong(double v) { long long d; __builtin_memcpy(&d, &v, 8); return d; }
"""

_HOST_LAUNCHER = """
struct sn_kernel { std::vector<std::thread> threads; std::atomic<int> live{0}; };
extern "C" void* sn_launch(Control* control, char* rings, char* links, const int* behaviour_of,
                           const i64* params, i64* states, const int* stop, u64 ring_bytes) {
    sn_kernel* kernel = new sn_kernel;
    for (int s = 0; s < SLOTS; ++s) {
        kernel->live += 1;
        kernel->threads.emplace_back([=] {
            blockIdx = {unsigned(s), 0, 0};
            threadIdx = {0, 0, 0};
            sn_persistent(control, rings, links, behaviour_of, params, states, stop, ring_bytes);
            kernel->live -= 1;
        });
    }
    return kernel;
}
extern "C" int sn_running(void* kernel) { return static_cast<sn_kernel*>(kernel)->live.load(); }
extern "C" void sn_join(void* kernel) {
    sn_kernel* k = static_cast<sn_kernel*>(kernel);
    for (auto& t : k->threads) t.join();
    delete k;
}
"""


def host_compiler() -> str:
    """The C++ compiler a `HostKernel` is built with.

    Raises
    ------
    BackendUnavailableError
        None is found.
    """
    import os
    import shutil

    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not compiler:
        raise BackendUnavailableError(
            "device actors on device='host' need a C++ compiler (set CXX, or install g++)"
        )
    return compiler


def _compile_for_host(source: str) -> Any:
    """``source`` built as a shared library for this machine, with its launcher."""
    import hashlib
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    compiler = host_compiler()
    full = _HOST_PRELUDE + source + _HOST_LAUNCHER
    digest = hashlib.sha256(full.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "streamnet-host-kernels"
    folder.mkdir(exist_ok=True)
    library = folder / f"kernel-{digest}.so"
    if not library.exists():
        code = folder / f"kernel-{digest}-{os.getpid()}.cpp"
        code.write_text(full)
        built = folder / f"kernel-{digest}-{os.getpid()}.so"
        result = subprocess.run(
            [compiler, "-std=c++17", "-O1", "-fno-strict-aliasing", "-shared", "-fPIC",
             "-pthread", "-o", str(built), str(code)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        code.unlink(missing_ok=True)
        if result.returncode != 0:
            raise BackendUnavailableError(
                f"the persistent kernel does not compile for the host: {result.stderr.strip()}"
            )
        os.replace(built, library)  # whole, or not at all, for another process
    return ctypes.CDLL(str(library))


class _Pinned:
    """Pinned host memory the device reaches at the same address."""

    def __init__(self, runtime: Any, nbytes: int) -> None:
        self._runtime = runtime
        self.pointer = int(runtime.hostAlloc(nbytes, runtime.hostAllocMapped))
        ctypes.memset(self.pointer, 0, nbytes)
        self.array = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(self.pointer))

    def free(self) -> None:
        if self.pointer:
            self._runtime.freeHost(self.pointer)
            self.pointer = 0


def _cupy() -> Any:
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(
            "device actors on the GPU need CuPy, which is not installed here "
            "(pip install cupy-cuda13x); device='model' runs them on the host"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver
        raise BackendUnavailableError(
            f"device actors on the GPU: no CUDA driver here ({exc})"
        ) from exc
    if count < 1:
        raise BackendUnavailableError("device actors on the GPU: no CUDA device is visible")
    return cupy
