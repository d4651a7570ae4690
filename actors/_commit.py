"""Atomic output: files staged under temporary names and published only when the run succeeds.

Each rank of a writer stages what it writes next to the target, under a hidden
name of its own, ``.<target name>.<host>-<pid>-<token>.tmp`` (a file, or a
directory of files), which no other rank writes into or removes. Once the whole
input stream ended on every rank, rank 0 moves the other ranks' files into its
own staging directory, one by one. That is all a writer does itself: the output
is published by the commit step it registered with the network
(`streamnet.on_success`), which runs only after every actor of the run, on every
rank, ended well. A single file is then renamed onto its path; a directory gets
its ``_SUCCESS`` marker, then appears at its path in one rename (or, to append,
its files are moved in and the marker is written last, as Hadoop and Spark
committers do). A failed or cancelled run removes what is still staged, so a
failed run leaves nothing that looks like a result, and a rank's cleanup never
pulls files from under a rank still writing. With ``mode="overwrite"`` the old
output stays until the new one is complete and the run succeeded.

Each output's publication is atomic (one rename), but several outputs of one
network are published one after the other: if one fails to publish (its target
appeared meanwhile, a permission), those published before it stay, the others
are removed, and the run fails saying which is which.

A writer that is killed (SIGKILL, a crash) cannot clean up. The next write to
the same target removes the staging leftovers of the writers of this host whose
process is no longer running, and puts back an old output that a killed
overwrite had moved aside (``.<target name>.<tag>.old``) before the new one was in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, NoReturn, ParamSpec, TypeVar, get_args

from actors._store_output import StoreOutput, check_store_target
from actors._typing import WriteMode
from streamnet import (
    ActorDefinition,
    Collective,
    Context,
    FilePath,
    StorePath,
    define_actor,
    left_by_dead_process,
    on_success,
    process_tag,
)

__all__ = [
    "SUCCESS_MARKER",
    "StagedOutput",
    "begin_output",
    "check_output",
    "check_target",
    "output_actor",
    "remove_leftovers",
]

P = ParamSpec("P")
R = TypeVar("R")

SUCCESS_MARKER = "_SUCCESS"
"""The empty file a directory output gets last, once all its files are in place."""

_FAILURE_WAIT = 30.0
"""Seconds rank 0 waits for the failure of a rank whose staged files vanished before it
took them: that rank removed them because it is failing, and its failure reaches every
rank within moments. Only files removed by something else (a person) make it run out."""

_LEFTOVER = re.compile(r"(?P<owner>.+)\.(?P<kind>tmp|old)")
"""What follows ``.<target name>.`` in the name of a writer's staging place, or of an old
output it moved aside: the owner (``<host>-<pid>-<token>``) and which of the two it is."""


def check_output(target: FilePath, mode: object, *, directory: bool, actor: str) -> None:
    """Refuse a write that cannot succeed, before anything runs: :func:`check_target` for a
    local target, `check_store_target` for an object of a store."""
    if isinstance(target, StorePath):
        _check_mode(mode, directory=directory, actor=actor)
        assert mode in get_args(WriteMode)
        check_store_target(target, mode, actor=actor)  # type: ignore[arg-type]
    else:
        check_target(target, mode, directory=directory, actor=actor)


async def begin_output(
    ctx: Context, coll: Collective, target: FilePath, mode: WriteMode, *, directory: bool
) -> StagedOutput | StoreOutput:
    """The staged output of a writer of ``target``: files renamed into place on a local
    disk (`StagedOutput`), objects copied into place on a store (`StoreOutput`)."""
    if isinstance(target, StorePath):
        return await StoreOutput.begin(ctx, coll, target, mode, directory=directory)
    return await StagedOutput.begin(ctx, coll, target, mode, directory=directory)


def _check_mode(mode: object, *, directory: bool, actor: str) -> None:
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


def check_target(target: Path, mode: object, *, directory: bool, actor: str) -> None:
    """Refuse a write that cannot succeed, before anything runs.

    Before it looks at ``target``, it removes what killed writers left next to
    it (see :func:`remove_leftovers`), so that an old output a killed overwrite
    had moved aside is back at its path.

    Raises
    ------
    ValueError
        ``mode`` is not a :data:`WriteMode`, or ``"append"`` is asked of a single file.
    FileExistsError
        ``mode="error"`` and the target exists, or ``"append"`` to an existing file.
    """
    _check_mode(mode, directory=directory, actor=actor)
    remove_leftovers(target)
    if mode == "error" and os.path.lexists(target):
        raise FileExistsError(
            f"actor `{actor}`: `{target}` already exists; pass mode='overwrite' to replace it "
            "or mode='append' to add files to it, got mode='error'"
        )
    if mode == "append" and target.exists() and not target.is_dir():
        raise FileExistsError(
            f"actor `{actor}`: `{target}` is a file, but mode='append' adds files to a directory"
        )


def remove_leftovers(target: Path) -> None:
    """Remove what writers of ``target`` left next to it when they were killed.

    The staged files and directories of a writer of this host whose process is
    no longer running are removed. An old output such a writer had moved aside
    to overwrite it is put back when ``target`` is missing (the writer was killed
    before its new output was in place), and removed otherwise. Nothing of a
    running writer, or of another host's, is touched.
    """
    prefix = f".{target.name}."
    try:
        names = [entry.name for entry in os.scandir(target.parent)]
    except OSError:  # no folder yet, or one that cannot be read: nothing to clean
        return
    for name in names:
        found = _LEFTOVER.fullmatch(name[len(prefix) :]) if name.startswith(prefix) else None
        if found is None or not left_by_dead_process(found["owner"]):
            continue
        path = target.parent / name
        if found["kind"] == "old" and not os.path.lexists(target):
            with contextlib.suppress(OSError):  # another rank may have put it back first
                os.rename(path, target)
        else:
            _remove(path)


def output_actor(
    check: Callable[..., None],
) -> Callable[[Callable[Concatenate[Context, P], Awaitable[R]]], ActorDefinition[P, R]]:
    """Declare a writer: a collective actor whose nodes call ``check(name, **arguments)``
    when made, so that a bad target fails while the network is built, before anything runs."""

    return define_actor(collective=True, check=check)


class StagedOutput:
    """What one rank's writer stages for ``target``, and its commit or removal.

    Make it with :meth:`begin` on every rank (it registers the commit step with
    the running network); stage each file at :meth:`stage`; once the stream
    ended, :meth:`prepare` gathers every rank's files on rank 0. The network
    then calls :meth:`publish` once the whole run succeeded on every rank, or
    :meth:`abandon` if it failed.
    """

    def __init__(
        self, target: Path, mode: WriteMode, *, directory: bool, tag: str | None, publisher: bool
    ) -> None:
        self.target = target
        self.mode = mode
        self.directory = directory
        self.tag = tag
        """Prefix of the file names of an append (the write's UTC time), so that no name of
        an earlier write is reused and one write's files sort together."""
        self.publisher = publisher
        """Whether this rank (rank 0) gathers the files and puts the output in place."""
        owner = f"{process_tag()}-{uuid.uuid4().hex[:12]}"
        self.staging = target.parent / f".{target.name}.{owner}.tmp"
        """This rank's own staging place: only this rank writes into it and removes it; rank
        0 only takes files out of it, once this rank staged them all."""
        self.staged: list[Path] = []
        self.committed = False
        """Nothing of this rank's is left to remove: its output is in place (rank 0), or
        rank 0 took its files (the others)."""

    @classmethod
    async def begin(
        cls, ctx: Context, coll: Collective, target: Path, mode: WriteMode, *, directory: bool
    ) -> StagedOutput:
        """Agree with the other ranks on the write's tag (rank 0 decides, and makes the folder
        that holds the target), and register the output's commit step with the network."""
        mine = None
        if coll.rank == 0:
            await ctx.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
            mine = datetime.now(UTC).strftime("w%Y%m%dT%H%M%S%f") if mode == "append" else None
        tag = (await coll.allgather("stage", mine))[0]
        output = cls(target, mode, directory=directory, tag=tag, publisher=coll.rank == 0)
        on_success(output.publish, abort=output.abandon)
        return output

    def file_name(self, stem: str) -> str:
        """The name of a file of a directory output (with the write's tag when appending)."""
        return f"part-{self.tag}-{stem}" if self.tag else f"part-{stem}"

    def stage(self, name: str | None = None) -> Path:
        """Where to write the file ``name`` of a directory output (a name, or a relative path
        such as ``year=2024/part-0.parquet``), or the single file (None)."""
        if name is None:
            path = self.staging
        else:
            path = self.staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
        self.staged.append(path)
        return path

    async def prepare(self, ctx: Context, coll: Collective) -> list[str]:
        """Once every rank staged all its files, gather them in rank 0's staging place.

        Returns the paths this rank's files will have once published. A rank that
        failed makes this raise `RemoteRankError` on the others, before anything
        moved; one that fails while rank 0 takes the files makes rank 0 raise it too.
        """
        everyone = await coll.allgather(
            "staged", [(str(path), self._relative(path)) for path in self.staged]
        )
        if self.publisher:
            peers = [
                (r, Path(path), name) for r, paths in enumerate(everyone) if r for path, name in paths
            ]
            try:
                await ctx.to_thread(self._gather, peers)
            except _PeerGaveUp as gone:
                await _failure_of(coll, gone.rank, gone)
        await coll.allgather("gathered", True)
        if not self.publisher:  # rank 0 took this rank's files: its own place is empty
            self.committed = True
            with contextlib.suppress(OSError):
                self.staging.rmdir()
        if not self.directory:
            return [str(self.target)] if self.staged else []
        return [str(self.target / self._relative(path)) for path in self.staged]

    def _relative(self, path: Path) -> str:
        """The path of a staged file inside the output (its name, or ``key=value/<name>``)."""
        return path.relative_to(self.staging).as_posix() if path != self.staging else ""

    def _gather(self, peers: list[tuple[int, Path, str]]) -> None:
        """Take the other ranks' files (``(rank, path, name in the output)``) into this
        rank's staging place."""
        if not self.directory:
            return  # one file is written by one rank only
        self.staging.mkdir(parents=True, exist_ok=True)  # a directory output exists even empty
        for rank, path, name in peers:
            destination = self.staging / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            _take(rank, path, destination)

    def publish(self) -> None:
        """Put the output gathered on rank 0 at its path (nothing on the other ranks).

        Run by the network once the whole run succeeded. A single file is one
        rename; a directory gets its ``_SUCCESS`` marker, then appears in one
        rename; an overwrite moves the old output aside first and back if the
        rename fails; an append moves the files in, the marker last.
        """
        if not self.publisher:
            return
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
        if self.mode == "append" and target.is_dir():
            self._append(sorted(p for p in self.staging.rglob("*") if not p.is_dir()))
            return
        (self.staging / SUCCESS_MARKER).touch()
        if os.path.lexists(target):
            self._replace_old(lambda: os.rename(self.staging, target))
        else:
            os.rename(self.staging, target)
        self.committed = True

    def _append(self, files: list[Path]) -> None:
        """Move the staged files into the existing directory, the marker last; on failure,
        remove those moved in, so that the directory is as it was."""
        marker = self.target / SUCCESS_MARKER
        had_marker = marker.exists()
        marker.unlink(missing_ok=True)
        moved: list[Path] = []
        try:
            for path in files:
                destination = self.target / path.relative_to(self.staging)
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, destination)
                moved.append(destination)
            marker.touch()
        except BaseException:
            for path in moved:
                with contextlib.suppress(OSError):
                    path.unlink()
            if had_marker:
                with contextlib.suppress(OSError):
                    marker.touch()
            raise
        self.committed = True
        _remove(self.staging)  # the folders of partitions, emptied

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
        """Remove what is still in this rank's staging place (nothing once committed).

        Run by the writer when it fails, and by the network when the run fails
        after the writer ended. Synchronous, so that no cancellation cuts it short.
        """
        if not self.committed:
            _remove(self.staging)


class _PeerGaveUp(Exception):
    """Files a rank staged vanished before rank 0 took them: that rank removed them."""

    def __init__(self, rank: int, path: Path) -> None:
        super().__init__(
            f"the file `{path}` that rank {rank} staged vanished before it could be moved "
            "into place"
        )
        self.rank = rank


def _take(rank: int, source: Path, destination: Path) -> None:
    """Move a file rank ``rank`` staged; its disappearance is that rank's giving up."""
    try:
        os.replace(source, destination)
    except FileNotFoundError:
        if rank == 0 or os.path.lexists(source):
            raise  # the destination's folder is missing: not the staging rank's doing
        raise _PeerGaveUp(rank, source) from None


async def _failure_of(coll: Collective, rank: int, gone: _PeerGaveUp) -> NoReturn:
    """Raise the failure of ``rank``, which removed its staged files because it is failing:
    it reaches this rank as `RemoteRankError` (a `FileNotFoundError` if it never comes)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_FAILURE_WAIT):
            await coll.recv(rank, "gave up")  # never sent: only that rank's failure ends it
    raise FileNotFoundError(str(gone))


def _remove(path: Path) -> None:
    """Delete a file or a directory tree, whichever ``path`` is."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
