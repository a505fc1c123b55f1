"""Engine benchmarks (not timed tests): how close the in-process engines get to their bounds.

Run: ``SHIELD_RENDERED=build/rendered/default .venv/bin/python -m bench.bench_engines [n]``
(``make bench`` runs it with BENCH_JSON set; results in bench/result.py's format).

1. ``lightrag`` engine + the Ollama double (its own process) at 200 ms per chat call and
   10 ms per embedding call (a real Ollama embeds a chunk in milliseconds),
   llm_model_max_async=8. Measured in one run, on the same chunks and LightRAG settings:
     engine   n concurrent ``engine.process`` calls (max_concurrency at a time, as the pool does)
     direct   one ``rag.ainsert`` of the same chunks (LightRAG alone: no engine around it)
     floor    one ``rag.ainsert`` with a 0 ms double: LightRAG's own cost per chunk
     slow     the engine with a 3 s model (50 ms embeddings): the LLM-bound case
   LLM bound = 8 slots / latency / chat calls per chunk. Efficiency = engine / LLM bound
   (the goal: >= 0.95); engine / direct is what our engine costs on top of LightRAG; the floor
   says what bounds LightRAG on this machine when it is not the LLM.
2. ``offline`` engine: n concurrent ``process`` calls vs one ``rag.ainsert`` (goal >= 0.9).

Engine, direct and floor (and both offline runs) are measured BENCH_ENGINE_ROUNDS times
(default 3, alternating order, fresh storages each time) and the best round of each is kept:
the machine is shared and one round of 60 chunks swings by +-20 %.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("SHIELD_RENDERED", "build/rendered/default"))

from shield_orchestrator.engines.base import ChunkInput
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.lightrag_inproc import LightRAGEngine
from shield_orchestrator.engines.offline import OfflineEngine

from bench import result
from bench.bench_flow import Double

LATENCY_S = 0.2
EMBED_S = 0.01
ROUNDS = int(os.environ.get("BENCH_ENGINE_ROUNDS", "3"))
LOGDIR = Path(__file__).resolve().parent / "results" / "logs"  # the doubles' logs
LLM_SLOTS = 8
WORDS = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Theta", "Kappa", "Lambda"]
WORDS += ["Sigma", "Omega"]


def text(i: int) -> str:
    a, b, c = WORDS[i % 11], WORDS[(i * 3 + 1) % 11], WORDS[(i * 7 + 2) % 11]
    return f"{a} meets {b} in Town{i}. {c} studies Topic{i} with {a}."


def chunks(n: int, ws: str) -> list[ChunkInput]:
    return [
        ChunkInput(job_id="bench", chunk_id=f"c{i}", text=text(i), source_uri="b.txt", workspace=ws)
        for i in range(n)
    ]


async def run_pool(engine: LightRAGEngine, items: list[ChunkInput]) -> float:
    """Seconds for ``items`` through ``engine`` with max_concurrency calls in flight."""
    sem = asyncio.Semaphore(engine.max_concurrency)

    async def one(c: ChunkInput) -> None:
        async with sem:
            await engine.process(c)

    t = time.perf_counter()
    await asyncio.gather(*(one(c) for c in items))
    return time.perf_counter() - t


async def direct_ainsert(engine: LightRAGEngine, items: list[ChunkInput]) -> float:
    """Seconds for one ``rag.ainsert`` of ``items`` on the engine's LightRAG (not started)."""
    rag = engine.build_rag()
    await rag.initialize_storages()
    try:
        t = time.perf_counter()
        await rag.ainsert(
            [c.text for c in items],
            ids=[f"d-{c.chunk_id}" for c in items],
            file_paths=[f"f-{c.chunk_id}" for c in items],
        )
        return time.perf_counter() - t
    finally:
        await rag.finalize_storages()
        await engine.close()


def lightrag_config(double: Double, workdir: str, ws: str) -> EngineConfig:
    return EngineConfig(
        workspace=ws,
        working_dir=workdir,
        storage="file",
        vector_storage="file",
        tokenizer="bytes",
        ollama_endpoint=double.url,
        ollama_embedding_dim=16,
        llm_model_max_async=LLM_SLOTS,
        max_parallel_insert=3 * LLM_SLOTS,  # documents also wait on embeddings and merging
        embedding_max_async=4 * LLM_SLOTS,
    )


async def measure(
    what: str, n: int, tmp: str, chat_s: float, embed_s: float, direct: bool = False
) -> dict[str, Any]:
    """One run of n chunks: through the engine, or (direct) one rag.ainsert."""
    d = Double(LOGDIR, chat_s, embed_s)
    try:
        engine = LightRAGEngine(lightrag_config(d, f"{tmp}/{what}", f"bench_{what}"))
        items = chunks(n, engine.config.workspace)
        if direct:
            seconds = await direct_ainsert(engine, items)
        else:
            await engine.start()
            try:
                seconds = await run_pool(engine, items)
            finally:
                await engine.close()
        calls = d.command("calls")
    finally:
        d.close()
    per_chunk = calls.get("chat", 0) / n
    return {
        "rate": n / seconds,
        "bound": LLM_SLOTS / chat_s / per_chunk if chat_s else None,
        "chat_per_chunk": per_chunk,
        "embed_calls": calls.get("embed", 0),
        "max_chat": calls.get("max_in_flight", 0),
    }


