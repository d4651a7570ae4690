"""Network: a validated graph of actors and channels, and how it runs."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import threading
import time
import warnings
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from channels._channel import Channel, _instance_check
from channels._errors import ChannelAborted, ChannelBroken, ChannelError, StreamnetError
from channels._observer import observe
from streamnet._actor import ActorDefinition, ActorNode, Endpoint, _current_node
from streamnet._capture import NetworkCaptured, capturing
from streamnet._collective import CollectiveTraffic
from streamnet._context import Context
from streamnet._errors import (
    DeadlockError,
    NetworkMismatchError,
    RemoteRankError,
    SharedChannelWarning,
    UnreadInputError,
    WiringError,
)
from streamnet._liveness import (
    CHECK_INTERVAL,
    ChannelWait,
    attach,
    blocked_calls,
    channel_waits,
    deadlocked,
    describe_wait,
    timer_targets,
    where_waiting,
)
from streamnet._on_success import CommitSteps
from streamnet._tasks import Driver
from streamnet.observe._logging import logger
from streamnet.observe._picture import PictureEngine, to_dot, to_svg
from streamnet.observe._progress import ProgressTracker, progress_wanted, show_progress
from streamnet.observe._statistics import ActorRecorder, CollectiveStatistics, NetworkStatistics
from streamnet.observe._timeline import Timeline

__all__ = ["Network", "run_actor_network"]


NetworkState = Literal["built", "running", "done", "failed", "cancelled"]


class Network:
    """A graph of actor nodes joined by channels, validated when built.

    Building checks the wiring and reports every problem at once in a
    `WiringError`: an argument that is not an actor node, a channel parameter
    that is neither input nor output, a channel nobody produces into or nobody
    consumes, a channel already used by another network, payload types that
    disagree between producer, consumer and channel, a cycle that was not
    declared. Actors of different definitions consuming one channel (each
    gets part of the stream) get a `SharedChannelWarning`.

    Running starts every actor as a task. If one raises, the others are
    cancelled, every channel is aborted, and the original exception is raised
    with a note naming the actor. An actor that returns leaving input unread
    fails with `UnreadInputError`, unless it shut that input down or was
    declared ``@define_actor(stops_early=True)``. Actors that wait on each
    other's channels forever end the run with `DeadlockError`. When another
    rank fails, the network fails the same way at once, whatever its actors
    are doing, with `RemoteRankError`. A network runs once.

    Actors that publish work outside the network (writers) stage it and
    register a commit step with :func:`streamnet.on_success`: the network runs
    those steps once every actor ended well (on every rank), and their abort
    steps whenever the run fails or is cancelled instead.

    Parameters
    ----------
    ctx
        The Context every actor was made with.
    actors
        The actor nodes.
    name
        Used in errors, logs and pictures.
    feedback
        Channels that carry data back upstream on purpose, closing a loop;
        any other cycle is a wiring error.

    Examples
    --------
    >>> from streamnet import Context, Message, define_actor
    >>> @define_actor
    ... async def numbers(ctx, ch_out):
    ...     for i in range(3):
    ...         await ch_out.send(ctx, Message(i, i))
    >>> @define_actor
    ... async def total(ctx, ch_in, result):
    ...     result.append(sum([m.payload async for m in ch_in]))
    >>> ctx = Context()
    >>> ch, result = ctx.create_channel(int), []
    >>> Network(ctx, [numbers(ctx, ch), total(ctx, ch, result)]).run()
    >>> result
    [3]
    """

    def __init__(
        self,
        ctx: Context,
        actors: Sequence[ActorNode],
        *,
        name: str = "network",
        feedback: Sequence[Channel[Any]] = (),
    ) -> None:
        if not isinstance(ctx, Context):
            raise TypeError(f"Network: `ctx` must be a streamnet.Context, got {type(ctx).__name__}")
        if isinstance(actors, ActorNode) or not isinstance(actors, Sequence):
            raise TypeError(
                f"Network: `actors` must be a list of actor nodes, got {type(actors).__name__}"
            )
        self.ctx = ctx
        self.name = name
        self._actors: tuple[ActorNode, ...] = tuple(actors)
        self._state: NetworkState = "built"
        self._recorders: dict[str, ActorRecorder] = {}
        self._failures: list[tuple[ActorNode | None, BaseException]] = []
        self._tasks: dict[asyncio.Task[None], ActorNode] = {}
        self._commits = CommitSteps()  # what actors publish once the run succeeded
        self._run_id: int | None = None  # this run's number, the same on every rank
        self._channels: tuple[Channel[Any], ...] = ()
        if isinstance(feedback, Channel) or not isinstance(feedback, Sequence):
            raise TypeError(
                f"Network: `feedback` must be a list of channels, got {type(feedback).__name__}"
            )
        problems, notices = _validate(ctx, self._actors, tuple(feedback))
        if problems:
            raise WiringError(problems)
        for notice in notices:
            warnings.warn(notice, SharedChannelWarning, stacklevel=2)
        self._channels = _unique_channels(self._actors)
        self._producers: dict[Channel[Any], list[ActorNode]] = {c: [] for c in self._channels}
        self._consumers: dict[Channel[Any], list[ActorNode]] = {c: [] for c in self._channels}
        # Per running actor: its tasks, and the futures of its channel calls blocked now.
        self._watched: dict[ActorNode, tuple[set[asyncio.Task[Any]], set[Any]]] = {}
        self._progress: tuple[int, ...] = ()
        self._progressed = 0.0
        self._bind()

    # ----------------------------------------------------------------- introspection
    @property
    def actors(self) -> tuple[ActorNode, ...]:
        """The actor nodes, in the order given."""
        return self._actors

    @property
    def channels(self) -> tuple[Channel[Any], ...]:
        """Every channel joining the actors, each once."""
        return self._channels

    @property
    def state(self) -> NetworkState:
        """``"built"``, ``"running"``, ``"done"``, ``"failed"`` or ``"cancelled"``."""
        return self._state

    def statistics(self) -> NetworkStatistics:
        """Per-actor and per-channel statistics of this network (live while it runs)."""
        return NetworkStatistics(
            actors=tuple(
                self._recorders[a.name].snapshot()
                if a.name in self._recorders
                else ActorRecorder(a.name).snapshot()
                for a in self._actors
            ),
            channels=tuple(c.statistics() for c in self._channels),
            collectives=tuple(self._collective_statistics()),
        )

    def _collective_statistics(self) -> list[CollectiveStatistics]:
        out = []
        for node in self._actors:
            if node.op_id is None or node.state != "done":
                continue
            result = node.result()
            traffic = (
                result
                if isinstance(result, CollectiveTraffic)
                else getattr(result, "traffic", None)
            )
            if isinstance(traffic, CollectiveTraffic):
                out.append(
                    CollectiveStatistics(
                        node.name, dict(traffic.bytes_sent), dict(traffic.bytes_received),
                        traffic.peak_buffered_bytes, traffic.spilled_bytes,
                    )
                )  # fmt: skip
        return out

    def timeline(self) -> Timeline:
        """When each actor was busy or blocked (the run needs ``Context(trace=True)``).

        Raises
        ------
        StreamnetError
            The network has not run, or ran without tracing.
        """
        if self._state == "built":
            raise StreamnetError(f"network `{self.name}` has not run yet; run it, then ask")
        if not self.ctx.trace:
            raise StreamnetError(
                f"network `{self.name}` ran without tracing; build it with Context(trace=True)"
            )
        return Timeline.from_recorders(
            [self._recorders[a.name] for a in self._actors], rank=self.ctx.rank
        )

    # ----------------------------------------------------------------- pictures
    def to_dot(self) -> str:
        """The network as Graphviz DOT (actors as boxes, channels as arrows)."""
        return to_dot(self)

    def to_svg(self, *, engine: PictureEngine = "auto") -> str:
        """The network as SVG: Graphviz when installed, a pure-Python layout otherwise."""
        return to_svg(self, engine=engine)

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def save_picture(self, path: str | os.PathLike[str], *, engine: PictureEngine = "auto") -> Path:
        """Write the picture to ``path``: ``.svg`` or ``.dot``. Returns the path."""
        target = Path(path)
        if target.suffix == ".dot":
            target.write_text(self.to_dot())
        elif target.suffix == ".svg":
            target.write_text(self.to_svg(engine=engine))
        else:
            raise ValueError(f"save_picture: write a `.svg` or `.dot` file, got `{target.name}`")
        return target

    def __repr__(self) -> str:
        return (
            f"<Network {self.name!r} {self._state}: {len(self._actors)} actors, "
            f"{len(self._channels)} channels>"
        )

    # ----------------------------------------------------------------- running
    def run(self, *, progress: bool | None = None) -> None:
        """Run to completion, blocking the caller.

        Works from plain scripts and from threads that already run an event
        loop (Jupyter): the network then runs on a loop of its own in a helper
        thread. ``KeyboardInterrupt`` cancels the network cleanly, then propagates.

        In a script's main thread, Ctrl-C cancels the run between two steps of
        the event loop, never in the middle of an actor's code; a kernel that
        outlives the cancellation is waited for at most ``cancel_grace``
        seconds (see `Context.to_thread`). A second Ctrl-C stops that wait, and
        a third interrupts at once, wherever the program is.

        Parameters
        ----------
        progress
            Show a progress bar of the rows the sources read: None (default)
            shows it in a terminal or a notebook, on rank 0, but not when
            output is redirected; True always; False never.
        """
        if capturing():
            raise NetworkCaptured(self)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            inside_a_loop = False
        else:
            inside_a_loop = True
        if inside_a_loop:
            _run_in_helper_thread(self, progress)
        else:  # outside the `except`, so a failure is not shown as raised while handling another
            asyncio.run(self._run_interruptible(progress))

    async def _run_interruptible(self, progress: bool | None) -> None:
        """:meth:`run_async`, with Ctrl-C in the main thread handled as :meth:`run` says."""
        if threading.current_thread() is not threading.main_thread():
            await self.run_async(progress=progress)
            return
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        interrupts = 0

        def interrupt(signum: int, frame: Any) -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts == 1:
                loop.call_soon_threadsafe(task.cancel)
            elif interrupts == 2:
                loop.call_soon_threadsafe(self._cancel_again)
            else:
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, interrupt)
        try:
            await self.run_async(progress=progress)
        except asyncio.CancelledError:
            if interrupts and task.uncancel() == 0:
                raise KeyboardInterrupt from None
            raise
        finally:
            signal.signal(signal.SIGINT, previous)

    def _cancel_again(self) -> None:
        """Cancel every task of the actors once more: none waits for a kernel any longer."""
        for tasks, _ in list(self._watched.values()):
            for task in list(tasks):
                task.cancel()

    async def run_async(self, *, progress: bool | None = None) -> None:
        """Run to completion on the running event loop (``progress`` as for :meth:`run`)."""
        if capturing():
            raise NetworkCaptured(self)
        if self._state == "built":
            self.ctx.progress = ProgressTracker()  # this run's sources report here
        if not progress_wanted(progress, self.ctx.rank):
            await self._run()
            return
        stop = asyncio.Event()
        bar = asyncio.ensure_future(show_progress(self.ctx.progress, self.name, stop))
        try:
            await self._run()
        finally:
            stop.set()
            await bar

    async def _run(self) -> None:
        if self._state != "built":
            raise StreamnetError(
                f"network `{self.name}` is {self._state}; a network runs once, build a new one "
                "with new channels"
            )
        self._state = "running"
        if self.ctx.nranks > 1:
            try:
                await self._check_ranks_agree()
            except RemoteRankError as exc:  # a peer failed before this network started
                self._state = "failed"
                self._log_failure(None, exc)
                raise
            except BaseException:
                self._state = "failed"
                raise
        loop = asyncio.get_running_loop()
        succeeded = False
        try:
            monitor = attach(self)  # files the tasks actors start; watches the event loop
            # A peer's failure fails this network at once, whatever its actors are doing.
            unwatch = self.ctx.communicator.watch(self._peer_failed)
            try:
                for node in self._actors:
                    recorder = self.ctx._new_recorder(node.name)
                    if self.ctx.trace:
                        recorder.waits = deque(maxlen=self.ctx.trace_limit)
                    self._recorders[node.name] = recorder
                    task = loop.create_task(self._run_actor(node, recorder), name=node.name)
                    recorder.tasks, recorder.waiting = {task}, set()
                    self._watched[node] = (recorder.tasks, recorder.waiting)
                    self._tasks[task] = node
                pending = await self._supervise()
            finally:
                unwatch()
                monitor.detach(self)
                self._commits.close()
            if not self._failures:
                await self._commit()
            succeeded = not self._failures
        except asyncio.CancelledError:
            self._state = "cancelled"
            raise
        finally:
            self._commits.abort()  # what was staged and not committed, however the run ended
            self.ctx.spills.release(self, succeeded=succeeded)
            for recorder in self._recorders.values():  # the tasks are no longer watched, and
                recorder.tasks = recorder.waiting = None  # a task nobody holds is collected
            self._watched.clear()
        if self._failures:
            self._state = "failed"
            failure = self._primary_failure()
            if pending and isinstance(failure, Exception):
                names = ", ".join(f"`{self._tasks[t].name}`" for t in pending)
                failure.add_note(
                    f"actor(s) {names} did not stop when cancelled, nor when cancelled again "
                    f"{self.ctx.cancel_grace:g} s later, and were left behind"
                )
            raise failure
        self._state = "done"

    async def _commit(self) -> None:
        """Every actor ended well here: publish what they staged, once all ranks agree.

        With several ranks, a barrier before the commit steps makes sure every rank's
        actors succeeded (a failed rank aborts the communicator, so the barrier raises
        `RemoteRankError`), and one after them that every rank's steps did. A network
        without collectives runs apart from the other ranks' and commits on its own.
        """
        together = self.ctx.nranks > 1 and self._run_id is not None and bool(self.fingerprint())
        comm = self.ctx.communicator
        try:
            if together:
                await comm.barrier(("network", self._run_id, "succeeded"))
            if len(self._commits):
                await self._commits.commit(self.ctx)
            if together:
                await comm.barrier(("network", self._run_id, "committed"))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail(None, exc)

    async def _supervise(self) -> set[asyncio.Task[None]]:
        """Wait for the actors, looking at them every so often; the tasks left behind."""
        pending = set(self._tasks)
        self._progressed = time.monotonic()
        try:
            while pending and not self._failures:
                _, pending = await asyncio.wait(
                    pending, timeout=CHECK_INTERVAL, return_when=asyncio.FIRST_EXCEPTION
                )
                if pending and not self._failures:
                    self._look(len(self._tasks) - len(pending))
            if pending:
                # The failing actor already cancelled the others; give them a bounded time.
                pending = await self._wait_cancelled(pending)
        except asyncio.CancelledError:
            self._state = "cancelled"
            self._abort_all(asyncio.CancelledError(f"network `{self.name}` was cancelled"))
            await self._cancel_and_wait()
            raise
        finally:
            for task in self._tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved here; raised below through _failures
        return pending

    # ----------------------------------------------------------------- liveness
    def _look(self, finished: int) -> None:
        """Fail the network if its actors wait on each other forever, or made no progress."""
        now = time.monotonic()
        progress = (
            finished,
            self.ctx._exchanged,
            *(c._sent + c._received for c in self._channels),
        )
        if progress != self._progress or self.ctx._kernels_running:
            self._progress, self._progressed = progress, now
        live = [node for task, node in self._tasks.items() if not task.done()]
        calls = blocked_calls(self._channels)
        stalled: dict[ActorNode, list[ChannelWait]] = {}
        runnable: list[ActorNode] = []
        for node in live:
            waits = channel_waits(*self._watched[node], calls)
            if waits is None:
                runnable.append(node)  # it can move, or waits on a channel we cannot judge
            else:
                stalled[node] = waits
        stuck = deadlocked(stalled, runnable, self._serving) if stalled else []
        if stuck:  # unless a timer can wake one of them: a wait with a deadline ends by itself
            woken = timer_targets(asyncio.get_running_loop())
            for node in stuck:
                tasks, waiting = self._watched[node]
                if woken is None or any(id(t) in woken for t in (*tasks, *waiting)):
                    runnable.append(node)
                    del stalled[node]
            stuck = deadlocked(stalled, runnable, self._serving) if stalled else []
        if stuck:
            lines = [
                f"actor `{node.name}` {describe_wait(wait, self._serving_names)}"
                for node in stuck
                for wait in stalled[node]
            ]
            self._fail(
                None,
                DeadlockError(
                    f"network `{self.name}`{self._on_rank()} is deadlocked: these actors wait "
                    "on channels that only they could serve, so none of them can move:\n"
                    + "\n".join(f"  - {line}" for line in lines),
                    lines,
                ),
            )
            return
        timeout = self.ctx.stall_timeout
        if timeout is not None and now - self._progressed > timeout:
            lines = []
            for node in live:
                tasks, waiting = self._watched[node]
                code = getattr(node.definition.fn, "__code__", None)
                blocked = [calls[future] for future in waiting if future in calls]
                whats = [describe_wait(wait, self._serving_names) for wait in blocked]
                if len(blocked) < sum(not task.done() for task in tasks):
                    whats += [
                        f"waits outside any channel, {where}"
                        for task in list(tasks)
                        if not task.done() and (where := where_waiting(task, code)) is not None
                    ]
                lines += [f"actor `{node.name}` {what}" for what in dict.fromkeys(whats)]
            self._fail(
                None,
                DeadlockError(
                    f"network `{self.name}`{self._on_rank()} made no progress for "
                    f"{now - self._progressed:.1f} s (Context(stall_timeout={timeout:g})): no "
                    "message moved, no actor ended and no kernel ran; its actors wait:\n"
                    + "\n".join(f"  - {line}" for line in lines),
                    lines,
                ),
            )

    def _peer_failed(self, error: RemoteRankError) -> None:
        """Another rank failed: fail this network as a local failure would, unless its
        actors all ended already (it finished before hearing of it)."""
        if self._state == "running" and not all(task.done() for task in self._tasks):
            self._fail(None, error)

    def _serving(self, channel: Channel[Any], kind: str) -> list[ActorNode]:
        """The actors that can complete a wait of ``kind`` on ``channel``."""
        return self._consumers[channel] if kind == "send" else self._producers[channel]

    def _serving_names(self, channel: Channel[Any], kind: str) -> list[str]:
        return [node.name for node in self._serving(channel, kind)]

    def _on_rank(self) -> str:
        return f" on rank {self.ctx.rank}" if self.ctx.nranks > 1 else ""

    def _actor_of(self, task: asyncio.Task[Any] | None) -> ActorNode | None:
        """The actor running ``task`` (its own task, or one it started), or None."""
        if task is None:
            return None
        node = self._tasks.get(task)
        if node is not None:
            return node
        for candidate, (tasks, _) in list(self._watched.items()):
            if task in tasks:
                return candidate
        return None

    def fingerprint(self) -> tuple[tuple[str, int], ...]:
        """The collectives of this network as ``(kind, operation id)``; equal on every rank."""
        return tuple(
            (node.definition.name, node.op_id) for node in self._actors if node.op_id is not None
        )

    async def _check_ranks_agree(self) -> None:
        """Every rank must have built the same collectives, or they would wait on each other."""
        comm = self.ctx.communicator
        mine = self.fingerprint()
        try:
            if (known := comm.failure) is not None:
                raise known
            self._run_id = self.ctx._next_run()
            everyone = await comm.allgather(("network", self._run_id), mine)
            if (known := comm.failure) is not None:  # heard of while exchanging fingerprints
                raise known
        except RemoteRankError as exc:
            if not isinstance(exc.cause, NetworkMismatchError):
                raise
            # A peer found the mismatch first and failed; whichever rank hears of it
            # first, every rank reports the one root cause itself.
            mismatch = NetworkMismatchError(str(exc.cause))
            mismatch.add_note(f"found first by rank {exc.rank}")
            raise mismatch from None
        if any(other != mine for other in everyone):
            lines = "\n".join(
                f"  rank {rank}: {_describe_fingerprint(print_)}"
                for rank, print_ in enumerate(everyone)
            )
            raise NetworkMismatchError(
                f"the ranks built different networks; their collectives must match one for one "
                f"(build the same network in the same order on every rank):\n{lines}"
            )

    async def _run_actor(self, node: ActorNode, recorder: ActorRecorder) -> None:
        _current_node.set(node)
        with observe(recorder):
            recorder.start()
            node._state = "running"
            state: Any = "done"
            try:
                node._result = await self._call(node, recorder)
                if not node.definition.stops_early:
                    self._check_inputs_read(node)
            except ChannelBroken as exc:
                if exc.channel not in node.outputs:
                    state = "failed"
                    self._fail(node, exc)
                    raise
                # Its consumers need no more: a normal end, like a closed pipe.
            except (asyncio.CancelledError, GeneratorExit):  # GeneratorExit: its task was
                state = "cancelled"  # destroyed unfinished; neither is the actor's failure
                raise
            except BaseException as exc:
                state = "failed"
                self._fail(node, exc)
                raise
            finally:
                recorder.finish(state)
                node._state = state
                for channel in node.outputs:
                    channel._producer_done(recorder)
                for channel in node.inputs:
                    channel._consumer_done()

    def _check_inputs_read(self, node: ActorNode) -> None:
        """Raise if ``node`` returned while an input it consumes last holds messages; if
        the input is still open, fail the network once its producers send more.

        Whether a producer drained before or after the consumer returned depends
        on scheduling; whether it had more to send does not: only that is an error.
        """
        for endpoint in node.endpoints:
            channel = endpoint.channel
            if endpoint.role != "input" or channel._consumers > 1:
                continue  # other consumers still read it (a worker pool)
            buffered = len(channel)
            if buffered and channel.state in ("open", "drained"):
                raise UnreadInputError(
                    self._unread(node, endpoint, f"still holds {buffered} message(s)")
                )
            if channel.state == "open":  # nothing lost yet: the consumer is gone
                channel._late_send = functools.partial(self._sent_after_return, node, endpoint)

    def _sent_after_return(self, node: ActorNode, endpoint: Endpoint, msg: Any) -> None:
        """A producer sent into an input ``node`` stopped reading when it returned."""
        endpoint.channel._late_send = None
        node._state = "failed"
        seq = getattr(msg, "sequence_number", "?")
        what = f"was sent message sequence number {seq} after the actor returned"
        self._fail(node, UnreadInputError(self._unread(node, endpoint, what)))

    @staticmethod
    def _unread(node: ActorNode, endpoint: Endpoint, what: str) -> str:
        return (
            f"actor `{node.name}` returned without reading its input `{endpoint.parameter}` "
            f"to the end: channel `{endpoint.channel.name}` {what}. Read until `recv` returns "
            f"None; to stop early on purpose, shut the input down (`await "
            f"{endpoint.parameter}.shutdown(ctx)`) or declare the actor with "
            "@define_actor(stops_early=True)"
        )

    async def _call(self, node: ActorNode, recorder: ActorRecorder) -> Any:
        """Run the actor's function; with a restart policy, call it afresh after a failure."""
        policy = node.definition.restart
        if policy is None:
            return await Driver(node.call())
        recorder.taken, recorder.sent = {}, {}
        restarts: list[float] = []
        while True:
            try:
                return await Driver(node.call())
            except (ChannelError, asyncio.CancelledError):
                raise  # a closed channel or a cancellation is not the stage's own failure
            except Exception as exc:
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < policy.max_seconds]
                if len(restarts) >= policy.max_restarts:
                    exc.add_note(
                        f"actor `{node.name}` was restarted {len(restarts)} times within "
                        f"{policy.max_seconds} s and failed again"
                    )
                    raise
                restarts.append(now)
                for channel, msg in recorder.taken.items():
                    channel._requeue(msg)  # the message in flight is processed again
                recorder.taken.clear()
                recorder.restarts += 1
                logger.warning(
                    "actor %s failed (%s: %s) and restarts", node.name, type(exc).__name__, exc
                )

    def _fail(self, node: ActorNode | None, exc: BaseException) -> None:
        """Record a failure of ``node`` (None: of the network as a whole, a deadlock)."""
        first = not self._failures
        if not first and isinstance(exc, ChannelAborted | RemoteRankError):
            return  # a consequence of the first failure
        self._failures.append((node, exc))
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

    def _cancel_others(self, node: ActorNode | None) -> None:
        for task, other in self._tasks.items():
            if other is not node:
                task.cancel()

    def _abort_all(self, cause: BaseException) -> None:
        for channel in self._channels:
            channel.abort(cause)

    async def _cancel_and_wait(self) -> None:
        pending = {task for task in self._tasks if not task.done()}
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

    def _primary_failure(self) -> BaseException:
        _node, exc = self._failures[0]
        for other, later in self._failures[1:]:
            if isinstance(exc, Exception):
                who = f"actor `{other.name}`" if other is not None else f"network `{self.name}`"
                exc.add_note(f"{who} also failed: {type(later).__name__}: {later}")
        return exc

    # ----------------------------------------------------------------- wiring
    def _bind(self) -> None:
        for channel in self._channels:
            channel._owner = self
            channel._producers = 0
            channel._consumers = 0
        for node in self._actors:
            node._network = self
            for channel in node.outputs:
                channel._producers += 1
                self._producers[channel].append(node)
            for channel in node.inputs:
                channel._consumers += 1
                self._consumers[channel].append(node)
        known = {id(c) for c in self.ctx._channels}
        self.ctx._channels.extend(c for c in self._channels if id(c) not in known)


