"""Migrations: applied in order, idempotent, serialised, and equal to database/schema.sql."""

from __future__ import annotations

import asyncio
import uuid
from importlib import resources
from typing import Any

import asyncpg
import pytest
from shield_orchestrator.database.migrate import load_migrations, migrate
from shield_orchestrator.errors import MigrationError

from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

_CATALOG = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY table_name, column_name""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' ORDER BY 1, 2""",
    "functions": """
        SELECT proname, pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace ORDER BY 1""",
}


async def _catalog(dsn: str) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {k: [tuple(r) for r in await conn.fetch(q)] for k, q in _CATALOG.items()}
    finally:
        await conn.close()


async def _fresh_db(server: PostgresServer) -> str:
    name = f"m_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server.dsn("postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def test_migrations_equal_schema_sql(postgres_srv: PostgresServer, pg_template: str) -> None:
    """(``pg_template``: the server is up and accepting connections.)"""
    migrated, from_schema = await _fresh_db(postgres_srv), await _fresh_db(postgres_srv)
    conn = await asyncpg.connect(postgres_srv.dsn(migrated))
    try:
        assert await migrate(conn) == [m.version for m in load_migrations()]
    finally:
        await conn.close()
    schema = resources.files("shield_orchestrator.database").joinpath("schema.sql").read_text()
    conn = await asyncpg.connect(postgres_srv.dsn(from_schema))
    try:
        await conn.execute(schema)
    finally:
        await conn.close()
    a = await _catalog(postgres_srv.dsn(migrated))
    b = await _catalog(postgres_srv.dsn(from_schema))
    assert a == b
    assert {c[0] for c in a["columns"]} == {
        "jobs", "chunk_failures", "schema_migrations",
        "repo_index_state", "repo_files", "repo_index_runs", "repo_run_files",
        "repo_doc_deletions", "repositories", "repo_run_commands",
    }  # fmt: skip


async def test_migrate_is_idempotent_and_serialised(
    postgres_srv: PostgresServer, pg_template: str
) -> None:
    name = await _fresh_db(postgres_srv)
    conns = [await asyncpg.connect(postgres_srv.dsn(name)) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        # exactly one run applied everything; the others waited on the lock and found it done
        assert sorted(len(r) for r in results) == [0, 0, len(load_migrations())]
        assert await migrate(conns[0]) == []
        rows = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in load_migrations()]
    finally:
        for c in conns:
            await c.close()


async def test_changed_migration_is_refused(pg_pool: Any) -> None:
    async with pg_pool.acquire() as conn:
        await conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn)


async def test_status_cannot_be_unknown(pg_pool: Any) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_pool.execute(
            "INSERT INTO jobs (job_id, workspace, status, chunks_total) VALUES ($1, 'w', 'x', 1)",
            uuid.uuid4(),
        )
