"""The small frozen records the backends' methods take and return."""

from __future__ import annotations

from dataclasses import dataclass

from streamnet._typing import BackendName

__all__ = ["Packed"]


@dataclass(frozen=True, slots=True, eq=False)
class Packed:
    """A chunk packed for the wire (or a spill file): a small header and its data's frames.

    Made by `Backend.pack`; `Backend.unpack` of a backend of the same name reads it
    back, on this rank or another. A transport sends ``frames`` as they are, out of
    band, without copying them.

    Attributes
    ----------
    backend
        The name of the backend that packed it (only one of that name unpacks it).
    header
        A few bytes telling how to read ``frames`` (on the CPU: the format and the rows).
    frames
        The data (on the CPU: one Arrow IPC stream).
    nbytes
        Bytes in ``frames``, all together.
    """

    backend: BackendName
    header: bytes
    frames: tuple[memoryview, ...]
    nbytes: int
