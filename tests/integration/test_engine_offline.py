"""The offline engine (real LightRAG pipeline, no LLM); no pip at import."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from lightrag import QueryParam
from shield_orchestrator.engines.base import ChunkInput, PermanentChunkError
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.offline import LABEL, OfflineEngine

pytestmark = pytest.mark.integration

TEXTS = [
    "Redis Streams deliver chunks to the worker pool. The worker pool calls LightRAG.",
    "PostgreSQL stores the job history. The API writes job rows to PostgreSQL.",
    "Ollama serves the language model. LightRAG sends extraction prompts to Ollama.",
]


def _chunk(i: int, text: str) -> ChunkInput:
    return ChunkInput(
        job_id="j", chunk_id=f"c{i}", text=text, source_uri="file:///a.txt", workspace="offline-t"
    )


async def test_offline_graph_is_non_empty_and_queryable(tmp_path: Path) -> None:
    engine = OfflineEngine(
        EngineConfig(
            workspace="offline-t",
            working_dir=str(tmp_path),
            storage="file",
            vector_storage="file",
            status_poll_s=0.02,
        )
    )
    await engine.start()
    try:
        results = await asyncio.gather(*(engine.process(_chunk(i, t)) for i, t in enumerate(TEXTS)))
        assert all(r.entities > 0 and r.relations > 0 for r in results)
        assert all(r.detail["label"] == LABEL for r in results)
        assert "offline extraction" in engine.label
        labels = set(await engine.rag.get_graph_labels())
        assert {"LightRAG", "Ollama"} <= labels
        context = await engine.rag.aquery(
            "What does the worker pool call?",
            param=QueryParam(mode="local", only_need_context=True, enable_rerank=False),
        )
        assert "LightRAG" in str(context)
        with pytest.raises(PermanentChunkError, match="serves workspace"):
            await engine.process(
                ChunkInput(
                    job_id="j",
                    chunk_id="x",
                    text="Other Text.",
                    source_uri="u",
                    workspace="elsewhere",
                )
            )
    finally:
        await engine.close()


def test_importing_the_engines_never_runs_pip(rendered_root: Path) -> None:
    """LightRAG's pipmaster pip-installs missing backends at import; every one is pinned."""
    code = (
        "import pipmaster\n"
        "def boom(*a, **k): raise SystemExit(f'pip install attempted: {a}')\n"
        "pipmaster.install = boom\n"
        "import shield_orchestrator.engines.offline, shield_orchestrator.engines.lightrag_inproc\n"
        "import lightrag.kg.postgres_impl, lightrag.kg.pgtable_impl, lightrag.llm.ollama\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=rendered_root,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
