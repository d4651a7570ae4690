"""Persistent actors: the 'Building Actors' calculator tests, lifecycle, mailboxes, requests."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest
from waiting import until

from streamnet import ActorRuntime as RingKernelRuntime
from streamnet import ActorStateError, MailboxFull

# The guide's names, with only the imports changed:
from streamnet import PersistentActorContext as KernelContext
from streamnet import persistent_actor as ring_kernel
from streamnet import persistent_message as message


# `@message` adds `message_id`, `priority`, `correlation_id` and `reply` when the class is
# made; a type checker does not see what a class decorator adds, hence the ignores below.
@message
@dataclass
class CalculateRequest:
    a: float
    b: float
    operation: str = "add"


@message
@dataclass
class CalculateResponse:
    result: float
    success: bool = True
    error: str | None = None
    error_code: str | None = None


def calculate(a: float, b: float, operation: str) -> float:
    if operation == "add":
        return a + b
    if operation == "div":
        return a / b
    raise ValueError(f"unknown operation {operation!r}")


@ring_kernel(kernel_id="calculator")
async def calculator(ctx: KernelContext) -> None:
    while not ctx.should_terminate:
        if not ctx.is_active:
            await ctx.wait_active()
            continue
        try:
            request = await ctx.receive(timeout=0.1)
            try:
                result = calculate(request.a, request.b, request.operation)
                await ctx.send(
                    CalculateResponse(  # type: ignore[call-arg]
                        result=result, success=True, correlation_id=request.message_id
                    )
                )
            except ZeroDivisionError:
                await ctx.send(
                    CalculateResponse(  # type: ignore[call-arg]
                        result=0.0,
                        success=False,
                        error="Division by zero",
                        error_code="DIVIDE_BY_ZERO",
                        correlation_id=request.message_id,
                    )
                )
            except ValueError as e:
                await ctx.send(
                    CalculateResponse(  # type: ignore[call-arg]
                        result=0.0,
                        success=False,
                        error=str(e),
                        error_code="INVALID_INPUT",
                        correlation_id=request.message_id,
                    )
                )
        except TimeoutError:
            continue


# --- the guide's two tests, as written ---------------------------------------
# Save that they wait for nothing after `activate`: the guide sleeps 0.1 s there for the
# kernel to start, but the inbox holds a request until the kernel takes it.
@pytest.mark.asyncio
async def test_calculator_add() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("calculator", calculator)
        await runtime.activate("calculator")
        # Send request
        request = CalculateRequest(a=10, b=5, operation="add")
        await runtime.send("calculator", request)
        # Verify response
        response = await runtime.receive("calculator", timeout=1.0)
        assert response.success
        assert response.result == 15.0
        assert response.correlation_id == request.message_id  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_calculator_divide_by_zero() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("calculator", calculator)
        await runtime.activate("calculator")
        request = CalculateRequest(a=10, b=0, operation="div")
        await runtime.send("calculator", request)
        response = await runtime.receive("calculator", timeout=1.0)
        assert not response.success
        assert response.error_code == "DIVIDE_BY_ZERO"


# --- requests ----------------------------------------------------------------
async def test_interleaved_requests_each_get_their_own_reply() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("calculator", calculator)
        await runtime.activate("calculator")
        requests = [CalculateRequest(a=i, b=1) for i in range(20)]
        replies = await asyncio.gather(
            *(runtime.request("calculator", r, timeout=2) for r in requests)
        )
        assert [r.result for r in replies] == [i + 1 for i in range(20)]
        assert all(
            rep.correlation_id == req.message_id  # type: ignore[attr-defined]
            for req, rep in zip(requests, replies, strict=True)
        )


async def test_request_returns_the_matching_reply_not_the_next_message() -> None:
    @message
    @dataclass
    class Note:
        text: str

    async def chatty(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                request = await ctx.receive(timeout=0.1)
            except TimeoutError:
                continue
            await ctx.send(Note("unrelated news"))  # not a reply
            await ctx.send(request.reply(Note("the answer")))

    async with RingKernelRuntime() as runtime:
        await runtime.launch("chatty", chatty)
        await runtime.activate("chatty")
        reply = await runtime.request("chatty", Note("question"), timeout=2)
        assert reply.text == "the answer"
        assert (await runtime.receive("chatty", timeout=1)).text == "unrelated news"


async def test_request_times_out_with_the_standard_error() -> None:
    async def silent(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                await ctx.receive(timeout=0.1)
            except TimeoutError:
                continue

    async with RingKernelRuntime() as runtime:
        await runtime.launch("silent", silent)
        await runtime.activate("silent")
        with pytest.raises(TimeoutError):
            await runtime.request("silent", CalculateRequest(a=1, b=2), timeout=0.2)
        with pytest.raises(TypeError, match="message_id"):
            await runtime.request("silent", "not a message", timeout=0.2)


async def test_a_failing_actor_is_recorded_logged_and_fails_pending_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fragile(ctx: KernelContext) -> None:
        await ctx.receive()
        raise RuntimeError("lost my state")

    async with RingKernelRuntime() as runtime:
        await runtime.launch("fragile", fragile)
        await runtime.activate("fragile")
        with (
            caplog.at_level(logging.ERROR, logger="streamnet"),
            pytest.raises(RuntimeError, match="lost my state"),
        ):
            await runtime.request("fragile", CalculateRequest(a=1, b=1), timeout=2)
        assert runtime.state("fragile") == "failed"
        assert isinstance(runtime.failure("fragile"), RuntimeError)
        assert any("persistent actor fragile failed" in r.getMessage() for r in caplog.records)


# --- lifecycle ----------------------------------------------------------------
async def test_lifecycle_states_and_illegal_transitions() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("calc", calculator)
        assert runtime.state("calc") == "launched"
        with pytest.raises(ActorStateError, match="cannot reactivate actor `calc`: it is launched"):
            await runtime.reactivate("calc")
        await runtime.activate("calc")
        assert runtime.state("calc") == "active"
        with pytest.raises(ActorStateError, match="activate needs it launched"):
            await runtime.activate("calc")
        await runtime.deactivate("calc")
        assert runtime.state("calc") == "inactive"
        await runtime.reactivate("calc")
        await runtime.terminate("calc", timeout=1)
        assert runtime.state("calc") == "terminated"
        with pytest.raises(ActorStateError, match="it is terminated"):
            await runtime.send("calc", CalculateRequest(a=1, b=1))
        with pytest.raises(KeyError, match="no actor `nope`"):
            runtime.state("nope")
        with pytest.raises(TypeError, match="async def"):
            await runtime.launch("sync", lambda ctx: None)  # type: ignore[arg-type, return-value]


async def test_deactivated_actor_receives_nothing_until_reactivated() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("calc", calculator)
        await runtime.activate("calc")
        await runtime.deactivate("calc")
        await runtime.send("calc", CalculateRequest(a=2, b=2))
        with pytest.raises(TimeoutError):
            await runtime.receive("calc", timeout=0.3)
        await runtime.reactivate("calc")
        assert (await runtime.receive("calc", timeout=1)).result == 4


async def test_terminate_is_prompt_and_cancels_an_actor_that_ignores_it() -> None:
    async def stubborn(ctx: KernelContext) -> None:
        await asyncio.Event().wait()  # never looks at should_terminate

    async with RingKernelRuntime() as runtime:
        await runtime.launch("calc", calculator)
        await runtime.activate("calc")
        await runtime.launch("stubborn", stubborn)
        async with asyncio.timeout(2):
            await runtime.terminate("calc", timeout=1)  # wakes from receive at once
            await runtime.terminate("stubborn", timeout=0.2)
        assert runtime.state("stubborn") == "terminated"


# --- mailboxes ------------------------------------------------------------------
async def test_higher_priority_first_fifo_within_a_priority() -> None:
    all_seen = asyncio.Event()

    async def recorder(ctx: KernelContext, seen: list[float]) -> None:
        await ctx.wait_active()
        while not ctx.should_terminate:
            try:
                seen.append((await ctx.receive(timeout=0.1)).a)
            except TimeoutError:
                continue
            if len(seen) == 5:
                all_seen.set()

    seen: list[float] = []
    async with RingKernelRuntime() as runtime:
        await runtime.launch("rec", recorder, seen)
        for a, priority in [(1, 10), (2, 200), (3, 10), (4, 200), (5, 128)]:
            await runtime.send("rec", CalculateRequest(a=a, b=0, priority=priority))  # type: ignore[call-arg]
        await runtime.activate("rec")
        await asyncio.wait_for(all_seen.wait(), 2)
    assert seen == [2, 4, 5, 1, 3]


async def test_overflow_policies() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("reject", calculator, mailbox_capacity=2, overflow="reject")
        await runtime.send("reject", CalculateRequest(a=1, b=1))
        await runtime.send("reject", CalculateRequest(a=2, b=1))
        with pytest.raises(MailboxFull, match="reject.inbox` is full"):
            await runtime.send("reject", CalculateRequest(a=3, b=1))

        await runtime.launch("drop", calculator, mailbox_capacity=2, overflow="drop_oldest")
        for a in range(4):
            await runtime.send("drop", CalculateRequest(a=a, b=1))
        assert [m.a for m in runtime.dead_letters("drop")] == [0, 1]

        await runtime.launch("block", calculator, mailbox_capacity=1)
        await runtime.send("block", CalculateRequest(a=1, b=1))
        blocked = asyncio.ensure_future(runtime.send("block", CalculateRequest(a=2, b=1)))
        await until(lambda: runtime.statistics("block").inbox.waiting_senders == 1)
        assert not blocked.done()
        await runtime.activate("block")
        await asyncio.wait_for(blocked, 2)


def test_message_fields_and_priority_validation() -> None:
    request = CalculateRequest(a=1, b=2)
    assert request.priority == 128  # type: ignore[attr-defined]
    assert request.correlation_id is None  # type: ignore[attr-defined]
    assert request.message_id != CalculateRequest(a=1, b=2).message_id  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="`priority` must be an int in 0..255, got 300"):
        CalculateRequest(a=1, b=2, priority=300)  # type: ignore[call-arg]
    reply = request.reply(CalculateResponse(result=3.0))  # type: ignore[attr-defined]
    assert reply.correlation_id == request.message_id  # type: ignore[attr-defined]


# --- actors talking to actors -----------------------------------------------------
async def test_actors_send_by_id_and_children_stop_before_parents() -> None:
    order: list[str] = []

    async def doubler(ctx: KernelContext) -> None:
        try:
            while not ctx.should_terminate:
                try:
                    req = await ctx.receive(timeout=0.1)
                except TimeoutError:
                    continue
                await ctx.send_to(
                    "front",
                    CalculateResponse(result=req.a * 2, correlation_id=req.message_id),  # type: ignore[call-arg]
                )
        finally:
            order.append("doubler")

    async def front(ctx: KernelContext) -> None:
        await ctx.spawn("doubler", doubler)
        try:
            while not ctx.should_terminate:
                try:
                    msg = await ctx.receive(timeout=0.1)
                except TimeoutError:
                    continue
                if isinstance(msg, CalculateRequest):
                    await ctx.send_to("doubler", msg)
                else:
                    await ctx.send(msg)
        finally:
            order.append("front")

    async with RingKernelRuntime() as runtime:
        await runtime.launch("front", front)
        await runtime.activate("front")
        reply = await runtime.request("front", CalculateRequest(a=21, b=0), timeout=2)
        assert reply.result == 42
        assert runtime.state("doubler") == "active"
    assert order == ["doubler", "front"]


# --- timeouts, late replies, termination, statistics ------------------------------
async def test_request_timeout_covers_a_send_blocked_on_a_full_inbox() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("calc", calculator, mailbox_capacity=1)  # launched: reads nothing
        await runtime.send("calc", CalculateRequest(a=1, b=1))  # the inbox is full now
        async with asyncio.timeout(5):  # a hang shows as this timeout, without the text below
            with pytest.raises(TimeoutError, match=r"actor `calc` did not reply within 0.2 s"):
                await runtime.request("calc", CalculateRequest(a=2, b=1), timeout=0.2)
            with pytest.raises(TimeoutError, match=r"mailbox `calc.inbox` stayed full"):
                await runtime.send("calc", CalculateRequest(a=3, b=1), timeout=0.1)
        assert runtime.statistics("calc").inbox.size == 1  # a send that timed out delivers nothing


async def test_replies_after_their_request_timed_out_are_dropped_and_counted() -> None:
    @message
    @dataclass
    class Note:
        text: str

    release = asyncio.Event()

    async def slow(ctx: KernelContext) -> None:
        while not ctx.should_terminate:
            try:
                msg = await ctx.receive(timeout=0.1)
            except TimeoutError:
                continue
            if msg.text == "slow":
                await release.wait()
                await ctx.send(msg.reply(Note("too late")))
            else:
                await ctx.send(Note(f"news after {msg.text}"))

    async with RingKernelRuntime() as runtime:
        await runtime.launch("slow", slow)
        await runtime.activate("slow")
        with pytest.raises(TimeoutError, match="did not reply within 0.1 s"):
            await runtime.request("slow", Note("slow"), timeout=0.1)
        release.set()
        await runtime.send("slow", Note("fast"))  # answered after the late reply was sent
        assert (await runtime.receive("slow", timeout=2)).text == "news after fast"
        assert runtime.statistics("slow").late_replies == 1
        assert runtime.statistics("slow").outbox.size == 0


async def test_terminate_ends_an_actor_waiting_in_receive_without_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    got = asyncio.Event()

    async def plain(ctx: KernelContext) -> None:
        while True:
            msg = await ctx.receive()  # no timeout: the shortest actor idiom
            seen.append(msg.operation)
            got.set()

    caplog.set_level(logging.DEBUG, logger="streamnet")
    async with RingKernelRuntime() as runtime:
        await runtime.launch("plain", plain)
        await runtime.activate("plain")
        await runtime.send("plain", CalculateRequest(a=1, b=1, operation="first"))
        async with asyncio.timeout(3):  # shorter than the grace period: no cancellation
            await got.wait()  # back in receive, waiting with no timeout
            await runtime.terminate("plain", timeout=5)
        assert runtime.state("plain") == "terminated"
        assert runtime.failure("plain") is None
    assert seen == ["first"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_statistics_is_a_frozen_record_with_the_mailboxes() -> None:
    import dataclasses

    from streamnet import MailboxStatistics, PersistentActorStatistics

    async with RingKernelRuntime() as runtime:
        await runtime.launch("calc", calculator, mailbox_capacity=4)
        await runtime.activate("calc")
        for a in range(3):
            await runtime.request("calc", CalculateRequest(a=a, b=1), timeout=2)
        await runtime.send("calc", CalculateRequest(a=9, b=1))
        await runtime.receive("calc", timeout=2)
        stats = runtime.statistics("calc")
    assert isinstance(stats, PersistentActorStatistics)
    assert (stats.actor_id, stats.messages_in, stats.messages_out, stats.launches) == (
        "calc", 4, 4, 1,
    )  # fmt: skip
    assert isinstance(stats.inbox, MailboxStatistics)
    assert (stats.inbox.name, stats.inbox.capacity, stats.inbox.delivered) == ("calc.inbox", 4, 4)
    assert (stats.outbox.size, stats.late_replies, stats.inbox.dead_letters) == (0, 0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.messages_in = 0  # type: ignore[misc]


# --- nothing waits on an actor that ended for good ----------------------------------
@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("how", "state"), [("terminate", "terminated"), ("return", "terminated"), ("raise", "failed")]
)
async def test_a_send_blocked_on_a_full_inbox_fails_when_the_actor_ends(
    how: str, state: str
) -> None:
    release = asyncio.Event()

    async def holder(ctx: KernelContext) -> None:
        await ctx.receive()  # holds this message until released; the inbox fills up
        await release.wait()
        if how == "raise":
            raise RuntimeError("gave up")

    async with RingKernelRuntime() as runtime:
        await runtime.launch("h", holder, mailbox_capacity=1)
        await runtime.activate("h")
        await runtime.send("h", CalculateRequest(a=1, b=1))
        await until(lambda: runtime.statistics("h").messages_in == 1)
        await runtime.send("h", CalculateRequest(a=2, b=1))  # the inbox is full now
        blocked = asyncio.ensure_future(runtime.send("h", CalculateRequest(a=3, b=1)))
        await until(lambda: runtime.statistics("h").inbox.waiting_senders == 1)
        if how == "terminate":
            stop = asyncio.ensure_future(runtime.terminate("h", timeout=60))
            await until(lambda: runtime.state("h") == "terminating")
        release.set()
        async with asyncio.timeout(5):  # a hang shows as this timeout, not as the error below
            with pytest.raises(
                ActorStateError,
                match=rf"cannot send to actor `h`: it ended while the send waited for room, and "
                rf"nothing was sent \(mailbox `h.inbox` is closed: actor `h` is {state}\)",
            ):
                await blocked
            if how == "terminate":
                await stop
        assert runtime.state("h") == state
        with pytest.raises(ActorStateError, match=f"cannot send to actor `h`: it is {state}"):
            await runtime.send("h", CalculateRequest(a=4, b=1))
        stats = runtime.statistics("h").inbox
        assert (stats.size, stats.closed, stats.waiting_senders) == (1, True, 0)


@pytest.mark.timeout(20)
async def test_host_receive_gets_what_an_ended_actor_sent_then_fails_instead_of_waiting() -> None:
    async def farewell(ctx: KernelContext) -> None:
        await ctx.receive()
        await ctx.send("bye")

    async with RingKernelRuntime() as runtime:
        await runtime.launch("f", farewell)
        await runtime.activate("f")
        waiting = asyncio.ensure_future(runtime.receive("f"))  # no timeout
        await until(lambda: runtime.statistics("f").outbox.waiting_receivers == 1)
        await runtime.send("f", "go")
        async with asyncio.timeout(5):
            assert await waiting == "bye"
            await until(lambda: runtime.state("f") == "terminated")
            with pytest.raises(
                ActorStateError,
                match=r"cannot receive from actor `f`: it ended, and every message it sent was "
                r"received \(mailbox `f.outbox` is closed: actor `f` is terminated\)",
            ):
                await runtime.receive("f")  # no timeout: it must not wait forever

        await runtime.launch("g", farewell)  # a receive blocked before the end is woken too
        await runtime.activate("g")
        waiting = asyncio.ensure_future(runtime.receive("g"))
        await until(lambda: runtime.statistics("g").outbox.waiting_receivers == 1)
        async with asyncio.timeout(5):
            await runtime.terminate("g", timeout=60)  # it waits in receive: a clean stop
            with pytest.raises(ActorStateError, match="actor `g` is terminated"):
                await waiting


async def test_an_actor_relaunched_under_the_same_id_gets_its_mailboxes_open_again() -> None:
    async with RingKernelRuntime() as runtime:
        await runtime.launch("calc", calculator)
        await runtime.activate("calc")
        await runtime.terminate("calc", timeout=5)
        assert runtime.statistics("calc").inbox.closed
        await runtime.launch("calc", calculator)
        await runtime.activate("calc")
        await runtime.send("calc", CalculateRequest(a=20, b=22))
        assert (await runtime.receive("calc", timeout=2)).result == 42
        assert runtime.statistics("calc").launches == 2


# --- spawned children are linked to their parent -------------------------------------
@pytest.mark.timeout(20)
@pytest.mark.parametrize("how", ["terminate", "return", "raise"])
async def test_spawned_children_are_terminated_before_their_parent_ends(how: str) -> None:
    stopped: list[tuple[str, str]] = []  # (who stopped, the state of its parent then)

    async def leaf(ctx: KernelContext, parent: str) -> None:
        try:
            while True:
                await ctx.receive()
        finally:
            stopped.append((ctx.actor_id, runtime.state(parent)))

    async def kid(ctx: KernelContext) -> None:
        await ctx.spawn("grandkid", leaf, "kid")
        await leaf(ctx, "parent")

    async def parent(ctx: KernelContext) -> None:
        await ctx.spawn("kid", kid)
        await ctx.spawn("sibling", leaf, "parent")
        try:
            await ctx.receive()  # terminating it ends this wait cleanly
            if how == "raise":
                raise RuntimeError("parent crashed")
        finally:
            stopped.append(("parent", "-"))

    async with RingKernelRuntime(shutdown_timeout=60) as runtime:  # no cancellation needed
        await runtime.launch("parent", parent)
        await runtime.activate("parent")
        await until(lambda: len(runtime.actor_ids) == 4)
        async with asyncio.timeout(5):
            if how == "terminate":
                await runtime.terminate("parent")
            else:
                await runtime.send("parent", "go")
                await until(lambda: runtime.state("parent") in ("terminated", "failed"))
        children = [(who, state) for who, state in stopped if who != "parent"]
        # newest first, each before the one that spawned it ended
        assert children == [("sibling", "active"), ("grandkid", "active"), ("kid", "active")]
        assert [runtime.state(a) for a in ("kid", "grandkid", "sibling")] == ["terminated"] * 3
        assert runtime.state("parent") == ("failed" if how == "raise" else "terminated")
        if how == "terminate":
            assert stopped[-1] == ("parent", "-")  # asked to stop only once they are gone
