"""Device actors placed by the runtime: ``launch(..., device=...)`` with a library
behaviour, on the kernel's Python model, on the kernel's CUDA source compiled for the
host (a thread per slot), and on the GPU where there is one. The guide's calculator
tests with only the launch changed, a counter's state across messages and restarts, a
chain of actors through kernel-to-kernel rings, lifecycle, heartbeat supervision, the
kernel stopped at shutdown, and what is refused."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import until

from streamnet import (
    ActorRuntime,
    BackendUnavailableError,
    ChildSpec,
    Supervisor,
    persistent_message,
)
from streamnet.persistent.device import (
    ADD,
    DECREMENT,
    DIVIDE,
    DIVIDE_BY_ZERO,
    INCREMENT,
    INVALID_INPUT,
    MULTIPLY,
    RESET_COUNT,
    STALL,
    SUBTRACT,
    CalculateRequest,
    CounterRequest,
    CounterResponse,
    DeviceBehaviour,
    DeviceHeartbeatLost,
    Sample,
    SlotStatistics,
    WindowSum,
    calculator,
    counter,
    forwarder,
    stalling,
    windowed_sum,
)
from streamnet.persistent.device._kernels import _cupy, host_compiler
from streamnet.persistent.device._proxy import MISSES_PER_TIMEOUT

DEVICES = ["model", "host", pytest.param("gpu", marks=pytest.mark.gpu)]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    try:
        if name == "gpu":
            _cupy()
        if name == "host":
            host_compiler()
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    return name


def _slot(runtime: ActorRuntime, actor_id: str) -> SlotStatistics:
    stats = runtime.statistics(actor_id).device
    assert isinstance(stats, SlotStatistics)
    return stats


async def _started(runtime: ActorRuntime, actor_id: str, behaviour: Any, device: str) -> None:
    await runtime.launch(actor_id, behaviour, device=device)
    await runtime.activate(actor_id)


# ------------------------------------------------------------------ the guide's calculator
async def test_calculator_add(device: str) -> None:
    async with ActorRuntime() as runtime:
        await runtime.launch("calculator", calculator(), device=device)
        await runtime.activate("calculator")
        request = CalculateRequest(a=10, b=5, operation=ADD)
        await runtime.send("calculator", request)
        response = await runtime.receive("calculator", timeout=2.0)
        assert response.success and response.result == 15
        assert response.correlation_id == request.message_id  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("a", "b", "operation", "result", "success", "error"),
    [
        (10, 5, SUBTRACT, 5.0, True, 0),
        (10, 5, MULTIPLY, 50.0, True, 0),
        (10, 4, DIVIDE, 2.5, True, 0),
        (10, 0, DIVIDE, 0.0, False, DIVIDE_BY_ZERO),
        (10, 5, 99, 0.0, False, INVALID_INPUT),
    ],
)
async def test_calculator_operations_and_errors(
    device: str, a: float, b: float, operation: int, result: float, success: bool, error: int
) -> None:
    async with ActorRuntime() as runtime:
        await _started(runtime, "calculator", calculator(), device)
        response = await runtime.request(
            "calculator", CalculateRequest(a, b, operation), timeout=2.0
        )
        assert (response.result, response.success, response.error_code) == (result, success, error)


async def test_more_requests_in_flight_than_a_ring_holds(device: str) -> None:
    async with ActorRuntime() as runtime:
        await _started(runtime, "calculator", calculator(), device)
        requests = [CalculateRequest(i, 1) for i in range(300)]  # rings hold 64
        replies = await asyncio.gather(
            *(runtime.request("calculator", r, timeout=10.0) for r in requests)
        )
        assert [r.result for r in replies] == [i + 1.0 for i in range(300)]
        stats = _slot(runtime, "calculator")
        assert (stats.messages_in, stats.messages_out) == (300, 300)
        assert stats.state == "active" and stats.heartbeat > 0


# ------------------------------------------------------------------ state, chains
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(actions=st.lists(st.sampled_from([INCREMENT, DECREMENT, RESET_COUNT]), max_size=30))
def test_a_counter_keeps_its_state_across_messages(device: str, actions: list[int]) -> None:
    expected, count = [], 0
    for action in actions:
        count = count + 1 if action == INCREMENT else count - 1 if action == DECREMENT else 0
        expected.append(count)

    async def run() -> list[int]:
        async with ActorRuntime() as runtime:
            await _started(runtime, "counter", counter(), device)
            return [
                (await runtime.request("counter", CounterRequest(a), timeout=2.0)).count
                for a in actions
            ]

    assert asyncio.run(asyncio.wait_for(run(), 30)) == expected


async def test_a_chain_of_forwarders_feeds_a_windowed_sum_on_the_device(device: str) -> None:
    async with ActorRuntime() as runtime:
        await _started(runtime, "sum", windowed_sum(4), device)
        previous = "sum"
        for i in range(7):  # a chain of 8 actors, the last one summing
            await _started(runtime, f"hop{i}", forwarder(previous), device)
            previous = f"hop{i}"
        values = [float(v) for v in range(100)]  # more than a ring holds, through every hop
        for value in values:
            await runtime.send(previous, Sample(value))
        sums = [await runtime.receive("sum", timeout=5.0) for _ in range(25)]
        assert [s.total for s in sums] == [sum(values[i : i + 4]) for i in range(0, 100, 4)]
        assert [(s.count, s.window) for s in sums] == [(4, i) for i in range(1, 26)]
        assert all(isinstance(s, WindowSum) for s in sums)
        hop = _slot(runtime, "hop3")
        assert (hop.messages_in, hop.messages_out) == (100, 100)


# ------------------------------------------------------------------ lifecycle, supervision
async def test_pausing_and_ending_the_actor_pauses_its_slot(device: str) -> None:
    async with ActorRuntime() as runtime:
        await _started(runtime, "counter", counter(), device)
        assert (await runtime.request("counter", CounterRequest(), timeout=2.0)).count == 1
        await runtime.deactivate("counter")
        await until(lambda: _slot(runtime, "counter").state == "dormant", timeout=5.0)
        await runtime.reactivate("counter")
        assert (await runtime.request("counter", CounterRequest(), timeout=2.0)).count == 2
        await runtime.terminate("counter")
        await until(lambda: _slot(runtime, "counter").state == "dormant", timeout=5.0)


STALL_ACTION = 99


def _count_or_stall(state: dict[str, int], request: Any, params: tuple[Any, ...]) -> list[Any]:
    if request.action == STALL_ACTION:
        return [STALL]
    state["count"] += 1
    return [CounterResponse(state["count"])]


STALLING_COUNTER = DeviceBehaviour(
    "stalling_counter",
    (CounterRequest, CounterResponse),
    """
    if (sn_i64(in, SN_FIELD_CounterRequest_action) == 99) { sn_stall(out); return; }
    state[0] += 1;
    Record& r = sn_reply(out, SN_TYPE_CounterResponse, in);
    sn_set_i64(r, SN_FIELD_CounterResponse_count, state[0]);
