"""Logging: records of the ``streamnet`` logger carry the actor and the rank that made them."""

from __future__ import annotations

import logging

__all__ = ["ActorLogFilter", "logger"]

logger = logging.getLogger("streamnet")


class ActorLogFilter(logging.Filter):
    """Adds ``actor`` (name, or ``-``) and ``rank`` to every record it sees.

    It is on the ``streamnet`` logger already; add it to your own handler to
    get the same fields on your actors' records::

        handler.addFilter(ActorLogFilter())
        handler.setFormatter(logging.Formatter("%(rank)s %(actor)s %(message)s"))
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "actor"):  # unless the caller named it (`extra=`)
            from streamnet._actor import current_actor  # the actor module builds on logging

            node = current_actor()
            record.actor = node.name if node is not None else "-"
            record.rank = node.ctx.rank if node is not None else 0
        return True


logger.addFilter(ActorLogFilter())
