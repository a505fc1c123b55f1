"""Logging setup: one line per record, ``action=<key>`` first, for journald and tests.

Call sites use %-style arguments and a stable ``action`` key in ``extra``::

    log.info("chunk %s dead-lettered", chunk_id, extra={"action": "dead_letter"})

Never log secrets or chunk text.
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s action=%(action)s %(message)s"


class _ActionDefault(logging.Filter):
    """Give every record an ``action`` attribute (``-`` when the call site set none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "action"):
            record.action = "-"
        return True


def setup_logging(level: str | int = "INFO") -> None:
    """Configure the root logger for a service process (stderr; journald adds the time)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(_ActionDefault())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