""",
    _count_or_stall,
    lambda params: {"count": 0},
)


async def test_a_stalled_device_actor_is_restarted_by_its_supervisor_with_fresh_state(
    device: str,
) -> None:
    async with ActorRuntime(device_behaviours=[STALLING_COUNTER]) as runtime:
        spec = ChildSpec("counter", STALLING_COUNTER, device=device, heartbeat_timeout=0.2)
        supervisor = Supervisor(runtime, "sup", [spec], max_restarts=5, max_seconds=30)
        await supervisor.start()
        for expected in (1, 2):
            assert (
                await runtime.request("counter", CounterRequest(), timeout=2.0)
            ).count == expected
        await runtime.send("counter", CounterRequest(STALL_ACTION))  # stuck: no heartbeat
        await until(lambda: supervisor.restarts == 1, timeout=10.0)
        await until(lambda: _slot(runtime, "counter").resets == 2, timeout=5.0)  # reset anew
        assert (await runtime.request("counter", CounterRequest(), timeout=2.0)).count == 1
        stats = _slot(runtime, "counter")
        assert stats.state == "active"
        assert stats.heartbeats_missed >= MISSES_PER_TIMEOUT  # all of them, before it failed


async def test_a_failed_device_actor_names_its_slot_and_silence(device: str) -> None:
    async with ActorRuntime() as runtime:
        await runtime.launch("stuck", stalling(), device=device, heartbeat_timeout=0.1)
        await runtime.activate("stuck")
        await runtime.send("stuck", Sample(1.0))
        await until(lambda: runtime.state("stuck") == "failed", timeout=5.0)
        failure = runtime.failure("stuck")
        assert isinstance(failure, DeviceHeartbeatLost)
        assert "device slot 0: no heartbeat for 0.1 s" in str(failure)


async def test_shutdown_stops_the_kernel(device: str) -> None:
    runtime = ActorRuntime()
    await _started(runtime, "counter", counter(), device)
    kernel = runtime.device_kernel(device)
    assert kernel is not None and kernel.running
    await runtime.shutdown()
    assert runtime.device_kernel(device) is None and not kernel.running


# ------------------------------------------------------------------ a behaviour of one's own
@persistent_message
@dataclass
class Scaled:
    value: float


def scaler(factor: float) -> DeviceBehaviour:
    return DeviceBehaviour(
        "scaler",
        (Sample, Scaled),
        """
    Record& r = sn_reply(out, SN_TYPE_Scaled, in);
    sn_set_f64(r, SN_FIELD_Scaled_value, sn_f64(in, SN_FIELD_Sample_value) * __longlong_as_double(params[0]));
