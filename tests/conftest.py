"""Session-wide fixtures: the rendered package on sys.path, real Redis and PostgreSQL.

The rendered tree comes from ``make render``; ``SHIELD_RENDERED`` picks it (the Makefile runs
the suite once on build/rendered/default and again on build/rendered/alt).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

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


# --- Worker runtime fixtures (issue 5): fresh PostgreSQL databases, a flushed Redis --------
# Each test that needs PostgreSQL gets its own database cloned from a template database on
# which every migration was applied once per session (CREATE DATABASE ... TEMPLATE).

PG_TEMPLATE_DB = "shield_template"


async def _pg_connect(dsn: str, timeout_s: float = 60.0) -> Any:
    """asyncpg.connect, waiting while a just-started server still says it is starting up."""
    import asyncio
    import time

    import asyncpg

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await asyncpg.connect(dsn)
        except asyncpg.CannotConnectNowError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _pg_admin(server: PostgresServer, sql: str) -> None:
    conn = await _pg_connect(server.dsn("postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_create_template(server: PostgresServer) -> None:
    from shield_orchestrator.database.migrate import migrate

    await _pg_admin(server, f'CREATE DATABASE "{PG_TEMPLATE_DB}"')
    conn = await _pg_connect(server.dsn(PG_TEMPLATE_DB))
    try:
        await migrate(conn)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template(postgres_srv: PostgresServer) -> str:
    """Name of a database with every migration applied (never used directly: cloned)."""
    import asyncio

    asyncio.run(_pg_create_template(postgres_srv))
    return PG_TEMPLATE_DB


@pytest.fixture
async def pg_database(postgres_srv: PostgresServer, pg_template: str) -> AsyncIterator[str]:
    """A fresh migrated database for this test (dropped afterwards); yields its name."""
    import uuid

    name = f"t_{uuid.uuid4().hex[:16]}"
    await _pg_admin(postgres_srv, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield name
    await _pg_admin(postgres_srv, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pg_pool(postgres_srv: PostgresServer, pg_database: str) -> AsyncIterator[Any]:
    """An asyncpg pool on this test's fresh database (closed afterwards)."""
    import asyncpg

    pool = await asyncpg.create_pool(postgres_srv.dsn(pg_database), min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def redis_client(redis_srv: RedisServer) -> AsyncIterator[Any]:
    """A decoded asyncio Redis client on the session server, FLUSHALLed before the test."""
    from redis.asyncio import Redis

    client = Redis(
        host="127.0.0.1", port=redis_srv.port, password=redis_srv.password, decode_responses=True
    )
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def worker_settings(redis_srv: RedisServer, postgres_srv: PostgresServer, pg_database: str) -> Any:
    """Settings pointing at the test Redis and this test's database, engine noop."""
    from shield_orchestrator.settings import Settings

    return Settings(
        redis_host="127.0.0.1",
        redis_port=redis_srv.port,
        redis_db=0,
        redis_password=redis_srv.password,
        postgres_host="127.0.0.1",
        postgres_port=postgres_srv.port,
        postgres_db=pg_database,
        postgres_user=postgres_srv.user,
        postgres_password=postgres_srv.password,
        engine="noop",
    )
