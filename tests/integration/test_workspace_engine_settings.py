"""Two workspaces with different engine settings in one process keep separate data (issue 15).

The real offline engine (LightRAG's pipeline, no LLM) on a real PostgreSQL (KV, doc status and
graph: LightRAG's shared tables, every row keyed by its workspace) and Milvus Lite (vectors: a
collection set per workspace), with the workspace lease in a real Redis, as a worker process
serving both builds them (engines/workspace_settings.engine_config). ``narrow`` declares its own
settings: a 160-token re-split and 2 keyphrase entities per LightRAG chunk; ``wide`` keeps the
deployment's. The same documents go into both: each workspace stores them as its own (no
duplicate of the other's), split and extracted by its own settings, and ingesting into one
leaves the other's rows as they were. storage_check then checks both workspaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from shield_orchestrator.engines import storage_check
from shield_orchestrator.engines.base import ChunkInput, ChunkResult
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.offline import OfflineEngine
from shield_orchestrator.engines.workspace_settings import engine_config
from shield_orchestrator.settings import Settings

from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

NARROW = {"chunk_token_size": 160, "offline_max_entities": 2}
DECLARED = [{"name": "wide"}, {"name": "narrow", "engine": NARROW}]
DOCUMENTS = 6
NAMES = ["Redis", "PostgreSQL", "LightRAG", "Milvus", "Ollama", "Temporal", "Uvicorn", "Debian"]


def _text(i: int) -> str:
    names = [NAMES[(i + k) % len(NAMES)] for k in range(len(NAMES))]
    return " ".join(
        f"{a} Service{i} calls {b} Gateway{i} for Item{i}." for a, b in itertools.pairwise(names)
    )


def _config(settings: Settings, workspace: str, workdir: Path) -> EngineConfig:
    return engine_config(
        settings,
        workspace,
        declared=DECLARED,
        working_dir=str(workdir),
        storage="postgres",
        vector_storage="milvus",
        status_poll_s=0.02,
        workspace_lock_ttl_s=10,
        workspace_lock_wait_s=0,
    )


@contextlib.asynccontextmanager
async def started(config: EngineConfig) -> AsyncIterator[OfflineEngine]:
    engine = OfflineEngine(config)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.close()


async def _ingest(engine: OfflineEngine, job: str) -> list[ChunkResult]:
    chunks = [
        ChunkInput(
            job_id=job,
            chunk_id=f"c{i}",
            text=_text(i),
            source_uri=f"doc{i}",
            workspace=engine.config.workspace,
        )
        for i in range(DOCUMENTS)
    ]
    return list(await asyncio.gather(*(engine.process(c) for c in chunks)))


async def _rows(dsn: str, workspace: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        status = await conn.fetch(
            "SELECT id, status, chunks_count FROM lightrag_doc_status WHERE workspace=$1",
            workspace,
        )
        return {
            "docs": {r["id"]: (r["status"], r["chunks_count"]) for r in status},
            "chunks": await conn.fetchval(
                "SELECT count(*) FROM lightrag_doc_chunks WHERE workspace=$1", workspace
            ),
            "nodes": await conn.fetchval(
                "SELECT count(*) FROM lightrag_graph_nodes WHERE workspace=$1", workspace
            ),
        }
    finally:
        await conn.close()


async def test_two_workspaces_with_their_own_settings_keep_separate_data(
    tmp_path: Path, worker_settings: Settings, postgres_srv: PostgresServer, pg_database: str
) -> None:
    settings = dataclasses.replace(worker_settings, engine="offline")  # this test's database
    workdir = tmp_path / "lightrag"
    wide, narrow = _config(settings, "wide", workdir), _config(settings, "narrow", workdir)
    assert (narrow.chunk_token_size, narrow.offline_max_entities) == (160, 2)
    assert (wide.chunk_token_size, wide.offline_max_entities) == (
        EngineConfig().chunk_token_size,
        EngineConfig().offline_max_entities,
    )
    dsn = postgres_srv.dsn(pg_database)

    async with started(wide) as wide_engine, started(narrow) as narrow_engine:
        wide_results = await _ingest(wide_engine, "w")
        wide_rows = await _rows(dsn, "wide")
        assert await _rows(dsn, "narrow") == {"docs": {}, "chunks": 0, "nodes": 0}

        narrow_results = await _ingest(narrow_engine, "n")
        narrow_rows = await _rows(dsn, "narrow")
        assert await _rows(dsn, "wide") == wide_rows, "ingesting into narrow changed wide"

    # the same texts: each workspace stored them as its own documents, no duplicate of the other's
    for results in (wide_results, narrow_results):
        assert [r.detail.get("duplicate_of") for r in results] == [None] * DOCUMENTS
    assert [s for s, _ in wide_rows["docs"].values()] == ["processed"] * DOCUMENTS
    assert [s for s, _ in narrow_rows["docs"].values()] == ["processed"] * DOCUMENTS
    # split by each workspace's chunk_token_size: whole in wide, re-split in narrow
    assert {n for _, n in wide_rows["docs"].values()} == {1}
    assert all(n > 1 for _, n in narrow_rows["docs"].values()), narrow_rows["docs"]
    assert wide_rows["chunks"] == DOCUMENTS
    assert narrow_rows["chunks"] == sum(n for _, n in narrow_rows["docs"].values())
    # extracted by each workspace's offline_max_entities: 2 per LightRAG chunk in narrow
    counts = {doc: n for doc, (_, n) in narrow_rows["docs"].items()}
    for result in narrow_results:
        assert 0 < result.entities <= 2 * counts[result.document_id], result
    assert max(r.entities for r in wide_results) > 2, [r.entities for r in wide_results]
    assert wide_rows["nodes"] > 0
    assert narrow_rows["nodes"] > 0

    # What the workers validation runs, for every declared workspace (both used here).
    problems, found = await storage_check.check(wide, narrow)
    assert problems == []
    for workspace in ("wide", "narrow"):
        assert any(
            f.startswith("Milvus Lite collections") and repr(workspace) in f for f in found
        ), found
    # a third declared workspace nobody here owns yet (created on first use): fine when this
    # host's processes own two, a problem naming it when they should own all three
    unused = _config(settings, "later", workdir)
    assert (await storage_check.check(wide, narrow, unused, owned=2))[0] == []
    problems, _ = await storage_check.check(wide, narrow, unused)
    assert len(problems) == 1, problems
    assert "['later']" in problems[0]
    assert "own 3" in problems[0]