""",
        lambda state, sample, params: [Scaled(sample.value * params[0])],
        params=(factor,),
    )


async def test_a_behaviour_of_ones_own_runs_beside_the_library(device: str) -> None:
    async with ActorRuntime(device_behaviours=[scaler(1.0)]) as runtime:
        await _started(runtime, "half", scaler(0.5), device)
        await _started(runtime, "calculator", calculator(), device)
        assert (await runtime.request("half", Sample(3.0), timeout=2.0)).value == 1.5
        assert (
            await runtime.request("calculator", CalculateRequest(1, 2), timeout=2.0)
        ).result == 3.0


# ------------------------------------------------------------------ refused
async def test_what_cannot_be_placed_is_refused_naming_it() -> None:
    async with ActorRuntime(device_slots=2) as runtime:
        with pytest.raises(
            ValueError, match=r"device must be one of \['gpu', 'host', 'model'\]; got 'tpu'"
        ):
            await runtime.launch("a", calculator(), device="tpu")
        with pytest.raises(TypeError, match="needs a DeviceBehaviour"):
            await runtime.launch("a", calculator, device="model")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="takes its parameters when made"):
            await runtime.launch("a", calculator(), 1, device="model")
        with pytest.raises(ValueError, match="names `nobody`, which is not a device actor"):
            await runtime.launch("a", forwarder("nobody"), device="model")
        await runtime.launch("a", calculator(), device="model")
        with pytest.raises(ValueError, match="list your own behaviours in"):
            await runtime.launch("b", scaler(2.0), device="model")  # the kernel started without it
        await runtime.launch("b", counter(), device="model")
        with pytest.raises(ValueError, match="all 2 slots of the model kernel are taken"):
            await runtime.launch("c", counter(), device="model")
    with pytest.raises(ValueError, match="`window` must be an int >= 1"):
        windowed_sum(0)
    with pytest.raises(ValueError, match="`name` must be an identifier"):
        DeviceBehaviour("a b", (Sample,), "", lambda s, m, p: [])


def test_a_behaviour_that_does_not_compile_for_the_host_shows_the_compiler() -> None:
    try:
        host_compiler()
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    broken = DeviceBehaviour("broken", (Sample,), "this is not C++;", lambda s, m, p: [])

    async def run() -> None:
        async with ActorRuntime(device_behaviours=[broken]) as runtime:
            await runtime.launch("broken", broken, device="host")

    with pytest.raises(BackendUnavailableError, match="does not compile for the host"):
        asyncio.run(asyncio.wait_for(run(), 60))


async def test_two_runtimes_keep_kernels_of_their_own(device: str) -> None:
    async with ActorRuntime() as first, ActorRuntime() as second:
        await _started(first, "counter", counter(), device)
        await _started(second, "counter", counter(), device)
        for _ in range(3):
            await first.request("counter", CounterRequest(), timeout=2.0)
        await first.shutdown()  # stops its kernel only
        assert (await second.request("counter", CounterRequest(), timeout=2.0)).count == 1


def test_a_kernel_dropped_without_closing_is_stopped_before_its_memory_goes(device: str) -> None:
    """Its threads (or blocks) must not read freed memory: collecting the kernel object
    stops it first."""
    import gc
    import weakref

    from streamnet.persistent.device._placement import DevicePlacement

    placement = DevicePlacement(slots=2)
    placement.actor("counter", counter(), device, None)
    kernel = placement.kernels.pop(device)
    assert kernel.running
    gone = weakref.ref(kernel)
    finalizer = kernel._finalizer  # type: ignore[attr-defined]  # noqa: SLF001
    del kernel, placement
    gc.collect()
    assert gone() is None and not finalizer.alive  # stopped, its resources freed
