"""``python -m shield_orchestrator.engines.storage_check``: are the configured storages in use?

The workers role's validation runs this on each worker host (as the service user, with the
services' EnvironmentFile) once the workers have started, for every declared workspace (each
one's engine settings checked on the way: engines/workspace_settings.py). LightRAG creates its
tables and collections when its storages initialise, so after a start each configured storage
must hold the structures and no other storage may hold a workspace's data
(engines/storage_guard.py). PostgreSQL: the tables every workspace shares (its rows keyed by
workspace), checked once. Milvus Lite: a workspace's own collections, which exist once it was
used (created on first use, by the owner's start): ``--owned N`` says how many workspaces this
host's processes own (validation: as many as they can own), and at least that many must have
them. Each problem names what is missing and the fix; exit status 1 when there is any.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from shield_orchestrator.engines import lightrag_setup, storage_guard, workspace_settings
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.errors import ConfigError
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


def _milvus_collections(config: EngineConfig) -> list[str]:
    found = storage_guard.milvus_collections(config.working_dir, config.workspace)
    return sorted(c.name for c in found)


def _milvus_problems(configs: Sequence[EngineConfig], owned: int) -> tuple[list[str], list[str]]:
    """Each workspace's collections are all there or absent (not yet used here), and at least
    ``owned`` workspaces have theirs (the ones this host's processes own)."""
    root = storage_guard.milvus_uri(configs[0].working_dir)
    problems: list[str] = []
    found: list[str] = []
    absent: list[str] = []
    for config in configs:
        collections = _milvus_collections(config)
        if len(collections) >= VECTOR_NAMESPACES:
            found.append(f"Milvus Lite collections {collections} (workspace {config.workspace!r})")
        elif collections:
            problems.append(
                f"Milvus Lite under {root} holds {len(collections)} of workspace "
                f"{config.workspace!r}'s {VECTOR_NAMESPACES} collections: its vector storage "
                f"did not finish initialising ({_WORKER_LOG})."
            )
        else:
            absent.append(config.workspace)
    if len(found) < owned and not problems:
        problems.append(
            f"Milvus Lite under {root} holds the collections of {len(found)} workspaces, but this "
            f"host's worker processes own {owned}; without any: {absent}. The workers have not "
            f"initialised their vector storage ({_WORKER_LOG})."
        )
    return problems, found


async def check(
    config: EngineConfig, *others: EngineConfig, owned: int | None = None
) -> tuple[list[str], list[str]]:
    """(problems, what was found in use) for the workspace of ``config`` and of each of
    ``others`` (the same storages: only their engine settings may differ).

    Every workspace: no other storage holds its data. PostgreSQL: the tables every workspace
    shares (its rows keyed by workspace), checked once. A workspace's own structures (Milvus
    Lite collections) exist once it was used (its owner started it): at least ``owned`` of the
    workspaces must have theirs (default: every one given).
    """
    configs = (config, *others)
    problems: list[str] = []
    for each in configs:
        leftovers = storage_guard.leftovers(
            each.working_dir, each.workspace, each.storage, each.vector_storage
        )
        if leftovers:
            problems.append(
                storage_guard.problem(leftovers, each.workspace, each.storage, each.vector_storage)
            )
    found: list[str] = []
    if config.vector_storage == "milvus":
        more, found = _milvus_problems(configs, len(configs) if owned is None else owned)
        problems += more
    if lightrag_setup.uses_postgres(config):
        more, seen = await _postgres_problems(config)
        problems += more
        found += seen
    return problems, found


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--owned",
        type=int,
        metavar="N",
        help="how many workspaces this host's processes own (default: every declared one)",
    )
    return parser.parse_args(argv)


async def _main(argv: list[str] | None = None) -> int:
    from shield_orchestrator.keys import WORKSPACES
    from shield_orchestrator.settings import load_settings

    args = _arguments(argv)
    settings = load_settings()
    try:
        configs = [workspace_settings.engine_config(settings, name) for name in WORKSPACES]
    except ConfigError as exc:
        print(f"problem: {exc}")
        return 1
    problems, found = await check(*configs, owned=args.owned)
    names = lightrag_setup.storage_names(configs[0])
    print(
        f"workspaces {', '.join(map(repr, WORKSPACES))}: "
        f"{', '.join(f'{k}={v}' for k, v in names.items())}"
    )
    for item in found:
        print(f"in use: {item}")
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main()))