def _unique_channels(actors: Sequence[ActorNode]) -> tuple[Channel[Any], ...]:
    seen: dict[int, Channel[Any]] = {}
    for node in actors:
        for endpoint in node.endpoints:
            seen.setdefault(id(endpoint.channel), endpoint.channel)
    return tuple(seen.values())


def _describe(value: Any) -> str:
    if isinstance(value, ActorDefinition):
        return (
            f"the actor definition `{value.name}`, not a node; call it with the Context and its "
            f"channels: {value.name}(ctx, ...)"
        )
    if asyncio.iscoroutine(value):
        value.close()
        label = getattr(value, "__qualname__", "?")
        return (
            f"a coroutine ({label}), not an actor node; decorate the function with "
            "@define_actor and call it with the Context and its channels"
        )
    if callable(value):
        label = getattr(value, "__qualname__", repr(value))
        return (
            f"the function `{label}`, not an actor node; decorate it with @define_actor and call it"
        )
    return f"a {type(value).__name__}, not an actor node"


def _validate(
    ctx: Context, actors: Sequence[Any], feedback: Sequence[Channel[Any]] = ()
) -> tuple[list[str], list[str]]:
    """The wiring problems of ``actors``, and the warnings it deserves."""
    problems: list[str] = []
    notices: list[str] = []
    nodes: list[ActorNode] = []
    seen: set[int] = set()
    for index, node in enumerate(actors):
        if not isinstance(node, ActorNode):
            problems.append(f"actors[{index}] is {_describe(node)}")
            continue
        if id(node) in seen:
            problems.append(f"actor `{node.name}` is listed twice")
            continue
        seen.add(id(node))
        nodes.append(node)
        if node.ctx is not ctx:
            problems.append(f"actor `{node.name}` was made with another Context than the network's")
        if node._network is not None:
            problems.append(f"actor `{node.name}` already belongs to another network")
    if not actors:
        problems.append("the network has no actors")

    producers: dict[int, list[tuple[ActorNode, Endpoint]]] = {}
    consumers: dict[int, list[tuple[ActorNode, Endpoint]]] = {}
    channels: dict[int, Channel[Any]] = {}
    for node in nodes:
        for endpoint in node.endpoints:
            channel = endpoint.channel
            channels[id(channel)] = channel
            if endpoint.role is None:
                problems.append(
                    f"actor `{node.name}` parameter `{endpoint.parameter}` holds channel "
                    f"`{channel.name}` but is neither an input nor an output; name it like "
                    f"`ch_in` / `ch_out`, or declare it with "
                    f"@define_actor(inputs=[...]) or outputs=[...]"
                )
                continue
            side = producers if endpoint.role == "output" else consumers
            side.setdefault(id(channel), []).append((node, endpoint))

    for key, channel in channels.items():
        made = producers.get(key, [])
        used = consumers.get(key, [])
        if not made and used:
            problems.append(
                f"channel `{channel.name}` has no producer: "
                f"{_endpoint_list(used)} receive from it, but no actor sends into it"
            )
        if made and not used:
            problems.append(
                f"channel `{channel.name}` has no consumer: "
                f"{_endpoint_list(made)} send into it, but no actor receives from it"
            )
        owner = channel._owner
        if owner is not None:
            problems.append(f"channel `{channel.name}` already belongs to another network")
        elif channel.state != "open":
            problems.append(f"channel `{channel.name}` is already {channel.state}")
        problems.extend(_type_problems(channel, made, used))
        kinds: dict[ActorDefinition[Any], ActorNode] = {}
        for node, _ in used:
            kinds.setdefault(node.definition, node)
        if len(kinds) > 1:
            names = " and ".join(f"`{node.name}`" for node in kinds.values())
            notices.append(
                f"channel `{channel.name}` is consumed by actors of different kinds, {names}: "
                "each receives only part of its stream (actors made from one definition may "
                "share a channel as a worker pool). To give each the whole stream, put a "
                "fanout in front; to keep the split, silence this with "
                "warnings.filterwarnings('ignore', category=streamnet.SharedChannelWarning)"
            )
    problems.extend(_cycle_problems(nodes, producers, consumers, channels, feedback))
    return problems, notices


