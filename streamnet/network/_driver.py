"""The driver: one run of a network, from its actors' tasks to its commit steps.

`NetworkDriver.run` starts every actor as a task of the running loop and supervises
them. Every `CHECK_INTERVAL` seconds it looks at the actors (`NetworkDriver.look`:
deadlock and stall, see ``_liveness.py``). The first failure (an actor's, a
deadlock, a commit step's, or another rank's) aborts every channel, tells the other
ranks, and cancels the other actors, which get ``cancel_grace`` seconds to stop,
twice. The run then commits what its actors staged, or aborts it, and raises the
first failure with notes naming the others.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from channels import Channel, ChannelAborted, ChannelBroken, StreamnetError
from channels.lowlevel import observe
from streamnet._actor import ActorNode, set_current_actor
from streamnet._collective import Collective
from streamnet._context import Context
from streamnet._errors import RemoteRankError
from streamnet._typing import NetworkState
from streamnet.network._fusion import Fusion
from streamnet.network._liveness import CHECK_INTERVAL, Watch, blocked_calls, deadlock, stall
from streamnet.network._loop_monitor import attach
from streamnet.network._on_success import CommitSteps
from streamnet.network._ranks import check_ranks_agree, fingerprint
from streamnet.network._restart import call_with_restarts
from streamnet.network._unread import check_inputs_read, watch_late_sends
from streamnet.observe._logging import logger
from streamnet.observe._statistics import ActorRecorder

__all__ = ["NetworkDriver"]


class NetworkDriver:
    """Runs the actors of one network, once (see the module).

    ``owner`` is the Network: the key of the files its run spills.
    """

    def __init__(
        self,
        owner: object,
        ctx: Context,
        name: str,
        actors: Sequence[ActorNode],
        channels: Sequence[Channel[Any]],
        producers: dict[Channel[Any], list[ActorNode]],
        consumers: dict[Channel[Any], list[ActorNode]],
        commits: CommitSteps,
        fusion: Fusion | None = None,
    ) -> None:
        self.owner = owner
        self.ctx = ctx
        self.name = name
        self.fusion = fusion = fusion if fusion is not None else Fusion()
        self.actors = actors
        # The channels inside fused chains carry nothing: liveness and unread checks skip
        # them, and a chain's output is produced by its head.
        self.channels = [c for c in channels if c not in fusion.inner]
        self.producers = {c: nodes for c, nodes in producers.items() if c not in fusion.inner}
        self.consumers = {c: nodes for c, nodes in consumers.items() if c not in fusion.inner}
        for head, rebound in fusion.outputs.items():
            for channel in rebound.values():
                self.producers[channel] = [head]
        if ctx.nranks > 1:
            # A collective's peers wait for its every step: when its consumers here need
            # no more, it runs on to its end, what it sends dropped (as a pipe's reader
            # leaving would otherwise end it on this rank only, and hang the others).
            for channel, nodes in self.producers.items():
                if any(node.definition.collective for node in nodes):
                    channel.discards_after_shutdown = True
        self.commits = commits  # what actors publish once the run succeeded
        self.state: NetworkState = "built"
        self.recorders: dict[str, ActorRecorder] = {}
        self.failures: list[tuple[ActorNode | None, BaseException]] = []
        self.tasks: dict[asyncio.Task[None], ActorNode] = {}
        self.run_id: int | None = None  # this run's number, the same on every rank
        self.watched: dict[ActorNode, Watch] = {}  # per running actor: its tasks
        # Per channel: its consumers still running. The last one out shuts it down,
        # unless it returned leaving it open: then it is watched for late sends.
        self.reading = {channel: len(nodes) for channel, nodes in consumers.items()}
        self.left_open: dict[Channel[Any], asyncio.Task[None]] = {}
        self.progress: tuple[int, ...] = ()
        self.progressed = 0.0

    async def run(self) -> None:
        """Run every actor to its end; raise the first failure (see the module)."""
        if self.state != "built":
            raise StreamnetError(
                f"network `{self.name}` is {self.state}; a network runs once, build a new one "
                "with new channels"
            )
        self.state = "running"
        if self.ctx.nranks > 1:
            try:
                self.run_id = await check_ranks_agree(self.ctx, fingerprint(self.actors))
            except RemoteRankError as exc:  # a peer failed before this network started
                self.state = "failed"
                self._log_failure(None, exc)
                raise
            except BaseException:
                self.state = "failed"
                raise
        loop = asyncio.get_running_loop()
        succeeded = False
        try:
            monitor = attach(self)  # files the tasks actors start; watches the event loop
            # A peer's failure fails this network at once, whatever its actors are doing.
            unwatch = self.ctx.communicator.watch(self._peer_failed)
            try:
                for node in self.actors:
                    if node in self.fusion.members:
                        continue  # its head runs its step
                    recorder = self.ctx.activity.new_recorder(node.name)
                    if self.ctx.trace:
                        recorder.waits = deque(maxlen=self.ctx.trace_limit)
                    self.recorders[node.name] = recorder
                    task = loop.create_task(self._run_actor(node, recorder), name=node.name)
                    recorder.tasks = self.watched[node] = {task}
                    self.tasks[task] = node
                pending = await self._supervise()
            finally:
                unwatch()
                monitor.detach(self)
                self.commits.close()
                await self._stop_watching_inputs()
            if not self.failures:
                await self._commit()
            succeeded = not self.failures
        except asyncio.CancelledError:
            self.state = "cancelled"
            raise
        finally:
            self.commits.abort()  # what was staged and not committed, however the run ended
            self.ctx.spills.release(self.owner, succeeded=succeeded)
            for recorder in self.recorders.values():  # the tasks are no longer watched, and
                recorder.tasks = None  # a task nobody holds is collected
            self.watched.clear()
        if self.failures:
            self.state = "failed"
            failure = self._primary_failure()
            if pending and isinstance(failure, Exception):
                names = ", ".join(f"`{self.tasks[t].name}`" for t in pending)
                failure.add_note(
                    f"actor(s) {names} did not stop when cancelled, nor when cancelled again "
                    f"{self.ctx.cancel_grace:g} s later, and were left behind"
                )
            raise failure
        self.state = "done"

    async def _commit(self) -> None:
        """Every actor ended well here: publish what they staged, once all ranks agree.

        With several ranks, a barrier before the commit steps makes sure every rank's
        actors succeeded (a failed rank aborts the communicator, so the barrier raises
        `RemoteRankError`), and one after them that every rank's steps did. A network
        without collectives runs apart from the other ranks' and commits on its own.
        """
        together = (
            self.ctx.nranks > 1 and self.run_id is not None and bool(fingerprint(self.actors))
        )
        comm = self.ctx.communicator
        try:
            if together:
                await comm.barrier(("network", self.run_id, "succeeded"))
            if len(self.commits):
                await self.commits.commit(self.ctx)
            if together:
                await comm.barrier(("network", self.run_id, "committed"))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail(None, exc)

    async def _supervise(self) -> set[asyncio.Task[None]]:
        """Wait for the actors, looking at them every so often; the tasks left behind."""
        pending = set(self.tasks)
        self.progressed = time.monotonic()
        try:
            while pending and not self.failures:
                _, pending = await asyncio.wait(
                    pending, timeout=CHECK_INTERVAL, return_when=asyncio.FIRST_EXCEPTION
                )
                if pending and not self.failures:
                    self.look(len(self.tasks) - len(pending))
            if pending:
                # The failing actor already cancelled the others; give them a bounded time.
                pending = await self._wait_cancelled(pending)
        except asyncio.CancelledError:
            self.state = "cancelled"
            self._abort_all(asyncio.CancelledError(f"network `{self.name}` was cancelled"))
            await self._cancel_and_wait()
            raise
        finally:
            for task in self.tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved here; raised below through failures
        return pending

    # ----------------------------------------------------------------- liveness
    def look(self, finished: int) -> None:
        """Fail the network if its actors wait on each other forever, or made no progress
        (``finished`` actors ended so far)."""
        now = time.monotonic()
        progress = (
            finished,
            self.ctx.activity.exchanged,
            *((s := c.statistics()).messages_sent + s.messages_received for c in self.channels),
        )
        if progress != self.progress or self.ctx.kernels_running:
            self.progress, self.progressed = progress, now
        live = [node for task, node in self.tasks.items() if not task.done()]
        calls = blocked_calls(self.channels)
        where = f"network `{self.name}`{self._on_rank()}"
        error = deadlock(where, live, self.watched, calls, self.serving)
        timeout = self.ctx.stall_timeout
        if error is None and timeout is not None and now - self.progressed > timeout:
            idle = now - self.progressed
            error = stall(where, live, self.watched, calls, self.serving, idle, timeout)
        if error is not None:
            self._fail(None, error)

    def serving(self, channel: Channel[Any], kind: str) -> list[ActorNode]:
        """The actors that can complete a wait of ``kind`` on ``channel``."""
        return self.consumers[channel] if kind == "send" else self.producers[channel]

    def _peer_failed(self, error: RemoteRankError) -> None:
        """Another rank failed: fail this network as a local failure would, unless its
        actors all ended already (it finished before hearing of it)."""
        if self.state == "running" and not all(task.done() for task in self.tasks):
            self._fail(None, error)

    def _on_rank(self) -> str:
        return f" on rank {self.ctx.rank}" if self.ctx.nranks > 1 else ""

    def actor_of(self, task: asyncio.Task[Any] | None) -> ActorNode | None:
        """The actor running ``task`` (its own task, or one it started), or None."""
        if task is None:
            return None
        node = self.tasks.get(task)
        if node is not None:
            return node
        for candidate, tasks in list(self.watched.items()):
            if task in tasks:
                return candidate
        return None

    # ----------------------------------------------------------------- actors
    async def _run_actor(self, node: ActorNode, recorder: ActorRecorder) -> None:
        set_current_actor(node)
        self.commits.install()
        with observe(recorder):
            recorder.start()
            node.set_state("running")
            state: Any = "done"
            result = None
            rebound = self.fusion.outputs.get(node, {})
            try:
                result = await call_with_restarts(node, recorder, rebound)
                if node.definition.collective and self.ctx.nranks > 1:
                    # Its consumers here get the end of its stream first, then it takes its
                    # last step with its peers: a rank that returned while another still
                    # takes steps fails on both (`Collective.end`), never hangs.
                    for channel in node.outputs:
                        await rebound.get(channel, channel).drain(None)
                    await Collective(self.ctx).end()
                if not node.definition.stops_early:
                    self._watch_inputs_left_open(node)
            except ChannelBroken as exc:
                if exc.channel not in node.outputs and exc.channel not in rebound.values():
                    state = "failed"
                    self._fail(node, exc)
                    raise
                # Its consumers need no more: a normal end, like a closed pipe.
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    state = "cancelled"  # the network (or its caller) cancelled it
                    raise
                # Its own code let a CancelledError out (it awaited a task that was
                # cancelled), no cancellation asked: ended early, a failure, not a success.
                state = "failed"
                failure = RuntimeError(
                    f"actor `{node.name}` raised CancelledError, though it was not cancelled "
                    "(it awaited a task or future that was cancelled?); its stream ended there"
                )
                failure.__cause__ = exc
                self._fail(node, failure)
                raise failure from exc
            except GeneratorExit:  # its task was destroyed unfinished: not the actor's failure
                state = "cancelled"
                raise
            except BaseException as exc:
                state = "failed"
                self._fail(node, exc)
                raise
            finally:
                recorder.finish(state)
                node.set_state(state, result)
                for member in self.fusion.groups.get(node, ()):
                    member.set_state(state)  # fused: it ends as its head, its result None
                for channel in node.outputs:
                    # counted once per actor: `observe` says who
                    await rebound.get(channel, channel).drain(None)
                for channel in node.inputs:
                    await self._consumer_left(channel)

    # ----------------------------------------------------------------- consumers leaving
    async def _consumer_left(self, channel: Channel[Any]) -> None:
        """A consumer of ``channel`` ended; once all did, nothing reads it: shut it down
        (unless it was left open and is watched for late sends)."""
        self.reading[channel] -= 1
        if self.reading[channel] > 0 or channel in self.left_open:
            return
        if channel.state == "open" or (channel.state == "drained" and len(channel)):
            await channel.shutdown(None)

    def _watch_inputs_left_open(self, node: ActorNode) -> None:
        """``node`` returned: raise if it left input unread, and watch the inputs it left
        open, to fail it if more is sent (see ``_unread.py``)."""
        for endpoint in check_inputs_read(node, lambda channel: self.reading[channel] > 1):
            watcher = watch_late_sends(node, endpoint, self._fail)
            # In a context of its own: not one of the actor's tasks, its traffic not the actor's.
            self.left_open[endpoint.channel] = asyncio.get_running_loop().create_task(
                watcher, context=contextvars.Context()
            )

    async def _stop_watching_inputs(self) -> None:
        """The actors ended: each watcher sees what its input got last (a message sent
        just before its producer drained fails the run); stop those still waiting."""
        watchers = [task for task in self.left_open.values() if not task.done()]
        for channel, task in self.left_open.items():
            if channel.state == "open":  # its producer never ended (the run was cancelled)
                task.cancel()
        if watchers:
            await asyncio.wait(watchers)

    # ----------------------------------------------------------------- failures
    def _fail(self, node: ActorNode | None, exc: BaseException) -> None:
        """Record a failure of ``node`` (None: of the network as a whole, a deadlock)."""
        first = not self.failures
        if not first and isinstance(exc, ChannelAborted | RemoteRankError):
            return  # a consequence of the first failure
        self.failures.append((node, exc))
        if node is not None and isinstance(exc, Exception):
            exc.add_note(f"raised in actor `{node.name}` of network `{self.name}`")
        self._log_failure(node, exc)
        if first:
            self._abort_all(exc)
            if self.ctx.nranks > 1 and not isinstance(exc, RemoteRankError):
                self.ctx.communicator.abort(exc)  # the peers' networks fail too
            # Actors blocked on a channel wake first and see ChannelAborted; the rest
            # (sleeping, awaiting a kernel) are cancelled right after.
            asyncio.get_running_loop().call_soon(self._cancel_others, node)

    def _log_failure(self, node: ActorNode | None, exc: BaseException) -> None:
        """One line per failure; the traceback only where it was raised, in an actor."""
        if node is None:
            logger.error(
                "network %s failed on rank %d: %s: %s",
                self.name,
                self.ctx.rank,
                type(exc).__name__,
                exc,
            )
        else:
            logger.error(
                "actor %s failed on rank %d: %s: %s",
                node.name,
                self.ctx.rank,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )

    def _primary_failure(self) -> BaseException:
        _node, exc = self.failures[0]
        for other, later in self.failures[1:]:
            if isinstance(exc, Exception):
                who = f"actor `{other.name}`" if other is not None else f"network `{self.name}`"
                exc.add_note(f"{who} also failed: {type(later).__name__}: {later}")
        return exc

    # ----------------------------------------------------------------- cancellation
    def _cancel_others(self, node: ActorNode | None) -> None:
        for task, other in self.tasks.items():
            if other is not node:
                task.cancel()

    def _abort_all(self, cause: BaseException) -> None:
        for channel in self.channels:
            channel.abort(cause)

    async def _cancel_and_wait(self) -> None:
        pending = {task for task in self.tasks if not task.done()}
        for task in pending:
            task.cancel()
        if pending:
            await self._wait_cancelled(pending)

    async def _wait_cancelled(self, pending: set[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
        """Wait up to ``cancel_grace`` for cancelled tasks; then cancel the ones left once
        more (a kernel one waits for is left running: see `Context.to_thread`) and wait as
        long again. The tasks still pending."""
        grace = self.ctx.cancel_grace
        _, pending = await asyncio.wait(pending, timeout=grace)
        if pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=grace)
        return pending

    def cancel_again(self) -> None:
        """Cancel every task of the actors once more: none waits for a kernel any longer."""
        for tasks in list(self.watched.values()):
            for task in list(tasks):
                task.cancel()
