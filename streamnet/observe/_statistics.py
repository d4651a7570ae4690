"""Per-actor statistics: what each actor received, sent, and where its time went."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from time import perf_counter
from typing import TYPE_CHECKING, Any

from channels import Channel, ChannelStatistics
from channels.lowlevel import ByteTally, TrafficCounter, current_counter
from streamnet._typing import ActorState

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = [
    "ActorRecorder",
    "ActorStatistics",
    "CollectiveStatistics",
    "CollectiveTraffic",
    "ContextActivity",
    "NetworkStatistics",
    "record_bytes_read",
]


@dataclass(frozen=True, slots=True)
class ActorStatistics:
    """What one actor did.

    Attributes
    ----------
    name
        The actor's name in its network (``accumulator#0``).
    state
        ``"created"``, ``"running"``, ``"done"``, ``"failed"`` or ``"cancelled"``.
    messages_in, rows_in, bytes_in
        Messages received, and the rows and bytes of their payloads.
    messages_out, rows_out, bytes_out
        Messages sent, and the rows and bytes of their payloads.
    wall_seconds
        Time from the actor's start to its end (or to now while running).
    busy_seconds
        ``wall_seconds`` less the time blocked on channels and on memory and the
        time its kernels were queued for a thread: its own code, and its kernels
        while they ran.
    blocked_input_seconds
        Time spent waiting for input on an empty channel.
    blocked_output_seconds
        Time spent waiting for room on a full channel (backpressure).
    blocked_memory_seconds
        Time spent waiting for working memory under its Context's memory budget.
    kernel_seconds
        Time its kernels (``ctx.to_thread``) ran in the Context's thread pool,
        summed over its kernels: more than ``wall_seconds`` when several ran at once.
    queued_seconds
        Time its kernels waited in the thread pool's queue for a free thread,
        summed over its kernels: the pool was busy with other kernels (its own or
        other actors'); a larger ``num_threads`` may shorten it.
    restarts
        Times the actor was restarted under its restart policy.
    fused_with
        For an actor fused into another (see `Network`'s ``fuse``), the actor
        that ran its step and holds its counts; empty otherwise.
    held_peak_bytes, reserved_peak_bytes
        Under its Context's memory budget (``ctx.memory``): the most bytes of
        chunks its state held in memory at once, and of working memory it had
        reserved at once.
    spilled_bytes
        Bytes of chunks of its state spilled to disk (by itself, or by the
        budget to make room for another actor).
    memory_waits
        Reservations of working memory it waited for (the budget was full).
    bytes_read
        Bytes a source read from files or a store (for Parquet, the encoded column
        chunks of the row groups it read; for text, the bytes of its share).
    """

    name: str
    state: ActorState
    messages_in: int
    rows_in: int
    bytes_in: int
    messages_out: int
    rows_out: int
    bytes_out: int
    wall_seconds: float
    busy_seconds: float
    blocked_input_seconds: float
    blocked_output_seconds: float
    restarts: int = 0
    fused_with: tuple[str, ...] = ()
    blocked_memory_seconds: float = 0.0
    held_peak_bytes: int = 0
    reserved_peak_bytes: int = 0
    spilled_bytes: int = 0
    memory_waits: int = 0
    kernel_seconds: float = 0.0
    queued_seconds: float = 0.0
    bytes_read: int = 0


@dataclass
class CollectiveTraffic:
    """What one collective moved on this rank: bytes per peer, and what it held.

    A collective actor's recorder holds it (`ActorRecorder.traffic`, counted by
    `Collective`), and ``network.statistics().collectives`` lists it per actor;
    collective actors also return one, for compatibility.
    """

    bytes_sent: dict[int, int] = field(default_factory=dict)
    bytes_received: dict[int, int] = field(default_factory=dict)
    peak_buffered_bytes: int = 0
    spilled_bytes: int = 0

    def add_sent(self, peer: int, nbytes: int) -> None:
        """Count ``nbytes`` sent to ``peer``."""
        self.bytes_sent[peer] = self.bytes_sent.get(peer, 0) + nbytes

    def add_received(self, peer: int, nbytes: int) -> None:
        """Count ``nbytes`` received from ``peer``."""
        self.bytes_received[peer] = self.bytes_received.get(peer, 0) + nbytes

    def held(self, nbytes: int) -> None:
        """Note that ``nbytes`` are held now (the peak keeps the largest)."""
        self.peak_buffered_bytes = max(self.peak_buffered_bytes, nbytes)

    def copy(self) -> CollectiveTraffic:
        """A copy that later counts do not change."""
        return CollectiveTraffic(
            dict(self.bytes_sent), dict(self.bytes_received),
            self.peak_buffered_bytes, self.spilled_bytes,
        )  # fmt: skip

    def __add__(self, other: CollectiveTraffic) -> CollectiveTraffic:
        def merged(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
            return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(a.keys() | b.keys())}

        return CollectiveTraffic(
            merged(self.bytes_sent, other.bytes_sent),
            merged(self.bytes_received, other.bytes_received),
            max(self.peak_buffered_bytes, other.peak_buffered_bytes),
            self.spilled_bytes + other.spilled_bytes,
        )


class ActorRecorder(TrafficCounter):
    """One actor's traffic counter (see :class:`channels.TrafficCounter`), state and times.

    It is also the actor's identity towards channels (one drain per actor).
    """

    __slots__ = ("bytes_read", "ended", "name", "restarts", "started", "state", "tasks", "traffic")

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.restarts = 0
        self.state: ActorState = "created"
        self.started = self.ended = 0.0
        self.tasks: set[asyncio.Task[Any]] | None = None
        """While it runs in a Network: the actor's task and the tasks it started."""
        self.traffic: CollectiveTraffic | None = None
        """What the actor moved between ranks, from its first `Collective` on."""
        self.bytes_read = 0
        """Bytes the actor read from files or a store (`record_bytes_read`)."""

    def start(self) -> None:
        self.state = "running"
        self.started = perf_counter()

    def finish(self, state: ActorState) -> None:
        self.state = state
        self.ended = perf_counter()

    @property
    def blocked(self) -> float:
        """Seconds the actor waited on channels, on memory and for a thread, so far."""
        return self.blocked_in + self.blocked_out + self.blocked_memory + self.blocked_thread

    def snapshot(self) -> ActorStatistics:
        if self.started == 0.0:
            wall = 0.0
        else:
            wall = (self.ended if self.ended else perf_counter()) - self.started
        return ActorStatistics(
            name=self.name,
            state=self.state,
            messages_in=self.messages_in,
            rows_in=self.rows_in,
            bytes_in=self.bytes_in,
            messages_out=self.messages_out,
            rows_out=self.rows_out,
            bytes_out=self.bytes_out,
            wall_seconds=wall,
            busy_seconds=max(0.0, wall - self.blocked),
            blocked_input_seconds=self.blocked_in,
            blocked_output_seconds=self.blocked_out,
            blocked_memory_seconds=self.blocked_memory,
            restarts=self.restarts,
            kernel_seconds=self.thread_seconds,
            queued_seconds=self.blocked_thread,
            bytes_read=self.bytes_read,
        )


def record_bytes_read(nbytes: int) -> None:
    """Count ``nbytes`` read from files or a store by the running actor (its statistics'
    ``bytes_read``); nothing outside an actor run by a network."""
    counter = current_counter()
    if isinstance(counter, ActorRecorder):
        counter.bytes_read += nbytes


class ContextActivity:
    """What ran with one Context, kept by the runtime for its statistics and its
    progress (``Context.activity``).

    Attributes
    ----------
    recorders
        The recorder of every actor run so far (`Context.statistics` reads them).
    channels
        Every channel made with the Context, or run in one of its networks.
    buffered
        The bytes buffered now in those channels, kept as messages move.
    runs
        Networks started so far: the number of the next run.
    exchanged
        Messages moved between ranks by collectives (progress, for ``stall_timeout``).
    """

    def __init__(self) -> None:
        self.recorders: list[ActorRecorder] = []
        self.channels: list[Channel[Any]] = []
        self.buffered = ByteTally()
        self._tracked: set[int] = set()
        self.runs = 0
        self.exchanged = 0

    def new_recorder(self, name: str) -> ActorRecorder:
        """A recorder for a run of actor ``name``, kept for the statistics."""
        recorder = ActorRecorder(name)
        self.recorders.append(recorder)
        return recorder

    def next_run(self) -> int:
        """The number of a network run that starts now: 0, 1, 2... per Context."""
        run = self.runs
        self.runs += 1
        return run

    def track(self, channels: Iterable[Channel[Any]]) -> None:
        """Keep ``channels`` (a network's, or one made with the Context) among the
        Context's, each once, their buffered bytes counted in ``buffered``."""
        for channel in channels:
            if id(channel) not in self._tracked:  # kept in `channels`: its id is not reused
                self._tracked.add(id(channel))
                self.channels.append(channel)
                self.buffered.add(channel)


@dataclass(frozen=True, slots=True)
class CollectiveStatistics:
    """Bytes one collective actor sent to and received from each peer rank (read-only
    mappings, copied when the record is made: later traffic does not change them)."""

    name: str
    bytes_sent: Mapping[int, int]
    bytes_received: Mapping[int, int]
    peak_buffered_bytes: int
    spilled_bytes: int

    def __post_init__(self) -> None:
        for name in ("bytes_sent", "bytes_received"):  # a snapshot, not the actor's own dict
            object.__setattr__(self, name, dict(getattr(self, name)))


@dataclass(frozen=True, slots=True)
class NetworkStatistics:
    """Statistics of every actor and channel of a run (and of its collectives, once done).

    ``str()`` gives a readable table; ``to_polars()`` / ``to_pandas()`` give frames
    (``what="actors"``, ``"channels"`` or ``"collectives"``: one row per peer).
    """

    actors: tuple[ActorStatistics, ...]
    channels: tuple[ChannelStatistics, ...]
    collectives: tuple[CollectiveStatistics, ...] = ()
    memory_limit: int | None = None
    """The Context's memory budget (``memory_limit``), or None without one."""

    def actor(self, name: str) -> ActorStatistics:
        """The statistics of the actor called ``name``.

        Raises
        ------
        KeyError
            No actor has that name; the message lists the names.
        """
        for stats in self.actors:
            if stats.name == name:
                return stats
        raise KeyError(f"no actor named `{name}`; actors are {[a.name for a in self.actors]}")

    def channel(self, name: str) -> ChannelStatistics:
        """The statistics of the channel called ``name`` (KeyError if none)."""
        for stats in self.channels:
            if stats.name == name:
                return stats
        raise KeyError(f"no channel named `{name}`; channels are {[c.name for c in self.channels]}")

    def to_polars(self, *, what: str = "actors") -> pl.DataFrame:
        """Actor (``what="actors"``) or channel (``what="channels"``) statistics as a DataFrame."""
        import polars as pl

        rows, cls = self._rows(what)
        if not rows:
            return pl.DataFrame(schema=_columns(cls))
        return pl.DataFrame(rows)

    def to_pandas(self, *, what: str = "actors") -> pd.DataFrame:
        """Like :meth:`to_polars`, as a pandas DataFrame."""
        import pandas as pd

        rows, cls = self._rows(what)
        return pd.DataFrame(rows, columns=_columns(cls))

    def _rows(self, what: str) -> tuple[list[dict[str, Any]], type | list[str]]:
        if what == "actors":
            return [asdict(a) for a in self.actors], ActorStatistics
        if what == "channels":
            return [asdict(c) for c in self.channels], ChannelStatistics
        if what == "collectives":
            rows = [
                {
                    "name": c.name,
                    "peer": peer,
                    "bytes_sent": c.bytes_sent.get(peer, 0),
                    "bytes_received": c.bytes_received.get(peer, 0),
                }
                for c in self.collectives
                for peer in sorted(c.bytes_sent.keys() | c.bytes_received.keys())
            ]
            return rows, ["name", "peer", "bytes_sent", "bytes_received"]
        raise ValueError(f"`what` must be 'actors', 'channels' or 'collectives', got {what!r}")

    def __rich__(self) -> Any:
        """A rich Table of the actors (``rich.print(stats)``); backpressured actors in red."""
        from rich.table import Table

        table = Table(title="actors", title_justify="left")
        header, body = self._table()
        for column in header:
            text = column in ("actor", "state")
            table.add_column(
                column if text else column.replace(" ", "\n"),  # figures: narrow, headers on lines
                justify="left" if text else "right",
                no_wrap=True,
            )
        for a, row in zip(self.actors, body, strict=True):
            pressed = a.blocked_output_seconds > 0.2 * max(a.wall_seconds, 1e-9)
            table.add_row(
                *row, style="bold red" if a.state == "failed" else ("red" if pressed else None)
            )
        return table

    def _table(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        """The actor table's header and rows, as text: the columns every run has, then the
        groups of `_OPTIONAL_COLUMNS` that tell something of this run."""
        shown = [columns for wanted, columns in _OPTIONAL_COLUMNS if wanted(self)]
        header = (*_BASE_HEADER, *(name for columns in shown for name, _, _ in columns))
        body = []
        for a in self.actors:
            row = (
                a.name, _shown_state(a), f"{a.messages_in:,}", f"{a.rows_in:,}",
                f"{a.messages_out:,}", f"{a.rows_out:,}", f"{a.bytes_out / 1e6:,.1f}",
                f"{a.busy_seconds:.3f}", f"{a.blocked_input_seconds:.3f}",
                f"{a.blocked_output_seconds:.3f}",
            )  # fmt: skip
            body.append((*row, *(text(value(a)) for cols in shown for _, value, text in cols)))
        return header, body

    def _repr_html_(self) -> str:
        """Notebooks show the actor table."""
        return str(self.to_polars()._repr_html_())

    def __str__(self) -> str:
        header, body = self._table()
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines = [
            "  ".join(
                cell.ljust(width) if i < 2 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
            for row in [header, *body]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


_BASE_HEADER = ("actor", "state", "msgs in", "rows in", "msgs out", "rows out", "MB out",
                "busy s", "wait in s", "wait out s")  # fmt: skip
"""The columns of the actor table in every run."""


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _megabytes(value: float) -> str:
    return f"{value / 1e6:,.1f}"


Column = tuple[str, Callable[[ActorStatistics], float], Callable[[float], str]]
"""A column of the actor table: its header, the figure it shows of an actor, and how."""

_OPTIONAL_COLUMNS: list[tuple[Callable[[NetworkStatistics], bool], list[Column]]] = [
    (lambda run: any(a.kernel_seconds or a.queued_seconds for a in run.actors), [
        ("kernel s", lambda a: a.kernel_seconds, _seconds),
        ("queued s", lambda a: a.queued_seconds, _seconds),
    ]),
    (lambda run: any(a.bytes_read for a in run.actors), [
        ("MB read", lambda a: a.bytes_read, _megabytes),
    ]),
    (lambda run: run.memory_limit is not None or any(a.spilled_bytes for a in run.actors), [
        ("MB held", lambda a: a.held_peak_bytes, _megabytes),
        ("MB reserved", lambda a: a.reserved_peak_bytes, _megabytes),
        ("MB spilled", lambda a: a.spilled_bytes, _megabytes),
    ]),
]  # fmt: skip
"""Groups of columns of the actor table, each with when it is shown: kernel times when
an actor ran kernels, bytes read when a source read files, memory under a budget or
when something spilled."""


def _columns(cls: type | list[str]) -> list[str]:
    return cls if isinstance(cls, list) else [f.name for f in fields(cls)]


def _shown_state(actor: ActorStatistics) -> str:
    """The state column of the tables: a fused actor says which actor ran its step (its
    own counts are zero; the head's row holds the group's)."""
    if actor.fused_with:
        return f"{actor.state} (fused into {', '.join(actor.fused_with)})"
    return actor.state