def _cycle_problems(
    nodes: Sequence[ActorNode],
    producers: dict[int, list[tuple[ActorNode, Endpoint]]],
    consumers: dict[int, list[tuple[ActorNode, Endpoint]]],
    channels: dict[int, Channel[Any]],
    feedback: Sequence[Channel[Any]],
) -> list[str]:
    """Cycles of actors through channels not declared as ``feedback``, and stray declarations."""
    problems: list[str] = []
    declared: set[int] = set()
    for channel in feedback:
        if not isinstance(channel, Channel):
            problems.append(f"`feedback` holds a {type(channel).__name__}, not a channel")
        elif id(channel) not in channels:
            problems.append(
                f"feedback channel `{channel.name}` is not a channel of this network's actors"
            )
        else:
            declared.add(id(channel))

    def edges(skip: set[int]) -> dict[ActorNode, list[tuple[Channel[Any], ActorNode]]]:
        out: dict[ActorNode, list[tuple[Channel[Any], ActorNode]]] = {n: [] for n in nodes}
        for key, made in producers.items():
            if key in skip:
                continue
            for producer, _ in made:
                for consumer, _ in consumers.get(key, []):
                    out[producer].append((channels[key], consumer))
        return out

    forward = edges(declared)
    for component in _strongly_connected(nodes, forward):
        path = _cycle_in(component, forward)
        if path is None:
            continue
        route = " -> ".join(f"`{node.name}` -[`{channel.name}`]" for node, channel in path)
        problems.append(
            f"actors form a cycle: {route} -> `{path[0][0].name}`; every actor on it waits "
            "for the others to end. If the loop is intended, declare the channel that "
            f"carries data back: Network(..., feedback=[<channel `{path[-1][1].name}`>])"
        )
    if declared:
        group = {
            node: index
            for index, component in enumerate(_strongly_connected(nodes, edges(set())))
            for node in component
        }
        for key in declared:
            closes = any(
                group[producer] == group[consumer]
                for producer, _ in producers.get(key, [])
                for consumer, _ in consumers.get(key, [])
            )
            if not closes:
                problems.append(
                    f"feedback channel `{channels[key].name}` closes no loop: no actor that "
                    "receives from it sends, directly or not, into it; drop it from `feedback`"
                )
    return problems


