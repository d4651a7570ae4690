"""Observe: what a network did, for people (statistics, progress, timeline, picture, logs).

- `NetworkStatistics`, `ActorStatistics`, `CollectiveStatistics`, `CollectiveTraffic` (``_statistics.py``):
  per-actor and per-channel counts, live while a network runs.
- `ProgressTracker` (``_progress.py``): rows the sources read against their total; a bar.
- `Timeline`, `Span` (``_timeline.py``): when each actor was busy or blocked.
- ``_picture.py``: the network as DOT or SVG (`PictureEngine` says who draws it).
- `ActorLogFilter` (``_logging.py``): log records carry the actor and the rank.

Nothing here imports the Network: pictures read a network's description (a Protocol).
"""

from channels.lowlevel import publish
from streamnet._typing import PictureEngine, SpanKind
from streamnet.observe._logging import ActorLogFilter
from streamnet.observe._progress import ProgressTracker
from streamnet.observe._statistics import (
    ActorStatistics,
    CollectiveStatistics,
    CollectiveTraffic,
    NetworkStatistics,
    record_bytes_read,
)
from streamnet.observe._timeline import Span, Timeline

__all__ = [
    "ActorLogFilter",
    "ActorStatistics",
    "CollectiveStatistics",
    "CollectiveTraffic",
    "NetworkStatistics",
    "PictureEngine",
    "ProgressTracker",
    "Span",
    "SpanKind",
    "Timeline",
    "record_bytes_read",
]

publish(globals(), "streamnet", __all__)