async def bench_lightrag(n: int, tmp: str) -> result.Benchmark:
    slow_s = 3.0  # a model slower than LightRAG's own work here (real ones: 10-30 s/chunk)
    best: dict[str, dict[str, Any]] = {}
    for r in range(ROUNDS):
        order = ["engine", "direct", "floor"] if r % 2 == 0 else ["direct", "engine", "floor"]
        for what in order:
            chat_s, embed_s = (0.0, 0.0) if what == "floor" else (LATENCY_S, EMBED_S)
            run = await measure(f"{what}{r}", n, tmp, chat_s, embed_s, direct=what != "engine")
            if what not in best or run["rate"] > best[what]["rate"]:
                best[what] = run
    runs = {
        "engine": best["engine"],
        "direct ainsert": best["direct"],
        "floor (0 ms model)": best["floor"],
        f"engine, {slow_s:.0f} s model": await measure("slow", 6 * LLM_SLOTS, tmp, slow_s, 0.05),
    }
    eng, direct, floor, slow = runs.values()
    efficiency = eng["rate"] / eng["bound"]
    rows: list[list[result.Cell]] = [
        [k, round(v["rate"], 2), v["bound"] and round(v["bound"], 2), round(v["chat_per_chunk"], 2)]
        for k, v in runs.items()
    ]
    for row, v in zip(rows, runs.values(), strict=True):
        row += [v["embed_calls"], v["max_chat"]]
    return result.Benchmark(
        key="engines",
        title=f"lightrag engine + Ollama double ({LATENCY_S * 1000:.0f} ms/chat, "
        f"{EMBED_S * 1000:.0f} ms/embed call, "
        f"llm_model_max_async={LLM_SLOTS}), {n} chunks",
        goal="chunks/s >= 0.95 x the LLM bound (slots / latency / chat calls per chunk)",
        columns=["run", "chunks/s", "LLM bound", "chat/chunk", "embed calls", "max chat"],
        rows=rows,
        goal_met=efficiency >= 0.95,
        ratio=round(efficiency, 3),
        ratio_label="engine / LLM bound at 200 ms",
        baseline=f"LLM bound {eng['bound']:.1f} chunks/s",
        limits=(
            f"not the LLM: LightRAG's own per-document work caps it at the floor "
            f"({floor['rate']:.1f} chunks/s with a 0 ms model on this shared 2-core machine): "
            "entity/relation merging and file storages rewritten after every document "
            "(README, Engines)"
        ),
        notes=[
            f"engine / direct ainsert = {eng['rate'] / direct['rate']:.3f} "
            "(what our engine costs on top of LightRAG)",
            f"engine / floor = {eng['rate'] / floor['rate']:.3f}",
            f"with a {slow_s:.0f} s model (LLM-bound): engine / LLM bound = "
            f"{slow['rate'] / slow['bound']:.3f}, max chat in flight {slow['max_chat']}",
        ],
    )


async def bench_offline(n: int, tmp: str) -> result.Benchmark:
    config = EngineConfig(
        workspace="off1", working_dir=f"{tmp}/off1", storage="file", vector_storage="file"
    )
    via_engine = direct = float("inf")  # seconds: the best round of each
    for r in range(ROUNDS):
        mine = config.with_changes(workspace=f"off1r{r}", working_dir=f"{tmp}/off1r{r}")
        engine = OfflineEngine(mine.with_changes(max_parallel_insert=8))
        await engine.start()
        try:
            via_engine = min(via_engine, await run_pool(engine, chunks(n, f"off1r{r}")))
        finally:
            await engine.close()
        other = dataclasses.replace(config, workspace=f"off2r{r}", working_dir=f"{tmp}/off2r{r}")
        seconds = await direct_ainsert(
            OfflineEngine(other.with_changes(max_parallel_insert=8)), chunks(n, f"off2r{r}")
        )
        direct = min(direct, seconds)
    ratio = direct / via_engine
    return result.Benchmark(
        key="engines_offline",
        title=f"offline engine: {n} concurrent process() calls vs one rag.ainsert",
        goal="engine >= 0.9 x direct ainsert",
        columns=["run", "chunks/s"],
        rows=[["engine", round(n / via_engine, 2)], ["direct ainsert", round(n / direct, 2)]],
        goal_met=ratio >= 0.9,
        ratio=round(ratio, 3),
        ratio_label="engine / direct ainsert",
        baseline="one rag.ainsert of the same chunks",
    )


async def main(n: int) -> list[result.Benchmark]:
    LOGDIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        return [await bench_lightrag(n, tmp), await bench_offline(n, tmp)]


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    benches = asyncio.run(main(count))
    logging.getLogger("lightrag").setLevel(logging.WARNING)
    for b in benches:
        print(f"{b.title}: {b.ratio_label} = {b.ratio} (goal met: {b.goal_met})")
        print(f"  baseline: {b.baseline}; limits: {b.limits}")
        for row in [b.columns, *b.rows]:
            print("  " + " | ".join(str(c) for c in row))
        for note in b.notes:
            print(f"  {note}")
    if out := os.environ.get("BENCH_JSON"):
        result.write(Path(out), benches)
