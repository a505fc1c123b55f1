"""Each API process's asyncpg pool releases a connection without a reset round trip.

asyncpg's default release runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
RESET ALL`` on the connection, one more round trip per query made through the pool;
database/pool.py gives the pool a ``reset`` that does nothing (the app leaves no session
state on a pooled connection). Real PostgreSQL; asyncpg's query logger sees every statement
the connection sends, so the tests count them, and an asyncpg default pool on the same
database shows what the count would be with the reset.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from shield_orchestrator.database.pool import create_pool

from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration


async def statements_per_query(pool: Any, queries: int) -> list[str]:
    """The statements the pool's one connection sends for ``queries`` pool.fetchval calls."""
    sent: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda record: sent.append(record.query))
    for i in range(queries):
        assert await pool.fetchval("SELECT $1::int", i) == i
    return sent


async def test_a_release_sends_nothing_after_the_query(worker_settings: Any) -> None:
    pool = await create_pool(worker_settings, min_size=1, max_size=1)
    try:
        assert await statements_per_query(pool, 5) == ["SELECT $1::int"] * 5
    finally:
        await pool.close()


async def test_asyncpg_default_pool_would_send_a_reset_per_release(
    postgres_srv: PostgresServer, pg_database: str
) -> None:
    """The control: the count above is not blind to the reset (the logger sees it)."""
    pool = await asyncpg.create_pool(postgres_srv.dsn(pg_database), min_size=1, max_size=1)
    try:
        sent = await statements_per_query(pool, 5)
    finally:
        await pool.close()
    assert sent.count("SELECT $1::int") == 5
    assert len([q for q in sent if "RESET ALL" in q]) >= 5


async def test_a_transaction_left_open_is_still_rolled_back(worker_settings: Any) -> None:
    """asyncpg's own part of a release (ROLLBACK of an open transaction) stays."""
    pool = await create_pool(worker_settings, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE left_open (i int)")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open')") is None
    finally:
        await pool.close()