def _strongly_connected(
    nodes: Sequence[ActorNode], edges: dict[ActorNode, list[tuple[Channel[Any], ActorNode]]]
) -> list[list[ActorNode]]:
    """The strongly connected components of the graph (Tarjan's algorithm, without recursion)."""
    index: dict[ActorNode, int] = {}
    low: dict[ActorNode, int] = {}
    stack: list[ActorNode] = []
    on_stack: set[ActorNode] = set()
    components: list[list[ActorNode]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(edges[root]))]
        while work:
            node, successors = work[-1]
            for _, successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[ActorNode] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member is node:
                            break
                    components.append(component[::-1])
    return components


def _cycle_in(
    component: list[ActorNode], edges: dict[ActorNode, list[tuple[Channel[Any], ActorNode]]]
) -> list[tuple[ActorNode, Channel[Any]]] | None:
    """One cycle through the first actor of ``component``, as (actor, channel it sends into)
    steps; None when the component is one actor that does not feed itself."""
    start = component[0]
    members = set(component)
    came: dict[ActorNode, tuple[ActorNode, Channel[Any]]] = {}
    frontier = [start]
    while frontier:
        following: list[ActorNode] = []
        for node in frontier:
            for channel, successor in edges[node]:
                if successor not in members:
                    continue
                if successor is start:
                    path = [(node, channel)]
                    while path[0][0] is not start:
                        path.insert(0, came[path[0][0]])
                    return path
                if successor not in came:
                    came[successor] = (node, channel)
                    following.append(successor)
        frontier = following
    return None


