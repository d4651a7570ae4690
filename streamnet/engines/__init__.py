"""Engines: what starts the ranks of a run and gives each its Context.

- `run_ranks`, `run_ranks_async` (``_in_process.py``): N ranks in this process.
- `run_on_ray` (``_ray.py``): N ranks as Ray actors.
- ``streamnet run -n N job.py`` (``_launcher.py``): N processes through ``mpiexec``;
  inside each, `launched_ranks` tells ``Context()`` to join the others over MPI.

The pipeline code is the same under each: a job builds its network on the Context
it is given (or on ``Context()``) and runs it.
"""

from channels.lowlevel import publish
from streamnet.engines._in_process import run_ranks, run_ranks_async
from streamnet.engines._launcher import launched_ranks
from streamnet.engines._ray import run_on_ray

__all__ = ["launched_ranks", "run_on_ray", "run_ranks", "run_ranks_async"]

publish(globals(), "streamnet", __all__)
