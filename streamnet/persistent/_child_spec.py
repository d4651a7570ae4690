"""How a supervisor starts a child actor, and how long it waits before restarting it."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

from streamnet._deprecation import keyword_only, keyword_only_fields
from streamnet._typing import RestartType

if TYPE_CHECKING:
    from streamnet.persistent.device._behaviours import DeviceBehaviour

__all__ = ["Backoff", "ChildSpec"]


@keyword_only_fields
@dataclass(frozen=True)
class ChildSpec:
    """How to start (and restart) one child actor: ``fn(ctx, *args, **kwargs)`` as
    ``actor_id``; the options after ``kwargs`` are keyword-only.

    ``redeliver``: after a crash, give the message the child was processing to
    the new instance once (a second crash on it drops it to the dead letters);
    by default it is dropped to the dead letters at once.
    """

    actor_id: str
    fn: Callable[..., Awaitable[Any]] | DeviceBehaviour
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    _: KW_ONLY
    restart: RestartType = "permanent"
    shutdown_timeout: float = 5.0
    redeliver: bool = False
    heartbeat_timeout: float | None = None
    """Watchdog: fail the child when it holds input without progress this long (for a
    device actor: its slot without a heartbeat this long)."""
    device: str | None = None
    """Run ``fn``, a `DeviceBehaviour`, in a slot of this device's kernel (see
    `ActorRuntime.launch`)."""


@keyword_only_fields
@dataclass(frozen=True)
class Backoff:
    """Delay before a restart: ``initial * factor**n`` up to ``maximum``, ± ``jitter`` (a
    fraction), where ``n`` counts restarts since the last quiet spell of ``reset_after`` s.
    Every option is keyword-only."""

    _: KW_ONLY
    initial: float = 0.01
    maximum: float = 1.0
    factor: float = 2.0
    jitter: float = 0.1
    reset_after: float = 10.0

    @keyword_only("rng")
    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """The delay before restart number ``attempt`` (0-based) of a streak."""
        base = min(self.maximum, self.initial * self.factor**attempt)
        if self.jitter:
            base *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base)
