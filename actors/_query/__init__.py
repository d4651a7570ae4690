"""Polars queries as networks of library actors (``from_polars_query``, ``collect_query``).

- ``_plan.py``: Polars' optimised plan, read through its `NodeTraverser` into `PlanNode`s;
- ``_exprs.py``: its expressions, read back into Polars expressions (and aggregations
  split into partials);
- ``_build.py``: the nodes built into actors, what does not distribute on rank 0;
- ``_channel_scan.py``: ``scan_channel``, a LazyFrame over a channel, and how the
  translator knows it;
- ``_rank_zero.py``: the actors that gather a stream on rank 0 and run Polars there;
- ``_query.py``: the public functions.
"""

from actors._query._build import QueryNetwork
from actors._query._channel_scan import scan_channel
from actors._query._query import collect_query, collect_query_async, from_polars_query

__all__ = ["QueryNetwork", "collect_query", "collect_query_async", "from_polars_query", "scan_channel"]
