"""``python -m shield_orchestrator.engines.storage_check``: are the configured storages in use?

The workers role's validation runs this on each worker host (as the service user, with the
services' EnvironmentFile) once the workers have started: LightRAG creates its tables and
collections when its storages initialise, so after a start each configured storage must hold
the workspace's structures, and no other storage may hold its data (engines/storage_guard.py).
Each problem names what is missing and the fix; exit status 1 when there is any.
"""

from __future__ import annotations

import asyncio

from shield_orchestrator.engines import lightrag_setup, storage_guard
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.settings import tls_client_context

# Created by PGKVStorage, PGDocStatusStorage and PGTableGraphStorage at initialise (1.5.7).
POSTGRES_TABLES = (
    "lightrag_doc_full",
    "lightrag_doc_chunks",
    "lightrag_doc_status",
    "lightrag_graph_nodes",
    "lightrag_graph_edges",
)
VECTOR_NAMESPACES = 3  # entities, relationships, chunks
_WORKER_LOG = "journalctl -u 'shield-orchestrator-worker@*'"


async def _postgres_problems(config: EngineConfig) -> tuple[list[str], list[str]]:
    import asyncpg

    problems: list[str] = []
    found: list[str] = []
    conn = await asyncpg.connect(
        host=config.postgres_host,
        port=config.postgres_port,
        database=config.postgres_db,
        user=config.postgres_user,
        password=config.postgres_password,
        ssl=tls_client_context(config.tls_ca_file) if config.postgres_tls else None,
    )
    try:
        if config.storage == "postgres":
            for table in POSTGRES_TABLES:
                if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
                    found.append(table)
                else:
                    problems.append(
                        f"LightRAG's table {table} is missing in database {config.postgres_db!r}: "
                        f"the worker has not initialised its PostgreSQL storages ({_WORKER_LOG})."
                    )
        if config.vector_storage == "postgres":
            version = await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname='vector'"
            )
            if version is None:
                problems.append(
                    f"pgvector is not enabled in database {config.postgres_db!r}: install it on "
                    "the PostgreSQL host (roles/postgresql, postgresql_pgvector: true; Debian 13 "
                    "ships postgresql-17-pgvector) or set "
                    "orchestrator_engine_vector_storage: milvus."
                )
            else:
                found.append(f"pgvector {version}")
            tables = await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'lightrag\\_vdb\\_%'"
            )
            if tables < VECTOR_NAMESPACES:
                problems.append(
                    f"{tables} of LightRAG's {VECTOR_NAMESPACES} vector tables exist in database "
                    f"{config.postgres_db!r}: the worker has not initialised them ({_WORKER_LOG})."
                )
    finally:
        await conn.close()
    return problems, found


def _milvus_problems(config: EngineConfig) -> tuple[list[str], list[str]]:
    root = storage_guard.milvus_uri(config.working_dir)
    collections = [
        c.name for c in storage_guard.milvus_collections(config.working_dir, config.workspace)
    ]
    if len(collections) < VECTOR_NAMESPACES:
        return [
            f"Milvus Lite under {root} holds {len(collections)} of the workspace's "
            f"{VECTOR_NAMESPACES} collections: the worker has not initialised its vector storage "
            f"({_WORKER_LOG})."
        ], []
    return [], [f"Milvus Lite collections {sorted(collections)}"]


async def check(config: EngineConfig) -> tuple[list[str], list[str]]:
    """(problems, what was found in use)."""
    leftovers = storage_guard.leftovers(
        config.working_dir, config.workspace, config.storage, config.vector_storage
    )
    problems = (
        [storage_guard.problem(leftovers, config.workspace, config.storage, config.vector_storage)]
        if leftovers
        else []
    )
    found: list[str] = []
    if lightrag_setup.uses_postgres(config):
        more, seen = await _postgres_problems(config)
        problems += more
        found += seen
    if config.vector_storage == "milvus":
        more, seen = _milvus_problems(config)
        problems += more
        found += seen
    return problems, found


async def _main() -> int:
    from shield_orchestrator.settings import load_settings

    config = EngineConfig.from_settings(load_settings())
    problems, found = await check(config)
    names = lightrag_setup.storage_names(config)
    print(f"workspace {config.workspace!r}: {', '.join(f'{k}={v}' for k, v in names.items())}")
    for item in found:
        print(f"in use: {item}")
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main()))
