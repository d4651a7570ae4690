"""Network: a validated graph of actors and channels, run once.

The Network is what users hold: it validates its wiring when built (``_wiring.py``),
binds its channels, and describes itself (statistics, timeline, pictures). Running
belongs to its driver (``_driver.py``); ``run`` from synchronous code goes through
``_sync.py``, and ``streamnet graph`` captures the network instead (``_capture.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from channels import Channel, StreamnetError
from streamnet._actor import ActorNode
from streamnet._context import Context
from streamnet._errors import SharedChannelWarning, WiringError
from streamnet._typing import NetworkState, PictureEngine
from streamnet.memory._budget import MemoryStatistics
from streamnet.network._capture import NetworkCaptured, capturing
from streamnet.network._columns import prune as prune_columns
from streamnet.network._driver import NetworkDriver
from streamnet.network._fusion import Fusion, fusion_of
from streamnet.network._on_success import CommitSteps
from streamnet.network._predicates import push as push_predicates
from streamnet.network._ranks import fingerprint
from streamnet.network._sync import run_to_completion
from streamnet.network._wiring import claim, unique_channels, validate
from streamnet.observe._progress import ProgressTracker, progress_wanted, show_progress
from streamnet.observe._statistics import (
    ActorRecorder,
    ActorStatistics,
    CollectiveStatistics,
    NetworkStatistics,
)
from streamnet.observe._timeline import Timeline

__all__ = ["Network", "run_actor_network"]


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
    fuse
        Run each chain of per-chunk actors (``filter``, ``select``,
        ``with_columns``, ``rename``, ``cast``: actors that declare their plan
        step) joined one to one as one actor running their steps as one plan per
        chunk (default). The chain's first actor runs it; the others do not
        run, end in its state, and show in `statistics` with ``fused_with``
        naming it; errors still name the actor whose step failed. False runs
        every actor on its own. See `explain`.
    prune
        Make sources read only the columns the actors downstream need (default):
        every actor says which input columns it needs to give the columns wanted
        of it (library actors from their expressions and arguments, other actors
        every column unless they declare them with ``define_actor(columns=...)``),
        and a source that prunes (``read_parquet``) decodes no other column. What
        the network's sinks receive is the same either way. See `explain`.
    pushdown
        Make sources skip the rows the actors downstream drop anyway (default):
        each conjunct of a ``filter``'s predicate that is row-wise, names its
        columns and cannot fail on a value moves upstream through the actors
        that allow it (those that pass rows on unchanged, such as ``sort``,
        ``shuffle``, ``concat``; a ``join``, to the input of the columns it reads
        when that side's rows are kept as they are: either side of an inner join,
        the left of a left, semi or anti join, the right of a right join; a
        ``groupby_agg``, when it reads its keys only; local steps that do not
        redefine its columns), and a source that applies predicates
        (``read_parquet``, ``read_csv``, ``from_polars``...) applies it too, in
        its scan with the row groups' statistics. Where the actors between them
        carry its columns unchanged, that source then commits to apply it to every
        row, and the filter leaves it out (a filter left with nothing passes its
        chunks on, and columns only it read are no longer read); elsewhere the
        filter still applies it. What the sinks receive is the same either way.
        Other actors, those of
        unknown code first, stop it. On one rank, a ``join`` one input of which is
        cut down by a filter gives that input's keys to the sources of the other
        (a *key filter*): they wait until the join has read it whole, then skip
        the rows whose key is not among them (the smaller such input gives its
        keys; none does when what feeds it also feeds other actors, which could
        then stall). See `explain`.

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
        fuse: bool = True,
        prune: bool = True,
        pushdown: bool = True,
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
        # what actors publish once the run succeeded, in the order of the actors
        self._commits = CommitSteps(lambda: [node.name for node in self._actors])
        self._channels: tuple[Channel[Any], ...] = ()
        if isinstance(feedback, Channel) or not isinstance(feedback, Sequence):
            raise TypeError(
                f"Network: `feedback` must be a list of channels, got {type(feedback).__name__}"
            )
        problems, notices = validate(ctx, self._actors, tuple(feedback))
        if problems:
            raise WiringError(problems)
        for notice in notices:
            warnings.warn(notice, SharedChannelWarning, stacklevel=2)
        self._channels = unique_channels(self._actors)
        self._producers: dict[Channel[Any], list[ActorNode]] = {c: [] for c in self._channels}
        self._consumers: dict[Channel[Any], list[ActorNode]] = {c: [] for c in self._channels}
        self._bind()
        # Pushdown first: a filter whose predicate a source applies already is left out,
        # so that fusion and pruning see what runs (columns only it read are not read).
        self._pushed = push_predicates(self._actors, tuple(feedback)) if pushdown else {}
        self._fusion = fusion_of(self._actors, tuple(feedback)) if fuse else Fusion()
        self._pruned = prune_columns(self._actors, tuple(feedback)) if prune else {}
        self._driver = NetworkDriver(
            self, ctx, name, self._actors, self._channels,
            self._producers, self._consumers, self._commits, self._fusion,
        )  # fmt: skip

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
        return self._driver.state

    def statistics(self) -> NetworkStatistics:
        """Per-actor and per-channel statistics of this network (live while it runs).

        One row per actor; an actor fused into another (see ``fuse``) has
        ``fused_with`` naming the one that ran its step, which holds the counts.
        """
        memory = self.ctx.memory.statistics()
        return NetworkStatistics(
            actors=tuple(self._actor_statistics(a, memory) for a in self._actors),
            channels=tuple(c.statistics() for c in self._channels),
            collectives=tuple(self._collective_statistics()),
            memory_limit=self.ctx.memory.limit,
        )

    def _actor_statistics(self, node: ActorNode, memory: MemoryStatistics) -> ActorStatistics:
        recorder = self._driver.recorders.get(node.name) or ActorRecorder(node.name)
        stats = recorder.snapshot()
        held = memory.actors.get(node.name)
        if held is not None:
            stats = dataclasses.replace(
                stats,
                held_peak_bytes=held.held_peak,
                reserved_peak_bytes=held.reserved_peak,
                spilled_bytes=held.spilled,
                memory_waits=held.waits,
            )
        head = self._fusion.members.get(node)
        if head is None:
            return stats
        return dataclasses.replace(stats, state=node.state, fused_with=(head.name,))

    @property
    def fused(self) -> tuple[tuple[ActorNode, ...], ...]:
        """The groups of actors that run as one plan per chunk: each its head, then the
        actors fused into it (empty when built with ``fuse=False``)."""
        return tuple((head, *members) for head, members in self._fusion.groups.items())

    def explain(self) -> str:
        """How the network runs what was written: the fused groups and the plan each runs
        per chunk, the columns each pruning source reads, and the predicates of filters
        that sources apply too, as text.

        Examples
        --------
        >>> import polars as pl
        >>> import actors
        >>> from streamnet import Context
        >>> ctx = Context()
        >>> a, b, c = (ctx.create_channel() for _ in range(3))
        >>> network = Network(ctx, [
        ...     actors.from_polars(ctx, a, pl.DataFrame({"x": [1, 2]})),
        ...     actors.filter(ctx, a, b, pl.col("x") > 1),
        ...     actors.with_columns(ctx, b, c, y=pl.col("x") * 2),
        ...     actors.collect(ctx, c),
        ... ])
        >>> print(network.explain())
        network `network`: 1 fused group
        source `from_polars#0` skips the rows that `filter#0` drops: [(col("x")) > (dyn int: 1)]
        filter `filter#0` leaves out what its input holds already: [(col("x")) > (dyn int: 1)]
        group `filter#0` (filter#0, with_columns#0), one plan per chunk:
          1. Filter  [filter#0]  (left out: its input holds it already)
          2. WithColumns  [with_columns#0]
        """
        groups = self._fusion.groups
        plural = "" if len(groups) == 1 else "s"
        lines = [f"network `{self.name}`: {len(groups)} fused group{plural}"]
        for source, columns in self._pruned.items():
            if columns is not None:
                lines.append(
                    f"source `{source}` reads only the columns needed downstream: {sorted(columns)}"
                )
        for source, predicates in self._pushed.items():
            for predicate in sorted(predicates, key=lambda p: (p.origin, p.describe())):
                lines.append(
                    f"source `{source}` skips the rows that `{predicate.origin}` drops: "
                    f"{predicate.describe()}"
                )
        for node in self._actors:
            for predicate in sorted(node.implied_predicates, key=lambda p: p.describe()):
                lines.append(
                    f"filter `{node.name}` leaves out what its input holds already: "
                    f"{predicate.describe()}"
                )
        for head, members in groups.items():
            names = ", ".join(n.name for n in (head, *members))
            lines.append(f"group `{head.name}` ({names}), one plan per chunk:")
            if head.definition.head:
                lines.append(f"  0. source  [{head.name}]")
            own = head.step()
            steps = ((own,) if own is not None else ()) + head.fused_steps
            listed: list[str] = []
            for node in (head, *members):  # a filter left out shows where it was written
                if node.implied_predicates and node.step() is None:
                    listed.append(f"Filter  [{node.name}]  (left out: its input holds it already)")
                listed += [
                    f"{type(st).__name__}  [{st.actor}]" for st in steps if st.actor == node.name
                ]
            names_in = {n.name for n in (head, *members)}
            listed += [
                f"{type(st).__name__}  [{st.actor}]" for st in steps if st.actor not in names_in
            ]
            for i, entry in enumerate(listed, 1):
                lines.append(f"  {i}. {entry}")
            if head.link is not None:
                lines.append(
                    f"  partials to `{head.link.aggregate}` (linked: it runs, merging and "
                    "finishing them)"
                )
        return "\n".join(lines)

    def _collective_statistics(self) -> list[CollectiveStatistics]:
        """What each collective actor moved, from its recorder (every send, receive and
        allgather its `Collective` made, schema agreements included)."""
        out = []
        for node in self._actors:
            recorder = self._driver.recorders.get(node.name)
            traffic = None if recorder is None else recorder.traffic
            if node.op_id is None or traffic is None:
                continue
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
        if self._driver.state == "built":
            raise StreamnetError(f"network `{self.name}` has not run yet; run it, then ask")
        if not self.ctx.trace:
            raise StreamnetError(
                f"network `{self.name}` ran without tracing; build it with Context(trace=True)"
            )
        recorders = self._driver.recorders  # none for a fused member: it does not run
        return Timeline.from_recorders(
            [recorders[a.name] for a in self._actors if a.name in recorders],
            rank=self.ctx.rank,
            memory=self.ctx.memory.samples(),
        )

    # ----------------------------------------------------------------- pictures
    def to_dot(self) -> str:
        """The network as Graphviz DOT (actors as boxes, channels as arrows)."""
        from streamnet.observe._picture import to_dot  # on first use: imports stay light

        return to_dot(self)

    def to_svg(self, *, engine: PictureEngine = "auto") -> str:
        """The network as SVG: Graphviz when installed, a pure-Python layout otherwise."""
        from streamnet.observe._picture import to_svg

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
            f"<Network {self.name!r} {self._driver.state}: {len(self._actors)} actors, "
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
        run_to_completion(
            functools.partial(self.run_async, progress=progress),
            name=self.name,
            cancel_again=self._driver.cancel_again,
        )

    async def run_async(self, *, progress: bool | None = None) -> None:
        """Run to completion on the running event loop (``progress`` as for :meth:`run`)."""
        if capturing():
            raise NetworkCaptured(self)
        if self._driver.state == "built":
            self.ctx.progress = ProgressTracker()  # this run's sources report here
        if not progress_wanted(progress, self.ctx.rank):
            await self._driver.run()
            return
        stop = asyncio.Event()
        bar = asyncio.ensure_future(show_progress(self.ctx.progress, self.name, stop))
        try:
            await self._driver.run()
        finally:
            stop.set()
            await bar

    def fingerprint(self) -> tuple[tuple[str, int], ...]:
        """The collectives of this network as ``(kind, operation id)``; equal on every rank."""
        return fingerprint(self._actors)

    # ----------------------------------------------------------------- wiring
    def _bind(self) -> None:
        """Make the channels and actors this network's; each channel's stream ends once
        all its producers drained it (its consumers are counted by the driver)."""
        claim(self._channels, self)
        for node in self._actors:
            node.attach(self)
            for channel in node.outputs:
                self._producers[channel].append(node)
            for channel in node.inputs:
                self._consumers[channel].append(node)
        for channel in self._channels:
            channel.producers = len(self._producers[channel])
        self.ctx.activity.track(self._channels)
        for node in self._actors:
            if len(node.inputs) > 1 and self._inputs_meet(node):
                node.mark_inputs_meet_upstream()

    def _inputs_meet(self, node: ActorNode) -> bool:
        """Whether two inputs of ``node`` are one channel or have a node upstream in common."""
        seen: dict[int, int] = {}  # id of a node upstream -> the input it was reached from
        for index, channel in enumerate(node.inputs):
            todo, reached = [channel], set()
            while todo:
                for producer in self._producers.get(todo.pop(), ()):
                    if id(producer) in reached:
                        continue
                    reached.add(id(producer))
                    if seen.setdefault(id(producer), index) != index:
                        return True
                    todo.extend(producer.inputs)
        return len(set(map(id, node.inputs))) < len(node.inputs)


def run_actor_network(ctx: Context, actors: Sequence[ActorNode]) -> None:
    """Build a :class:`Network` of ``actors`` and run it to completion (rapidsmpf's form)."""
    Network(ctx, actors).run()
