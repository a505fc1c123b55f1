"""Session-wide fixtures: the rendered package on sys.path, real Redis and PostgreSQL.

The rendered tree comes from ``make render``; ``SHIELD_RENDERED`` picks it (the Makefile runs
the suite once on build/rendered/default and again on build/rendered/alt).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import PostgresServer, RedisServer, postgres_server, redis_server

REPO = Path(__file__).resolve().parent.parent
RENDERED = Path(os.environ.get("SHIELD_RENDERED", REPO / "build" / "rendered" / "default"))

if not (RENDERED / "shield_orchestrator" / "__init__.py").is_file():
    raise pytest.UsageError(f"no rendered package under {RENDERED}: run `make render` first")
sys.path.insert(0, str(RENDERED))


@pytest.fixture(scope="session")
def rendered_root() -> Path:
    """The rendered tree under test (default or alt)."""
    return RENDERED


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RedisServer]:
    """One real redis-server for the session (tests isolate themselves with FLUSHALL)."""
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_srv() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the session (tests get fresh databases)."""
    with postgres_server() as server:
        yield server
