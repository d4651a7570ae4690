"""Errors raised by the streamnet runtime (the root lives in `channels`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from channels import StreamnetError

__all__ = [
    "ActorResultError",
    "ActorStateError",
    "BackendUnavailableError",
    "ColumnNotFoundError",
    "DeadlockError",
    "ExpressionError",
    "FileReadError",
    "MemoryLimitError",
    "NetworkMismatchError",
    "RemoteRankError",
    "SchemaError",
    "SharedChannelWarning",
    "SpillError",
    "UnreadInputError",
    "WatchdogTimeout",
    "WiringError",
]


class WiringError(StreamnetError, ValueError):
    """A Network is wired wrongly; ``problems`` lists every problem found, one per entry."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        header = (
            "network wiring has 1 problem" if count == 1 else f"network wiring has {count} problems"
        )
        super().__init__(header + ":\n" + "\n".join(f"  - {p}" for p in self.problems))

    def __reduce__(self) -> tuple[Any, ...]:  # travels between ranks
        return (type(self), (self.problems,), self.__dict__)


class BackendUnavailableError(StreamnetError, RuntimeError):
    """The requested backend cannot be used in this environment."""


class ColumnNotFoundError(StreamnetError, KeyError):
    """An expression or option names a column the table does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ExpressionError(StreamnetError, ValueError):
    """An expression cannot be evaluated where it was given (one that is not row-wise,
    given to an actor that evaluates it one chunk at a time)."""


class SchemaError(StreamnetError, ValueError):
    """Tables that must share a schema do not (chunks of one stream, its ranks, files of one scan),
    or a column's type cannot go where it is sent (one Polars does not hold exactly)."""


class FileReadError(StreamnetError, OSError):
    """A file exists but cannot be read as the format it was opened as."""


class MemoryLimitError(StreamnetError, MemoryError):
    """Memory that an actor needs cannot fit in its Context's budget (``memory_limit``),
    even after spilling; the message names the actor, what needed it and the sizes."""


class SpillError(StreamnetError, OSError):
    """A chunk cannot be spilled to disk (a full disk), or its spill file is gone."""


class ActorResultError(StreamnetError, RuntimeError):
    """An actor's result was asked for before the actor finished successfully."""


class RemoteRankError(StreamnetError, RuntimeError):
    """Another rank of the run failed; ``rank`` and ``cause`` say which and how."""

    def __init__(self, rank: int, cause: BaseException) -> None:
        self.rank = rank
        self.cause = cause
        super().__init__(f"rank {rank} failed: {type(cause).__name__}: {cause}")

    def __reduce__(self) -> tuple[Any, ...]:  # travels between ranks
        return (type(self), (self.rank, self.cause), self.__dict__)


class NetworkMismatchError(StreamnetError, RuntimeError):
    """The ranks of a run built different networks (their collectives do not line up)."""


class ActorStateError(StreamnetError, RuntimeError):
    """A persistent actor was asked for a lifecycle step its state does not allow."""


class WatchdogTimeout(StreamnetError, TimeoutError):
    """A persistent actor held input without progress for longer than its heartbeat timeout."""


class DeadlockError(StreamnetError, RuntimeError):
    """A running network can make no more progress: its actors wait on each other forever.

    ``waits`` lists what each actor concerned waits on, one line per actor.
    """

    def __init__(self, message: str, waits: Sequence[str] = ()) -> None:
        self.waits = tuple(waits)
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:  # travels between ranks
        return (type(self), (str(self), self.waits), self.__dict__)


class UnreadInputError(StreamnetError, RuntimeError):
    """An actor returned while its input still had data, without shutting that input down."""


class SharedChannelWarning(UserWarning):
    """Actors of different kinds consume one channel, so each gets only part of its stream."""
