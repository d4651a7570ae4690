"""Spill directory: where a Context's spilled chunks go, and how they are removed.

Each Context spills into a folder of its own inside the spill directory,
``streamnet-spill-<host>-<pid>-<token>``. A spill file belongs to its chunk: it
is removed when the chunk is loaded back or garbage-collected. Besides, the
directory records which run (which running Network) spilled each file: when a
run fails or is cancelled, it removes that run's files, even of chunks its
error still references; when a run succeeds, the files of chunks it spilled and
still alive (returned in an actor's result, say) stay, loadable, until the chunk
goes or the Context closes. One run's end never touches another run's files,
so networks may run at once on one Context. The folder goes when the Context
closes or the process exits. A process that was killed leaves its folder
behind: every Context that starts in the same directory on the same host
removes the folders of processes that are no longer alive.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path

from streamnet.memory._leftovers import left_by_dead_process, process_tag

__all__ = ["SpillDirectory", "SpillStatistics"]

_PREFIX = "streamnet-spill-"
_checked_roots: set[Path] = set()
_checked_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class SpillStatistics:
    """What a Context spilled.

    Attributes
    ----------
    directory
        The Context's own folder, inside the spill directory.
    files_written, bytes_written
        Spill files written so far, and the in-memory bytes of the chunks they hold.
    files_present
        Spill files on disk now: those of chunks still spilled.
    """

    directory: Path
    files_written: int
    bytes_written: int
    files_present: int


class SpillDirectory:
    """A Context's folder for spilled chunks, inside ``root`` (Python's temporary directory
    by default).

    Making one checks that ``root`` is writable, so that a read-only or missing
    directory fails when the Context starts rather than at the first spill, and
    removes what killed processes left there.

    Raises
    ------
    OSError
        ``root`` cannot be created or written to; the message names it.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root if root is not None else tempfile.gettempdir()).absolute()
        _check_root(self.root)
        self.path = self.root / f"{_PREFIX}{process_tag()}-{uuid.uuid4().hex[:12]}"
        """This Context's folder (made at the first spill)."""
        self._lock = threading.Lock()
        self._files = self._bytes = 0
        self._runs: dict[object, list[Path]] = {}  # files spilled by each running network
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)

    def new_file(self, nbytes: int = 0) -> Path:
        """A fresh path for a spill file of a chunk of ``nbytes`` bytes, recorded as a file
        of the run of the calling actor (none outside an actor)."""
        from streamnet._actor import current_actor  # the actor module needs this one

        node = current_actor()
        run = node.network if node is not None else None
        path = self.path / f"{uuid.uuid4().hex}.arrow"
        with self._lock:
            self._files += 1
            self._bytes += nbytes
            if run is not None:
                self._runs.setdefault(run, []).append(path)
        self.path.mkdir(parents=True, exist_ok=True)
        return path

    def release(self, run: object, *, succeeded: bool) -> int:
        """The run ``run`` ended: forget its files, and remove those still on disk unless
        it ``succeeded``; the number removed.

        After a failed or cancelled run, a chunk it spilled can no longer be
        loaded (`SpillError`). After a successful one, chunks it spilled that are
        still alive keep their files until they are loaded back, collected, or
        the Context closes. Files of other runs are never touched.
        """
        with self._lock:
            paths = self._runs.pop(run, [])
        if succeeded:
            return 0
        removed = 0
        for path in paths:
            with contextlib.suppress(OSError):  # gone already: its chunk was loaded or collected
                os.unlink(path)
                removed += 1
        return removed

    def close(self) -> None:
        """Remove the folder and everything in it. Idempotent."""
        self._finalizer()

    def statistics(self) -> SpillStatistics:
        """Files and bytes spilled so far, and the files on disk now."""
        try:
            present = sum(1 for _ in os.scandir(self.path))
        except FileNotFoundError:
            present = 0
        with self._lock:
            return SpillStatistics(self.path, self._files, self._bytes, present)

    def __repr__(self) -> str:
        return f"<SpillDirectory {str(self.path)!r}>"


def _check_root(root: Path) -> None:
    """Check (once per process) that ``root`` is writable, and clean up after dead processes
    (every time)."""
    with _checked_lock:
        if root not in _checked_roots:
            try:
                root.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryFile(dir=root, prefix=".streamnet-probe-") as probe:
                    probe.write(b"\0" * 4096)
                    probe.flush()
            except OSError as exc:
                raise OSError(
                    f"spill directory `{root}` is not writable: {exc.strerror or exc}; pass "
                    "Context(spill_directory=...) a writable folder with room"
                ) from exc
            _checked_roots.add(root)
    _remove_leftovers(root)  # at every start: a process may have been killed since the last


def _remove_leftovers(root: Path) -> None:
    """Remove the spill folders that processes of this host left when they were killed."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if (
                entry.name.startswith(_PREFIX)
                and entry.is_dir(follow_symlinks=False)
                and left_by_dead_process(entry.name[len(_PREFIX) :])
            ):
                shutil.rmtree(entry.path, ignore_errors=True)
