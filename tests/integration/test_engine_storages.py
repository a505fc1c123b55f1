"""The default storages (issue 14): PostgreSQL for KV, doc status and graph, Milvus Lite for
vectors on this machine (Debian 12: no pgvector), with the offline engine and the real LightRAG.

What is asserted is behaviour, not time: a few hundred chunks go in, nothing is kept in a file
storage (no ``kv_store_*.json``, ``*.graphml`` or ``vdb_*.json`` appears: those are rewritten
whole after every document), the rows are in PostgreSQL, the vectors in Milvus Lite, and a
LightRAG query finds an entity of the ingested text. The storage switch guard refuses to start
on new storages while the old ones hold the workspace's graph, naming the variables and fix.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from lightrag import QueryParam
from shield_orchestrator.engines import lightrag_setup, storage_check, storage_guard
from shield_orchestrator.engines.base import ChunkInput
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.offline import OfflineEngine
from shield_orchestrator.errors import ConfigError

from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

CHUNKS = 240
TOPICS = ["Redis", "PostgreSQL", "LightRAG", "Milvus", "Ollama", "Temporal", "Uvicorn", "Debian"]


def _text(i: int) -> str:
    a, b = TOPICS[i % len(TOPICS)], TOPICS[(i * 3 + 1) % len(TOPICS)]
    return (
        f"Document {i}: {a} Service{i} talks to {b} Node{i % 17}. {b} Node{i % 17} stores Item{i}."
    )


def _config(
    tmp_path: Path, postgres_srv: PostgresServer, database: str, **changes: object
) -> EngineConfig:
    base = EngineConfig(
        workspace="growth",
        working_dir=str(tmp_path / "lightrag"),
        tokenizer="bytes",
        status_poll_s=0.02,
        postgres_host="127.0.0.1",
        postgres_port=postgres_srv.port,
        postgres_user=postgres_srv.user,
        postgres_password=postgres_srv.password,
        postgres_db=database,
        storage="postgres",
        vector_storage="milvus",
    )
    return base.with_changes(**changes)


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


async def test_default_storages_write_no_whole_files(
    tmp_path: Path, postgres_srv: PostgresServer, pg_database: str
) -> None:
    config = _config(tmp_path, postgres_srv, pg_database)
    assert lightrag_setup.storage_names(config) == {
        "kv_storage": "PGKVStorage",
        "doc_status_storage": "PGDocStatusStorage",
        "graph_storage": "PGTableGraphStorage",
        "vector_storage": "MilvusVectorDBStorage",
    }
    engine = OfflineEngine(config)
    await engine.start()
    try:
        semaphore = asyncio.Semaphore(engine.max_concurrency)

        async def one(i: int) -> int:
            async with semaphore:
                chunk = ChunkInput(
                    job_id="g",
                    chunk_id=f"c{i}",
                    text=_text(i),
                    source_uri=f"doc{i}",
                    workspace="growth",
                )
                return (await engine.process(chunk)).entities

        entities = await asyncio.gather(*(one(i) for i in range(CHUNKS)))
        assert all(n > 0 for n in entities)
        # Text already stored (a re-submitted corpus): PGDocStatusStorage answers [] for ids
        # without rows; each chunk still ends, as a duplicate of the stored document.
        again = await asyncio.gather(
            *(
                engine.process(
                    ChunkInput(
                        job_id="g2",
                        chunk_id=f"c{i}",
                        text=_text(i),
                        source_uri=f"again{i}",
                        workspace="growth",
                    )
                )
                for i in range(4)
            )
        )
        assert all(r.detail.get("duplicate_of") for r in again), [r.detail for r in again]
        context = await engine.rag.aquery(
            "What does Service7 talk to?",
            param=QueryParam(mode="local", only_need_context=True, enable_rerank=False),
        )
        # the offline engine's hashed embeddings rank entities by shared words, not meaning:
        # the check is that the context is built from the ingested text's entities
        assert re.search(r"Service\d+|Node\d+|Item\d+", str(context)), context
        assert type(engine.rag.entities_vdb).__name__ == "MilvusVectorDBStorage"
    finally:
        await engine.close()

    workspace_dir = Path(config.working_dir) / "growth"
    whole_files = [
        name
        for name in _files(Path(config.working_dir))
        if name.startswith(("kv_store_", "vdb_")) or name.endswith(".graphml")
    ]
    assert whole_files == [], f"file storages written: {whole_files}"
    assert not workspace_dir.exists() or _files(workspace_dir) == []
    milvus = Path(storage_guard.milvus_uri(config.working_dir))
    collections = sorted(p.name for p in (milvus / "collections").iterdir())
    assert len(collections) >= 3, collections
    assert all(c.startswith("growth_") for c in collections), collections
    conn = await asyncpg.connect(postgres_srv.dsn(pg_database))
    try:
        processed = await conn.fetchval(
            "SELECT count(*) FROM lightrag_doc_status WHERE workspace=$1 AND status='processed'",
            "growth",
        )
    finally:
        await conn.close()
    assert processed == CHUNKS

    # What the workers role's validation runs: the configured storages are the ones in use.
    problems, found = await storage_check.check(config)
    assert problems == []
    assert set(storage_check.POSTGRES_TABLES) <= set(found)
    assert any(item.startswith("Milvus Lite collections") for item in found)
    # pgvector named while this PostgreSQL (Debian 12) has no such extension: the fix is named.
    problems, _ = await storage_check.check(config.with_changes(vector_storage="postgres"))
    assert any("pgvector is not enabled" in p and "vector_storage: milvus" in p for p in problems)

    # The same workspace with file storages now: refused, the PostgreSQL data is not the issue,
    # but Milvus Lite holds its vectors.
    with pytest.raises(ConfigError, match="orchestrator_engine_vector_storage: milvus"):
        await OfflineEngine(config.with_changes(vector_storage="file")).start()


async def test_switch_from_file_storages_is_refused_naming_the_fix(
    tmp_path: Path, postgres_srv: PostgresServer, pg_database: str
) -> None:
    """An upgrade from the old default (file) must not silently start on empty storages."""
    old = _config(tmp_path, postgres_srv, pg_database, storage="file", vector_storage="file")
    engine = OfflineEngine(old)
    await engine.start()
    try:
        await engine.process(
            ChunkInput(
                job_id="o", chunk_id="c0", text=_text(0), source_uri="d0", workspace="growth"
            )
        )
    finally:
        await engine.close()

    new = old.with_changes(storage="postgres", vector_storage="milvus")
    with pytest.raises(ConfigError) as refused:
        await OfflineEngine(new).start()
    message = str(refused.value)
    assert "orchestrator_engine_storage: file" in message
    assert "orchestrator_engine_vector_storage: file" in message
    assert str(Path(old.working_dir) / "growth") in message

    # The preflight runs the same file with the host's python3 (no venv, no package import).
    guard = Path(storage_guard.__file__)
    args = ["--working-dir", old.working_dir, "--workspace", "growth"]
    refused_run = await asyncio.to_thread(
        subprocess.run,
        [
            "/usr/bin/python3",
            str(guard),
            *args,
            "--storage",
            "postgres",
            "--vector-storage",
            "milvus",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert refused_run.returncode == 3, refused_run.stderr
    assert refused_run.stdout.strip() == message.split(". ", 1)[1]
    kept = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(guard), *args, "--storage", "file", "--vector-storage", "file"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert kept.returncode == 0, kept.stdout
