"""Steps a run takes only once it succeeded: the commit half of a two-phase commit.

An actor whose work shows outside the network (an output file, a table in a
catalogue) must not make it visible while another actor, or another rank, may
still fail. It stages its work while it runs, then registers with
:func:`on_success` a *commit* step that makes the work visible, and an *abort*
step that removes what it staged. A network then ends in this order:

1. every actor ends;
2. with several ranks, when the network has collective actors (writers are
   collective): a barrier where every rank says that all its actors succeeded.
   A rank that failed tells the others instead (as it does for any failure),
   so the barrier raises `RemoteRankError` on them: no rank commits unless
   every actor of every rank succeeded;
3. the commit steps, in the order of the network's actors (as listed to
   `Network`; one actor's steps in the order it registered them), so every rank
   and every run commits in the same order whichever actor finished first, one
   at a time in the Context's thread pool;
4. with several ranks, a second barrier, so that a commit step that failed on
   one rank fails the run on every rank.

Whenever the run fails or is cancelled, the abort step of every step not yet
committed runs instead (on the event loop, synchronously, so that no second
cancellation cuts it short); an abort that raises is logged, never hides the
run's error.

What this guarantees: nothing is committed by a run that fails before its
commit steps start. Each commit step is as atomic as it makes itself (the
writers' are one rename per output: a file or a directory appears complete at
its path, or not at all). Several steps are not atomic together: if a commit
step fails halfway (a disk full, a permission, a target that appeared), the
steps committed before it stay committed, it and the steps after it are
aborted, and the run raises its error with a note naming the steps committed
and those abandoned; the other ranks raise `RemoteRankError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamnet._actor import current_actor
from streamnet.observe._logging import logger

if TYPE_CHECKING:
    from streamnet._context import Context

__all__ = ["CommitSteps", "on_success"]


def on_success(commit: Callable[[], object], *, abort: Callable[[], object] | None = None) -> None:
    """Run ``commit()`` once the network of the calling actor succeeded (on every rank),
    or ``abort()`` if the run fails or is cancelled first.

    Both are plain functions taking no argument. ``commit`` runs in the
    Context's thread pool after every actor ended (see the module for the
    barriers between ranks); ``abort`` runs on the event loop and must be quick
    and idempotent. An actor stages its output while it runs and registers the
    step that publishes it; its result may already describe the output as it
    will be once committed, since the run fails if a commit step fails.

    Raises
    ------
    RuntimeError
        Called outside an actor running in a Network, or after its actors ended.

    Examples
    --------
    >>> from streamnet import Context, Network, define_actor, on_success
    >>> shown = []
    >>> @define_actor
    ... async def publisher(ctx):
    ...     staged = ["row 1", "row 2"]
    ...     on_success(lambda: shown.extend(staged), abort=staged.clear)
    >>> ctx = Context()
    >>> Network(ctx, [publisher(ctx)]).run()
    >>> shown
    ['row 1', 'row 2']
    """
    node = current_actor()
    steps = _steps.get()
    if node is None or steps is None:
        raise RuntimeError(
            "on_success: only an actor running in a Network can register a commit step; "
            "call it from the actor's code"
        )
    steps.add(node.name, commit, abort)


_steps: ContextVar[CommitSteps | None] = ContextVar("streamnet_commit_steps", default=None)


@dataclass(frozen=True, slots=True)
class _Step:
    actor: str
    commit: Callable[[], object]
    abort: Callable[[], object] | None


class CommitSteps:
    """The commit steps the actors of one run registered, and what became of them."""

    def install(self) -> None:
        """Make these the steps that :func:`on_success` adds to, in the current task (an
        actor's) and the tasks and kernels it starts."""
        _steps.set(self)

    def __init__(self, order: Callable[[], Sequence[str]] | None = None) -> None:
        self._order = order
        """The names of the network's actors, in the order their steps commit."""
        self._pending: list[_Step] = []
        self._closed = False
        self.committed: list[str] = []
        """The actors whose commit step completed, in order."""

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self, actor: str, commit: Callable[[], object], abort: Callable[[], object] | None
    ) -> None:
        """Register the step of ``actor``."""
        if self._closed:
            raise RuntimeError(
                f"on_success: actor `{actor}` registered a commit step after its network's "
                "actors ended; register it while the actor runs"
            )
        if not callable(commit) or (abort is not None and not callable(abort)):
            raise TypeError(
                f"on_success: `commit` and `abort` must be functions taking no argument, "
                f"got {commit!r} and {abort!r}"
            )
        self._pending.append(_Step(actor, commit, abort))

    def close(self) -> None:
        """No more steps: the actors ended."""
        self._closed = True

    async def commit(self, ctx: Context) -> None:
        """Run every commit step in the network's order; the first that raises stops the rest (they stay
        pending, for :meth:`abort`), and its error gets a note saying what was committed."""
        self._closed = True
        if self._order is not None:
            place = {name: i for i, name in enumerate(self._order())}
            self._pending.sort(key=lambda step: place.get(step.actor, len(place)))  # stable
        while self._pending:
            step = self._pending[0]
            finished = False

            def run(step: _Step = step) -> None:
                nonlocal finished
                step.commit()
                finished = True

            try:
                await ctx.to_thread(run)
            except BaseException as exc:
                if finished:  # it completed before a cancellation reached its caller
                    self._pending.pop(0)
                    self.committed.append(step.actor)
                elif isinstance(exc, Exception):
                    exc.add_note(self._describe(failed=step.actor))
                raise
            self._pending.pop(0)
            self.committed.append(step.actor)

    def abort(self) -> None:
        """Run the abort step of every step not committed, last registered first."""
        self._closed = True
        steps, self._pending = self._pending, []
        for step in reversed(steps):
            if step.abort is None:
                continue
            try:
                step.abort()
            except Exception:
                logger.exception("the abort step of actor %s failed", step.actor)

    def _describe(self, failed: str) -> str:
        done = ", ".join(f"`{name}`" for name in self.committed) or "none"
        left = ", ".join(f"`{s.actor}`" for s in self._pending[1:]) or "none"
        return (
            f"the commit step of actor `{failed}` failed; the steps committed before it stay "
            f"committed ({done}); it and those after it were abandoned (after it: {left})"
        )