def _endpoint_list(endpoints: list[tuple[ActorNode, Endpoint]]) -> str:
    return ", ".join(f"`{node.name}`.{endpoint.parameter}" for node, endpoint in endpoints)


def _as_classes(tp: Any) -> tuple[type, ...] | None:
    check = _instance_check(tp)
    if check is None:
        return None
    return check if isinstance(check, tuple) else (check,)


def _fits(inner: tuple[type, ...], outer: tuple[type, ...]) -> bool:
    return all(issubclass(cls, outer) for cls in inner)


def _type_problems(
    channel: Channel[Any],
    made: list[tuple[ActorNode, Endpoint]],
    used: list[tuple[ActorNode, Endpoint]],
) -> list[str]:
    problems: list[str] = []
    declared = _as_classes(channel.payload_type)
    senders = [(n, e, c) for n, e in made if (c := _as_classes(e.payload_type)) is not None]
    receivers = [(n, e, c) for n, e in used if (c := _as_classes(e.payload_type)) is not None]
    for node, endpoint, sent in senders:
        if declared is not None and not (_fits(sent, declared) or _fits(declared, sent)):
            problems.append(
                f"channel `{channel.name}` carries {_names(declared)} but `{node.name}`."
                f"{endpoint.parameter} sends {_names(sent)}"
            )
        for other, other_endpoint, wanted in receivers:
            if not _fits(sent, wanted):
                problems.append(
                    f"channel `{channel.name}`: `{node.name}`.{endpoint.parameter} sends "
                    f"{_names(sent)} but `{other.name}`.{other_endpoint.parameter} expects "
                    f"{_names(wanted)}"
                )
    if declared is not None:
        for node, endpoint, wanted in receivers:
            if not _fits(declared, wanted):
                problems.append(
                    f"channel `{channel.name}` carries {_names(declared)} but `{node.name}`."
                    f"{endpoint.parameter} expects {_names(wanted)}"
                )
    return problems


