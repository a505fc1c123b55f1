"""Named SQL queries: database/queries.sql, blocks introduced by ``-- name: <query_name>``."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_BLOCK = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    text = resources.files("shield_orchestrator.database").joinpath("queries.sql").read_text()
    parts = _BLOCK.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def query(name: str) -> str:
    """The SQL text of one named query (KeyError names the query when it does not exist)."""
    return _load()[name]
