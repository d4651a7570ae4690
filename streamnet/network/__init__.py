"""Network: a graph of actors joined by channels, and how it runs.

- `Network`, `run_actor_network` (``_network.py``): build, validate, describe, run.
- ``_wiring.py``: wiring problems as pure functions (dangling and shared channels,
  payload types, undeclared cycles), all reported at once.
- ``_driver.py``: one run: the actors' tasks, failures, cancellation, commit.
- ``_restart.py``: restarting an actor as its `RestartPolicy` says.
- ``_unread.py``: an actor that returns leaving input unread fails.
- ``_ranks.py``: every rank must build the same collectives.
- ``_liveness.py``: deadlock and stall; ``_loop_monitor.py``: a blocked event loop.
- ``_sync.py``: ``run()`` from scripts (Ctrl-C) and notebooks (a running loop).
- ``_capture.py``: ``streamnet graph`` captures a job's network instead of running it.
- `on_success` (``_on_success.py``): commit steps, run once every actor succeeded.
"""

from channels.lowlevel import publish
from streamnet.network._network import Network, run_actor_network
from streamnet.network._on_success import on_success

__all__ = ["Network", "on_success", "run_actor_network"]

publish(globals(), "streamnet", __all__)
