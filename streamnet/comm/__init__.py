"""Comm: how the ranks of a run reach each other, below the Context.

- `Communicator` (``_communicator.py``): the interface every transport implements
  (tagged point-to-point send and receive, allgather, barrier, abort), with
  `SingleCommunicator` for one rank and the failure record they share.
- `InProcessWorld`, `InProcessCommunicator` (``_in_process.py``): ranks in one process.
- `MPICommunicator`, `mpi_communicator` (``_mpi.py``; its endpoint ``_mpi_endpoint.py``):
  the processes of an MPI job.
- `RayCommunicator` (``_ray.py``): ranks as Ray actors.
- ``_wire.py``: payloads as a pickled header plus Arrow IPC buffers, across processes.
- ``_tagged_inbox.py``: received messages by tag, and who waits for them.
- ``_exchange.py``: `Exchange`, `Partitions`, owners `round_robin`/`contiguous`, the
  all-to-all of a collective on TableChunks; ``_inputs.py``: `inputs`, `InputSchema`, a
  collective's input stream and the schema its ranks agree on. They build on
  `Collective`, so `streamnet` exports them (this package is below the Context).

Collective actors reach their peers through `streamnet.Collective`, which tags a
running collective's messages on its Context's communicator.

The MPI and Ray transports (and the wire, which needs a backend's IPC) are
imported when first used: a single-rank run never loads them.
"""

from typing import TYPE_CHECKING

from channels.lowlevel import export_lazily, publish
from streamnet.comm._communicator import Communicator, SingleCommunicator, Tag
from streamnet.comm._in_process import InProcessCommunicator, InProcessWorld

if TYPE_CHECKING:
    from streamnet.comm._mpi import MPICommunicator, mpi_communicator
    from streamnet.comm._ray import RayCommunicator

__all__ = [
    "Communicator",
    "InProcessCommunicator",
    "InProcessWorld",
    "MPICommunicator",
    "RayCommunicator",
    "SingleCommunicator",
    "Tag",
    "mpi_communicator",
]

_LAZY = {
    "MPICommunicator": "streamnet.comm._mpi",
    "mpi_communicator": "streamnet.comm._mpi",
    "RayCommunicator": "streamnet.comm._ray",
}
__getattr__, __dir__ = export_lazily(globals(), "streamnet", _LAZY)
publish(globals(), "streamnet", [name for name in __all__ if name not in _LAZY])
