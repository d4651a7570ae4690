"""Device actors on the host: the guide's calculator as a slot of the kernel's model,
driven through the usual `ActorRuntime` (send, receive, request), restarted by a
supervisor when its heartbeat stops, and its slot deactivated when it ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from waiting import until

from streamnet import ActorRuntime, ChildSpec, Supervisor
from streamnet.persistent.device import (
    DIVIDE,
    DIVIDE_BY_ZERO,
    CalculateRequest,
    CalculateResponse,
    DeviceHeartbeatLost,
    DeviceSlots,
    KernelModel,
    RecordLayout,
    SlotStatistics,
    behaviour,
    calculator,
    device_actor,
)
from streamnet.persistent.device._slots import ACTIVE, DORMANT


def _calculate(state: dict[str, int], request: Any) -> list[Any]:
    """The library's calculator, counting the requests it served."""
    state["served"] += 1
    return list(calculator().step(state, request, ()))


CALCULATOR = behaviour(lambda: {"served": 0}, _calculate)
LAYOUT = RecordLayout([CalculateRequest, CalculateResponse])


def _slots(capacity: int = 8) -> DeviceSlots:
    return DeviceSlots(LAYOUT, 2, capacity)


async def test_the_calculator_answers_sends_and_requests_as_any_actor() -> None:
    slots = _slots()
    with KernelModel(slots, [CALCULATOR, CALCULATOR]):
        async with ActorRuntime() as runtime:
            await runtime.launch("calculator", device_actor(slots, 0))
            await runtime.activate("calculator")
            request = CalculateRequest(10, 5)
            await runtime.send("calculator", request)
            response = await runtime.receive("calculator", timeout=2.0)
            assert (response.success, response.result) == (True, 15.0)
            assert response.correlation_id == request.message_id  # type: ignore[attr-defined]
            zero = await runtime.request("calculator", CalculateRequest(10, 0, DIVIDE), timeout=2.0)
            assert (zero.success, zero.error_code) == (False, DIVIDE_BY_ZERO)
            requests = [CalculateRequest(i, 1) for i in range(40)]  # more than a ring holds
            replies = await asyncio.gather(
                *(runtime.request("calculator", r, timeout=5.0) for r in requests)
            )
            assert [r.result for r in replies] == [i + 1.0 for i in range(40)]
            answered = [p.correlation_id == q.message_id for q, p in zip(requests, replies, strict=True)]  # type: ignore[attr-defined]
            assert all(answered)
            stats = runtime.statistics("calculator")
            assert (stats.messages_in, stats.messages_out) == (42, 42)  # the runtime's count
            device = stats.device  # and the slot's own
            assert isinstance(device, SlotStatistics) and device.heartbeat > 0
            assert (device.slot, device.state, device.resets) == (0, "active", 1)
            assert (device.messages_in, device.messages_out) == (42, 42)
            assert (device.to_kernel, device.to_host) == (0, 0)
            assert slots.state(1) == DORMANT  # only slot 0 runs
        # the runtime ended: the actor deactivated its slot, which the kernel then took
        await until(lambda: slots.state(0) == DORMANT and not slots.pending(0), timeout=5.0)


async def test_pausing_the_actor_pauses_its_slot() -> None:
    slots = _slots()
    with KernelModel(slots, [CALCULATOR, CALCULATOR]):
        async with ActorRuntime() as runtime:
            await runtime.launch("calculator", device_actor(slots, 0, heartbeat_timeout=0.2))
            await runtime.activate("calculator")
            assert (await runtime.request("calculator", CalculateRequest(1, 1), timeout=2.0)).result == 2.0
            await runtime.deactivate("calculator")
            await until(lambda: slots.state(0) == DORMANT and not slots.pending(0), timeout=5.0)
            beat = slots.heartbeat(0)
            await asyncio.sleep(0.4)  # twice the heartbeat timeout: a dormant slot may be silent
            assert slots.heartbeat(0) == beat and runtime.state("calculator") == "inactive"
            await runtime.reactivate("calculator")
            assert (await runtime.request("calculator", CalculateRequest(2, 1), timeout=2.0)).result == 3.0
            assert slots.state(0) == ACTIVE


async def test_a_slot_whose_heartbeat_stops_is_restarted_by_its_supervisor() -> None:
    slots = _slots()
    with KernelModel(slots, [CALCULATOR, CALCULATOR]) as kernel:
        async with ActorRuntime() as runtime:
            spec = ChildSpec("calculator", device_actor(slots, 0, heartbeat_timeout=0.2))
            supervisor = Supervisor(runtime, "sup", [spec], max_restarts=3, max_seconds=30)
            await supervisor.start()  # its children start active
            first = await runtime.request("calculator", CalculateRequest(1, 2), timeout=2.0)
            assert first.result == 3.0 and int(slots.control[0]["resets"]) == 1
            kernel.stall(0)  # stuck on the device: no heartbeat, no reply
            await runtime.send("calculator", CalculateRequest(100, 1))  # waits in the slot's ring
            await until(lambda: len(slots.to_kernel[0]) == 1, timeout=5.0)
            await until(lambda: supervisor.restarts == 1, timeout=10.0)
            await until(lambda: runtime.state("calculator") == "active", timeout=5.0)
            again = await runtime.request("calculator", CalculateRequest(2, 2), timeout=2.0)
            assert again.result == 4.0
            assert int(slots.control[0]["resets"]) == 2  # the new instance reset the slot
            assert kernel.states[0]["served"] == 1  # its state began anew, without the stale request


async def test_a_slot_the_kernel_never_serves_fails_its_actor_naming_the_slot() -> None:
    slots = _slots()  # no kernel runs: the reset is never taken
    async with ActorRuntime() as runtime:
        await runtime.launch("calculator", device_actor(slots, 1, heartbeat_timeout=0.1))
        await runtime.activate("calculator")
        await until(lambda: runtime.state("calculator") == "failed", timeout=5.0)
        failure = runtime.failure("calculator")
        assert isinstance(failure, DeviceHeartbeatLost)
        assert "device slot 1: the kernel did not take command" in str(failure)


def test_bad_arguments_are_named() -> None:
    slots = _slots()
    with pytest.raises(ValueError, match=r"`slot` must be in 0..1, got 2"):
        device_actor(slots, 2)
    with pytest.raises(ValueError, match="`heartbeat_timeout` must be > 0"):
        device_actor(slots, 0, heartbeat_timeout=0)
    with pytest.raises(ValueError, match="2 slots need as many behaviours, got 1"):
        KernelModel(slots, [CALCULATOR])
    with pytest.raises(ValueError, match="`slots` must be an int >= 1"):
        DeviceSlots(LAYOUT, 0, 8)
