"""Atomic output: files staged under temporary names and moved into place when the stream ends.

A writer stages everything it writes next to its target, under a hidden name
(``.<target name>.<token>.tmp``: a file, or a directory of files), and commits
when its whole input stream ended on every rank: a single file is renamed onto
its path; a directory gets its ``_SUCCESS`` marker, then appears at its path in
one rename (or, to append, its files are moved in and the marker is written
last, as Hadoop and Spark committers do). A failed or cancelled writer removes
what it staged, so a failed run leaves nothing that looks like a result, and
with ``mode="overwrite"`` the old output stays until the new one is complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, get_args

from streamnet import ActorDefinition, Collective, Context, define_actor

__all__ = ["SUCCESS_MARKER", "StagedOutput", "WriteMode", "check_target", "output_actor"]

P = ParamSpec("P")

WriteMode = Literal["error", "overwrite", "append"]
"""What a writer does when its target exists: raise (default), replace it, or add files to it."""

SUCCESS_MARKER = "_SUCCESS"
"""The empty file a directory output gets last, once all its files are in place."""


def check_target(target: Path, mode: object, *, directory: bool, actor: str) -> None:
    """Refuse a write that cannot succeed, before anything runs.

    Raises
    ------
    ValueError
        ``mode`` is not a :data:`WriteMode`, or ``"append"`` is asked of a single file.
    FileExistsError
        ``mode="error"`` and the target exists, or ``"append"`` to an existing file.
    """
    if mode not in get_args(WriteMode):
        raise ValueError(
            f"actor `{actor}`: `mode` must be one of {list(get_args(WriteMode))}, got {mode!r}"
        )
    if mode == "append" and not directory:
        raise ValueError(
            f"actor `{actor}`: mode='append' adds files to a directory, and a single file "
            "cannot be appended to; write one file per chunk (`partitioned=True`), "
            "got partitioned=False"
        )
    if mode == "error" and os.path.lexists(target):
        raise FileExistsError(
            f"actor `{actor}`: `{target}` already exists; pass mode='overwrite' to replace it "
            "or mode='append' to add files to it, got mode='error'"
        )
    if mode == "append" and target.exists() and not target.is_dir():
        raise FileExistsError(
            f"actor `{actor}`: `{target}` is a file, but mode='append' adds files to a directory"
        )


def output_actor(
    check: Callable[..., None],
) -> Callable[[Callable[Concatenate[Context, P], Awaitable[Any]]], ActorDefinition[P]]:
    """Declare a writer: a collective actor whose nodes call ``check(name, **arguments)``
    when made, so that a bad target fails while the network is built, before anything runs."""

    return define_actor(collective=True, check=check)


class StagedOutput:
    """What one rank's writer stages for ``target``, and its commit or removal.

    Make it with :meth:`begin` on every rank; stage each file at :meth:`stage`;
    then :meth:`commit` once the stream ended, or :meth:`abandon` on failure.
    """

    def __init__(
        self, target: Path, mode: WriteMode, *, directory: bool, token: str, tag: str | None
    ) -> None:
        self.target = target
        self.mode = mode
        self.directory = directory
        self.tag = tag
        """Prefix of the file names of an append (the write's UTC time), so that no name of
        an earlier write is reused and one write's files sort together."""
        self.staging = target.parent / f".{target.name}.{token}.tmp"
        self.staged: list[Path] = []
        self.committed = False

    @classmethod
    async def begin(
        cls, ctx: Context, coll: Collective, target: Path, mode: WriteMode, *, directory: bool
    ) -> StagedOutput:
        """Agree with the other ranks on where to stage (rank 0 decides)."""
        mine = None
        if coll.rank == 0:
            await ctx.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
            tag = datetime.now(UTC).strftime("w%Y%m%dT%H%M%S%f") if mode == "append" else None
            mine = (uuid.uuid4().hex[:16], tag)
        token, tag = (await coll.allgather(mine, "stage"))[0]
        return cls(target, mode, directory=directory, token=token, tag=tag)

    def file_name(self, stem: str) -> str:
        """The name of a file of a directory output (with the write's tag when appending)."""
        return f"part-{self.tag}-{stem}" if self.tag else f"part-{stem}"

    def stage(self, name: str | None = None) -> Path:
        """Where to write the file ``name`` of a directory output, or the single file (None)."""
        if name is None:
            path = self.staging
        else:
            self.staging.mkdir(parents=True, exist_ok=True)
            path = self.staging / name
        self.staged.append(path)
        return path

    async def commit(self, ctx: Context, coll: Collective) -> list[str]:
        """Move every rank's staged files into place once every rank staged them all.

        Returns the final paths of this rank's files. A rank that failed makes
        this raise `RemoteRankError` on the others, before anything moved.
        """
        await coll.allgather(True, "staged")
        if coll.rank == 0:
            await ctx.to_thread(self._move_into_place)
        await coll.allgather(True, "committed")
        self.committed = True
        if not self.directory:
            return [str(self.target)] if self.staged else []
        return [str(self.target / path.name) for path in self.staged]

    def _move_into_place(self) -> None:
        target = self.target
        if self.mode == "error" and os.path.lexists(target):
            raise FileExistsError(
                f"`{target}` appeared while it was being written; it was left as it is, "
                "got mode='error'"
            )
        if not self.directory:
            if not self.staged:  # no chunk at all, so no schema: no file
                if self.mode == "overwrite":
                    _remove(target)
                return
            if target.is_dir() and not target.is_symlink():
                self._replace_old(lambda: os.replace(self.staging, target))
            else:
                os.replace(self.staging, target)
            self.committed = True
            return
        self.staging.mkdir(exist_ok=True)  # a directory output exists even without files
        if self.mode == "append" and target.is_dir():
            (target / SUCCESS_MARKER).unlink(missing_ok=True)
            for path in sorted(self.staging.iterdir()):
                os.replace(path, target / path.name)
            (target / SUCCESS_MARKER).touch()
            self.committed = True
            self.staging.rmdir()
            return
        (self.staging / SUCCESS_MARKER).touch()
        if os.path.lexists(target):
            self._replace_old(lambda: os.rename(self.staging, target))
        else:
            os.rename(self.staging, target)
        self.committed = True

    def _replace_old(self, move_new: Callable[[], None]) -> None:
        """Move the old target aside, the new output in, then delete the old one."""
        old = self.staging.with_suffix(".old")
        os.rename(self.target, old)
        try:
            move_new()
        except BaseException:
            os.rename(old, self.target)
            raise
        self.committed = True
        _remove(old)

    def abandon(self) -> None:
        """Remove what this rank staged (nothing once committed); the staging directory goes
        with the last rank's files. Synchronous, so that no cancellation cuts it short."""
        if self.committed:
            return
        for path in self.staged:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        if self.directory:
            with contextlib.suppress(OSError):  # other ranks' files may still be there
                (self.staging / SUCCESS_MARKER).unlink(missing_ok=True)
                self.staging.rmdir()


def _remove(path: Path) -> None:
    """Delete a file or a directory tree, whichever ``path`` is."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
