"""Atomic output on an object store: objects staged under hidden keys, copied into place on success.

A store has no rename, so a writer of a `StorePath` target stages each object
under a hidden key of its own next to the target,
``.<target name>.<host>-<pid>-<token>.tmp`` (the object itself, or a prefix of
objects), which readers skip (names that start with ``.``). Each object is
uploaded as it is written (a multipart upload, by pyarrow), so it becomes an
object only once complete; a failed writer closes what it opened and deletes
what it staged. Once every actor of the run ended well, on every rank, rank 0
publishes (the commit step registered with `streamnet.on_success`): each
staged object is copied to its key (a copy inside the store: the object
appears whole, or not at all), then, for a directory, the ``_SUCCESS`` marker
is written last; with ``mode="overwrite"`` the old objects that the new output
does not replace are deleted after it. The staged keys are then deleted. A
failed or cancelled run deletes what is staged and leaves the target as it was.

Unlike a local rename, publication is not one step: a reader listing the
target while it is published may see some of the new objects; one that waits
for the ``_SUCCESS`` marker sees them all.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

from actors._typing import WriteMode
from streamnet import Collective, Context, StorePath, on_success, process_tag

__all__ = ["StoreOutput", "check_store_target"]

SUCCESS_MARKER = "_SUCCESS"


def check_store_target(target: StorePath, mode: WriteMode, *, actor: str) -> None:
    """Refuse a write to a store that cannot succeed (``mode="error"`` and the target
    exists, or ``"append"`` to an object), before anything runs.

    Raises
    ------
    FileExistsError
        As `check_target` does for a local target.
    FileReadError
        The store refuses to say (a missing bucket, credentials); the message names the URI.
    """
    kind = target.kind()
    if mode == "error" and kind is not None:
        raise FileExistsError(
            f"actor `{actor}`: `{target}` already exists; pass mode='overwrite' to replace it "
            "or mode='append' to add files to it, got mode='error'"
        )
    if mode == "append" and kind == "file":
        raise FileExistsError(
            f"actor `{actor}`: `{target}` is an object, but mode='append' adds objects to a "
            "directory (a key prefix)"
        )


class StoreOutput:
    """What one rank's writer stages on a store for ``target``, and its commit or deletion.

    The same protocol as `StagedOutput` (:meth:`begin`, :meth:`stage`,
    :meth:`file_name`, :meth:`prepare`, then :meth:`publish` or :meth:`abandon`).
    """

    def __init__(
        self, target: StorePath, mode: WriteMode, *, directory: bool, tag: str | None,
        publisher: bool,
    ) -> None:  # fmt: skip
        self.target = target
        self.mode = mode
        self.directory = directory
        self.tag = tag
        self.publisher = publisher
        owner = f"{process_tag()}-{uuid.uuid4().hex[:12]}"
        self.staging = target.parent / f".{target.name}.{owner}.tmp"
        self.staged: list[StorePath] = []
        """The objects this rank staged (on rank 0 after `prepare`: every rank's)."""
        self.names: dict[StorePath, str] = {}
        """On rank 0 after `prepare`: each staged object's path inside the output."""
        self.committed = False
        """Nothing of this rank's is left to delete: published (rank 0), or handed to rank 0."""

    @classmethod
    async def begin(
        cls, ctx: Context, coll: Collective, target: StorePath, mode: WriteMode, *, directory: bool
    ) -> StoreOutput:
        """Agree on the write's tag (rank 0 decides) and register the commit step."""
        mine = None
        if coll.rank == 0 and mode == "append":
            mine = datetime.now(UTC).strftime("w%Y%m%dT%H%M%S%f")
        tag = (await coll.allgather("stage", mine))[0]
        output = cls(target, mode, directory=directory, tag=tag, publisher=coll.rank == 0)
        on_success(output.publish, abort=output.abandon)
        return output

    def file_name(self, stem: str) -> str:
        """The name of an object of a directory output (with the write's tag when appending)."""
        return f"part-{self.tag}-{stem}" if self.tag else f"part-{stem}"

    def stage(self, name: str | None = None) -> StorePath:
        """Where to write the object ``name`` of a directory output, or the single object."""
        path = self.staging if name is None else self.staging / name
        self.staged.append(path)
        return path

    async def prepare(self, ctx: Context, coll: Collective) -> list[str]:
        """Once every rank staged all its objects, hand them to rank 0, which publishes them.

        Returns the URIs this rank's objects will have once published.
        """
        mine = [self._relative(path) for path in self.staged]
        everyone = await coll.allgather(
            "staged", [(path.path, self._relative(path)) for path in self.staged]
        )
        if self.publisher:
            self.names = {self.target.at(p): name for paths in everyone for p, name in paths}
            self.staged = list(self.names)
        await coll.allgather("gathered", True)
        if not self.publisher:  # rank 0 deletes them if the run fails from here on
            self.committed = True
        if not self.directory:
            return [str(self.target)] if mine else []
        return [str(self.target / name) for name in mine]

    def _relative(self, path: StorePath) -> str:
        """The path of a staged object inside the output (its name, or ``key=value/<name>``)."""
        return path.path[len(self.staging.path) + 1 :]

    def publish(self) -> None:
        """Copy the staged objects into place, the marker last (rank 0 only), then delete
        the staged keys and, for an overwrite, the old objects not replaced."""
        if not self.publisher:
            return
        target = self.target
        kind = target.kind()
        if self.mode == "error" and kind is not None:
            raise FileExistsError(
                f"`{target}` appeared while it was being written; it was left as it is, "
                "got mode='error'"
            )
        fs = target.filesystem
        if not self.directory:
            if self.staged:
                fs.copy_file(self.staged[0].path, target.path)
            elif self.mode == "overwrite" and kind == "file":
                fs.delete_file(target.path)
            self.committed = True
            self.abandon_staged()
            return
        old = target.objects() if self.mode == "overwrite" else []
        marker = target / SUCCESS_MARKER
        if self.mode == "append":
            with contextlib.suppress(FileNotFoundError):
                fs.delete_file(marker.path)
        written = set()
        for path in self.staged:
            destination = target / self.names.get(path, path.name)
            fs.copy_file(path.path, destination.path)
            written.add(destination.path)
        with fs.open_output_stream(marker.path):
            pass
        written.add(marker.path)
        self.committed = True
        for path in old:
            if path.path not in written:
                fs.delete_file(path.path)
        self.abandon_staged()

    def abandon_staged(self) -> None:
        """Delete the staged objects (best effort: a failure leaves hidden keys only)."""
        fs = self.target.filesystem
        for path in self.staged:
            with contextlib.suppress(OSError):
                fs.delete_file(path.path)

    def abandon(self) -> None:
        """Delete what is still staged (nothing once committed or handed to rank 0).

        Run by the writer when it fails, and by the network when the run fails.
        """
        if not self.committed:
            self.abandon_staged()