def _names(classes: tuple[type, ...]) -> str:
    return " | ".join(cls.__name__ for cls in classes)


def _describe_fingerprint(fingerprint: tuple[tuple[str, int], ...]) -> str:
    if not fingerprint:
        return "no collectives"
    return ", ".join(f"{kind} (op {op_id})" for kind, op_id in fingerprint)


def _run_in_helper_thread(network: Network, progress: bool | None) -> None:
    """Run on a fresh loop in a helper thread, for callers already inside a loop (Jupyter)."""
    outcome: dict[str, Any] = {}
    started = threading.Event()

    def target() -> None:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(network.run_async(progress=progress))
            outcome["loop"], outcome["task"] = loop, task
            started.set()
            loop.run_until_complete(task)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            started.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=target, name=f"streamnet-{network.name}", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    except KeyboardInterrupt:
        started.wait()
        loop, task = outcome.get("loop"), outcome.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        thread.join()
        raise
    error = outcome.get("error")
    if error is not None:
        if isinstance(error, asyncio.CancelledError):
            raise KeyboardInterrupt from None
        raise error


def run_actor_network(ctx: Context, actors: Sequence[ActorNode]) -> None:
    """Build a :class:`Network` of ``actors`` and run it to completion (rapidsmpf's form)."""
    Network(ctx, actors).run()
