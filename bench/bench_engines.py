"""Engine benchmarks (not timed tests). Run: SHIELD_RENDERED=build/rendered/default
.venv/bin/python -m bench.bench_engines [n_chunks]

1. lightrag engine + Ollama double at 200 ms per call, llm_model_max_async=8:
   efficiency = chunks/s / (8 / 0.2 s / chat calls per chunk)   (target >= 0.95)
2. offline engine: n concurrent process() calls vs one rag.ainsert of the same chunks
   (target >= 0.9)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time

sys.path.insert(0, os.environ.get("SHIELD_RENDERED", "build/rendered/default"))

from shield_orchestrator.engines.base import ChunkInput
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.lightrag_inproc import LightRAGEngine
from shield_orchestrator.engines.offline import OfflineEngine

from tests.doubles.ollama_double import ollama_double

WORDS = [
    "Alpha",
    "Beta",
    "Gamma",
    "Delta",
    "Epsilon",
    "Zeta",
    "Theta",
    "Kappa",
    "Lambda",
    "Sigma",
    "Omega",
]


def text(i: int) -> str:
    a, b, c = WORDS[i % 11], WORDS[(i * 3 + 1) % 11], WORDS[(i * 7 + 2) % 11]
    return f"{a} meets {b} in Town{i}. {c} studies Topic{i} with {a}."


def chunks(n: int, ws: str) -> list[ChunkInput]:
    return [
        ChunkInput(job_id="bench", chunk_id=f"c{i}", text=text(i), source_uri="b.txt", workspace=ws)
        for i in range(n)
    ]


async def run_pool(engine: LightRAGEngine, items: list[ChunkInput]) -> float:
    sem = asyncio.Semaphore(engine.max_concurrency)

    async def one(c: ChunkInput) -> None:
        async with sem:
            await engine.process(c)

    t = time.perf_counter()
    await asyncio.gather(*(one(c) for c in items))
    return time.perf_counter() - t


async def bench_lightrag(n: int) -> None:
    with (
        ollama_double(latency_s=0.2, embed_latency_s=0.2, embedding_dim=16) as d,
        tempfile.TemporaryDirectory() as tmp,
    ):
        cfg = EngineConfig(
            workspace="bench",
            working_dir=tmp,
            tokenizer="bytes",
            ollama_endpoint=d.url,
            ollama_embedding_dim=16,
            llm_model_max_async=8,
            max_parallel_insert=24,
            embedding_max_async=32,
            status_poll_s=0.01,
        )
        eng = LightRAGEngine(cfg)
        await eng.start()
        try:
            elapsed = await run_pool(eng, chunks(n, "bench"))
        finally:
            await eng.close()
        calls = d.calls["chat"] / n
        rate = n / elapsed
        ideal = 8 / 0.2 / calls
        print(
            f"lightrag+double: {n} chunks in {elapsed:.2f}s = {rate:.1f}/s; chat calls/chunk "
            f"{calls:.2f}, embed calls {d.calls['embed']}, ideal {ideal:.1f}/s, "
            f"efficiency {rate / ideal:.3f}, max chat in flight {d.max_in_flight}"
        )


async def bench_offline(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        eng = OfflineEngine(
            EngineConfig(
                workspace="off1", working_dir=tmp + "/a", max_parallel_insert=8, status_poll_s=0.01
            )
        )
        await eng.start()
        try:
            via_engine = await run_pool(eng, chunks(n, "off1"))
        finally:
            await eng.close()
        eng2 = OfflineEngine(
            EngineConfig(workspace="off2", working_dir=tmp + "/b", max_parallel_insert=8)
        )
        rag = eng2.build_rag()
        await rag.initialize_storages()
        items = chunks(n, "off2")
        t = time.perf_counter()
        await rag.ainsert(
            [c.text for c in items],
            ids=[f"d{i}" for i in range(n)],
            file_paths=[f"f{i}" for i in range(n)],
        )
        direct = time.perf_counter() - t
        await rag.finalize_storages()
        print(
            f"offline: engine {n / via_engine:.1f} chunks/s, direct ainsert "
            f"{n / direct:.1f} chunks/s, ratio {direct / via_engine:.3f}"
        )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    asyncio.run(bench_lightrag(count))
    asyncio.run(bench_offline(count))
