"""Benchmarks 2 and 5, through the real WorkerPool (in this process) and a real redis-server.

2. LLM saturation: the ``lightrag`` engine (lightrag-hku in-process) with the default storages
   (BENCH_SAT_STORAGE = postgres: PGKV, PGDocStatus, PGTableGraph on a PostgreSQL started here;
   BENCH_SAT_VECTORS = milvus: Milvus Lite under the working directory, the Debian 12
   default; ``file`` for either gives the file storages) against the Ollama-protocol double
   (its own process, tests/doubles/ollama_double_server.py), allowed LLM concurrency 8
   (``llm_model_max_async``). Every embedding call answers after BENCH_EMBED_MS (default
   10 ms: a real Ollama embeds a chunk in milliseconds). The headline: a realistic model,
   BENCH_SAT_CHAT_S (default 2 s) per chat call, BENCH_SAT_N chunks (default 480, ~2 min at
   the bound): achieved chunks/s ÷ the bound, where the bound = concurrency / (chat latency ×
   chat calls per chunk, counted by the double in the same run). Goal >= 0.95. The same run
   keeps the 200 ms row (BENCH_SAT_FAST_N chunks, default 600, at most
   BENCH_SAT_FAST_BUDGET_S) and the floor (the same with a 0 ms model: what LightRAG's own
   per-document work allows on this machine), each with the worker process's CPU seconds per
   chunk (all its threads, Milvus Lite's included: it runs in-process) and PostgreSQL's.
   Plus, unless BENCH_SAT_CURVE=0, the curve of chunks/s against the allowed concurrency
   1..32 at 200 ms (with its bound), drawn as a plot.
5. The ``offline`` engine through the pool ÷ a direct ``rag.ainsert`` of the same chunks in
   one process (BENCH_OFFLINE_N, default 300). Goal >= 0.9.

Chunks are put on the stream the way the API does (job hash + XADDs, tests/support/chunks.py);
the clock runs from the first XADD until the job hash says completed (saturation: the chunks
are added once the worker announced ``worker_started``, i.e. its engine is up, as on a running
host).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench import proc, result
from tests.support.chunks import chunk_fields
from tests.support.pools import redis_for, running_pool, wait_for
from tests.support.servers import RedisServer, redis_server

REPO = Path(__file__).resolve().parent.parent
LATENCY_S = 0.2  # the fast model of the 200 ms row, the curve and the pool-alone rows
EMBED_LATENCY_S = float(os.environ.get("BENCH_EMBED_MS", "10")) / 1000
SAT_STORAGE = os.environ.get("BENCH_SAT_STORAGE", "postgres")  # postgres | file
SAT_VECTORS = os.environ.get("BENCH_SAT_VECTORS", "milvus")  # milvus | postgres | file
SAT_CHAT_S = float(os.environ.get("BENCH_SAT_CHAT_S", "2"))  # the headline's model latency
SAT_N = int(os.environ.get("BENCH_SAT_N", "480"))
SAT_BUDGET_S = float(os.environ.get("BENCH_SAT_BUDGET_S", "300"))  # then measure what is done
FAST_N = int(os.environ.get("BENCH_SAT_FAST_N", "600"))  # the 200 ms row and the floor
FAST_BUDGET_S = float(os.environ.get("BENCH_SAT_FAST_BUDGET_S", "90"))
SAT_CURVE = os.environ.get("BENCH_SAT_CURVE", "1") != "0"
SAT_CONCURRENCY = 8
CURVE = [1, 2, 4, 8, 16, 32]
CURVE_PER_SLOT = int(os.environ.get("BENCH_CURVE_PER_SLOT", "6"))  # chunks per allowed slot
STEADY = (0.1, 0.9)  # the steady-state window: from 10 % to 90 % of the chunks finished
CLK = os.sysconf("SC_CLK_TCK")
CURVE_BUDGET_S = float(os.environ.get("BENCH_CURVE_BUDGET_S", "20"))  # per point
OFFLINE_N = int(os.environ.get("BENCH_OFFLINE_N", "300"))
PROFILE_NOTE = (
    "Profile (cProfile of the main thread; this pool + lightrag engine + PostgreSQL storages "
    "with NanoVectorDB file vectors, 200 ms model, 200 chunks, 2026-11-24; not re-profiled "
    "with Milvus Lite): per chunk ~150 asyncpg statements and ~240 operations of "
    "LightRAG's PG storages (postgres_impl._run_with_retry: tenacity retry wrapper, pool "
    "checkout, a RESET round trip at every release), whose socket sends wait on the GIL while "
    "LightRAG's storage threads rewrite the vector files; the Ollama HTTP client ~10 % of the "
    "profiled time, our engine (enqueue, doc-status reads, results) ~7 %, the WorkerPool ~4 %. "
    "Before the engine's doc-status hook, polling 48 in-flight documents every 10 ms read "
    "~1,000 doc-status rows per chunk."
)
WORDS = ["Alpha", "Bravo", "Carbon", "Delta", "Echo", "Falcon", "Granite", "Harbor", "Indigo",
         "Juniper", "Kestrel", "Lumen", "Meridian"]  # fmt: skip


def text(i: int) -> str:
    """A chunk with a few capitalised words (the double makes them entities and relations)."""
    a, b, c = WORDS[i % 13], WORDS[(i * 5 + 1) % 13], WORDS[(i * 7 + 3) % 13]
    return f"{a} meets {b} near Town{i}. {c} reviews Report{i} with {a} and {b}."


async def _enqueue(redis: Any, n: int, workspace: str) -> str:
    from shield_orchestrator import keys
    from shield_orchestrator.services.job_status import new_job_fields

    job_id = str(uuid.uuid4())
    await redis.hset(keys.job(job_id), mapping=new_job_fields(job_id, n, workspace, time.time()))
    for start in range(0, n, 500):
        async with redis.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + 500, n)):
                fields = chunk_fields(job_id, i + 1)
                body = json.loads(fields["body"])
                body["text"] = text(i)
                body["workspace"] = workspace
                pipe.xadd(
                    keys.ingestion_stream(keys.WORKSPACES[0]), {**fields, "body": json.dumps(body)}
                )
            await pipe.execute()
    return job_id


def cpu_s(pids: list[int]) -> float:
    """utime+stime of live processes (seconds), from /proc/<pid>/stat; 0 for those gone."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK


@dataclasses.dataclass
class PoolRun:
    rate: float  # chunks/s from the first XADD to the end
    done: int  # chunks counted (processed + failed)
    status: str
    steady_rate: float = float("nan")  # chunks/s between STEADY[0] and STEADY[1] of n finished
    cpu_s: float = 0.0  # this process (the worker: pool, engine, LightRAG, Milvus Lite threads)
    pg_cpu_s: float = 0.0  # the PostgreSQL cluster's processes


async def through_pool(
    server: RedisServer,
    engine: Any,
    n: int,
    slots: int,
    budget_s: float = 1e9,
    wait_started: bool = False,
    pg_pid: int | None = None,
) -> PoolRun:
    """One job of n chunks through a WorkerPool: its rate, chunks counted and status.

    When the job needs longer than ``budget_s``, the rate is measured over what was counted
    within the budget (the status says "partial") and the pool is stopped. ``wait_started``:
    the chunks are added once the pool announced worker_started (its engine is up); the CPU
    figures then cover the job only.
    """
    from shield_orchestrator import keys

    redis = redis_for(server)
    await redis.flushall()
    try:
        async with running_pool(server, engine, pool_size=slots, batch_size=max(10, slots),
                                timeout_s=600.0):  # fmt: skip
            if wait_started:
                await wait_for(lambda: _started(redis, keys.EVENTS_STREAM), 300, "worker.started")
            pg = proc.tree(pg_pid) if pg_pid else []
            cpu0, pg0 = time.process_time(), cpu_s(pg)
            t0 = time.perf_counter()
            workspace = engine.config.workspace if hasattr(engine, "config") else "default"
            job_id = await _enqueue(redis, n, workspace)
            marks: dict[float, float] = {}  # fraction of n finished -> when
            while True:
                h = await redis.hgetall(keys.job(job_id))
                status = h.get("status", "")
                done = int(h.get("chunks_processed", 0)) + int(h.get("chunks_failed", 0))
                for frac in STEADY:
                    if frac not in marks and done >= frac * n:
                        marks[frac] = time.perf_counter()
                if status in ("completed", "completed_with_errors", "failed"):
                    break
                if time.perf_counter() - t0 > budget_s:
                    status = f"partial: {done} of {n} within the {budget_s:.0f} s budget"
                    break
                await asyncio.sleep(0.02)
            run = PoolRun(done / (time.perf_counter() - t0), done, str(status))
            run.cpu_s = time.process_time() - cpu0
            run.pg_cpu_s = cpu_s(pg) - pg0
            if len(marks) == len(STEADY):
                span = marks[STEADY[1]] - marks[STEADY[0]]
                run.steady_rate = (STEADY[1] - STEADY[0]) * n / span if span > 0 else run.rate
            if status in ("completed_with_errors", "failed"):  # why: the first dead letter
                first = await redis.xrange(keys.DEAD_LETTER_STREAM, count=1)
                run.status = f"{status}: {first[0][1].get('error', '')[:200]}" if first else status
            return run
    finally:
        await redis.aclose()


async def _started(redis: Any, stream: str) -> bool:
    from shield_orchestrator.services.event_bus import EventType

    entries = await redis.xrange(stream)
    return any(fields.get("type") == EventType.WORKER_STARTED for _, fields in entries)


class Double:
    """tests/doubles/ollama_double_server.py in its own process."""

    def __init__(self, logdir: Path, chat_s: float = LATENCY_S, embed_s: float = EMBED_LATENCY_S):
        self.chat_s = chat_s
        self.p = proc.start([sys.executable, "-m", "tests.doubles.ollama_double_server",
                             str(chat_s), str(embed_s)],
                            cwd=REPO, log=logdir / "double.log", stdin_pipe=True)  # fmt: skip
        self.url = str(json.loads(proc.read_line(self.p, 60))["url"])

    def command(self, cmd: str) -> dict[str, int]:
        proc.send(self.p, cmd)
        return dict(json.loads(proc.read_line(self.p, 30)))

    def close(self) -> None:
        proc.stop(self.p)


@contextlib.asynccontextmanager
async def storage_settings(
    storage: str, vectors: str = "file"
) -> AsyncIterator[tuple[dict[str, Any], int | None]]:
    """EngineConfig fields for LightRAG's storages (file, or postgres on a server started
    here) and vectors (file, milvus, postgres), with the PostgreSQL server's PID (or None)."""
    if storage == "file" and vectors != "postgres":
        yield {"storage": "file", "vector_storage": vectors}, None
        return
    import asyncpg

    from tests.support.servers import postgres_server

    with postgres_server() as pg:
        admin = await asyncpg.connect(pg.dsn("postgres"))
        try:
            await admin.execute('CREATE DATABASE "lightrag"')
        finally:
            await admin.close()
        assert pg.proc is not None
        yield (
            {
                "storage": storage,
                "vector_storage": vectors,
                "postgres_host": "127.0.0.1",
                "postgres_port": pg.port,
                "postgres_db": "lightrag",
                "postgres_user": pg.user,
                "postgres_password": pg.password,
            },
            pg.proc.pid,
        )


def lightrag_engine(
    url: str, workdir: str, workspace: str, concurrency: int, storage: dict[str, Any]
) -> Any:
    from shield_orchestrator.engines.config import EngineConfig
    from shield_orchestrator.engines.lightrag_inproc import LightRAGEngine

    logging.getLogger("lightrag").setLevel(logging.WARNING)  # after lightrag set its own

    return LightRAGEngine(EngineConfig(
        workspace=workspace, working_dir=workdir, tokenizer="bytes",
        ollama_endpoint=url, ollama_embedding_dim=16, llm_model_max_async=concurrency,
        max_parallel_insert=3 * concurrency, embedding_max_async=32,
        **storage,
    ))  # fmt: skip


async def saturation_point(
    server: RedisServer,
    double: Double,
    concurrency: int,
    n: int,
    tmp: str,
    budget_s: float,
    storage: tuple[dict[str, Any], int | None],
    tag: str = "",
) -> dict[str, Any]:
    double.command("reset")
    ws = f"sat{tag}_c{concurrency}_n{n}"  # LightRAG shares in-memory state per workspace name
    engine = lightrag_engine(double.url, f"{tmp}/{ws}", ws, concurrency, storage[0])
    run = await through_pool(server, engine, n, engine.max_concurrency, budget_s,
                             wait_started=True, pg_pid=storage[1])  # fmt: skip
    calls = double.command("calls")
    per_chunk = calls.get("chat", 0) / max(run.done, 1)
    bound = concurrency / (double.chat_s * per_chunk) if per_chunk and double.chat_s else None
    return {
        "concurrency": concurrency,
        "chat_s": double.chat_s,
        "n": n,
        "done": run.done,
        "rate": run.rate,
        "steady": run.steady_rate,
        "bound": bound,
        "chat_per_chunk": per_chunk,
        "embed_calls": calls.get("embed", 0),
        "max_in_flight": calls.get("max_in_flight", 0),
        "cpu_ms_per_chunk": 1000 * run.cpu_s / max(run.done, 1),
        "pg_cpu_ms_per_chunk": 1000 * run.pg_cpu_s / max(run.done, 1),
        "ok": run.status == "completed" or run.status.startswith("partial"),
        "status": run.status,
    }


async def pool_point(server: RedisServer, concurrency: int) -> dict[str, Any]:
    """The same pool with the noop engine sleeping 200 ms: what the pool alone achieves."""
    from shield_orchestrator.engines.noop import NoopEngine

    n = max(20, 20 * concurrency)
    engine = NoopEngine(delay_s=LATENCY_S, max_concurrency=concurrency)
    run = await through_pool(server, engine, n, concurrency, CURVE_BUDGET_S)
    return {"concurrency": concurrency, "n": n, "done": run.done, "rate": run.rate,
            "bound": concurrency / LATENCY_S, "status": run.status}  # fmt: skip


def _ms(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:g} s"


def _sat_row(p: dict[str, Any], label: str) -> list[result.Cell]:
    bound = p["bound"]
    return [
        label, f"{p['done']} of {p['n']}", round(p["rate"], 2),
        round(p["steady"], 2) if p["steady"] == p["steady"] else "–",
        round(bound, 2) if bound else "–", round(p["rate"] / bound, 3) if bound else "–",
        round(p["chat_per_chunk"], 2), int(p["max_in_flight"]),
        round(p["cpu_ms_per_chunk"]), round(p["pg_cpu_ms_per_chunk"]), p["status"],
    ]  # fmt: skip


def _storages_label() -> str:
    kv = "PostgreSQL (PGKV, PGDocStatus, PGTableGraph)" if SAT_STORAGE == "postgres" else "files"
    vec = {"milvus": "Milvus Lite", "postgres": "pgvector", "file": "NanoVectorDB files"}
    return f"{kv} + {vec.get(SAT_VECTORS, SAT_VECTORS)} vectors"


async def bench_saturation(server: RedisServer, logdir: Path) -> result.Benchmark:
    started = time.perf_counter()
    slow = Double(logdir, SAT_CHAT_S)  # the headline: a realistic model
    double = Double(logdir)  # 200 ms: the row kept from the first runs, and the curve
    zero = Double(logdir, 0.0, 0.0)  # the floor: LightRAG's own work with an instant model
    try:
        async with storage_settings(SAT_STORAGE, SAT_VECTORS) as storage:
            with tempfile.TemporaryDirectory(prefix="bench-sat-") as tmp:
                head = await saturation_point(server, slow, SAT_CONCURRENCY, SAT_N, tmp,
                                              SAT_BUDGET_S, storage, tag="head")  # fmt: skip
                fast = await saturation_point(server, double, SAT_CONCURRENCY, FAST_N, tmp,
                                              FAST_BUDGET_S, storage, tag="fast")  # fmt: skip
                floor = await saturation_point(server, zero, SAT_CONCURRENCY, FAST_N, tmp,
                                               FAST_BUDGET_S, storage, tag="floor")  # fmt: skip
                curve = [await saturation_point(server, double, c, max(12, CURVE_PER_SLOT * c),
                                                tmp, CURVE_BUDGET_S, storage)
                         for c in (CURVE if SAT_CURVE else [])]  # fmt: skip
        pool_only = [await pool_point(server, c) for c in CURVE]
    finally:
        slow.close()
        double.close()
        zero.close()
    ratio = head["rate"] / head["bound"]
    rows: list[list[result.Cell]] = [
        _sat_row(head, f"8, {_ms(SAT_CHAT_S)} model (headline)"),
        _sat_row(fast, f"8, {_ms(LATENCY_S)} model"),
        _sat_row(floor, "8, 0 ms model (floor)"),
        *[_sat_row(p, f"{p['concurrency']}, {_ms(LATENCY_S)} model (curve)") for p in curve],
    ] + [
        [f"{p['concurrency']}, pool alone (noop engine, {_ms(LATENCY_S)})",
         f"{p['done']} of {p['n']}", round(p["rate"], 1), "–", round(p["bound"], 1),
         round(p["rate"] / p["bound"], 3), "–", "–", "–", "–", p["status"]]
        for p in pool_only
    ]  # fmt: skip
    fast_need = 1000 / fast["bound"] if fast["bound"] else float("nan")
    head_need = 1000 / head["bound"] if head["bound"] else float("nan")
    verdict = (
        f"At {_ms(SAT_CHAT_S)} per chat call the LLM slots are the limit: the worker needs "
        f"{head['cpu_ms_per_chunk']:.0f} ms of CPU per chunk where the bound allows "
        f"{head_need:.0f} ms on one core, and the job reaches {ratio:.3f} of the bound "
        f"({head['steady'] / head['bound']:.3f} between 10 % and 90 % of the chunks "
        "finished; the rest is the pipeline filling and the last calls draining). "
        if ratio >= 0.95
        else f"At {_ms(SAT_CHAT_S)} per chat call the job reaches {ratio:.3f} of the bound "
        f"({head['steady'] / head['bound']:.3f} between 10 % and 90 % of the chunks "
        f"finished); the worker needs {head['cpu_ms_per_chunk']:.0f} ms of CPU per chunk "
        f"where the bound allows {head_need:.0f} ms on one core. "
    )
    return result.Benchmark(
        key="saturation",
        title=f"LLM saturation through the pool (lightrag engine, {_storages_label()}, "
        f"Ollama double at {_ms(SAT_CHAT_S)})",
        goal=f"achieved chunks/s ÷ bound >= 0.95 at allowed concurrency 8, {_ms(SAT_CHAT_S)} "
        f"per chat call, {SAT_N} chunks",
        columns=[
            "allowed LLM concurrency, model",
            "chunks counted",
            "chunks/s",
            "chunks/s 10–90 %",
            "bound chunks/s",
            "achieved ÷ bound",
            "chat calls/chunk",
            "max chat in flight",
            "worker CPU ms/chunk",
            "PostgreSQL CPU ms/chunk",
            "job",
        ],
        rows=rows,
        goal_met=bool(ratio >= 0.95 and head["ok"] and head["status"] == "completed"),
        ratio=round(ratio, 3),
        ratio_label=f"achieved ÷ bound (concurrency 8, {_ms(SAT_CHAT_S)})",
        baseline="bound = concurrency / (chat latency × chat calls per chunk counted by the "
        "double in the same run)",
        limits=(
            verdict + f"The {_ms(LATENCY_S)} row is not limited by the LLM but by LightRAG's own "
            f"per-document work in the worker process: it reaches "
            f"{fast['rate'] / fast['bound']:.3f} of its bound, and with an instant model the "
            f"same pool and storages reach {floor['rate']:.1f} chunks/s (the floor) = "
            f"{floor['rate'] / fast['bound']:.2f} of the {_ms(LATENCY_S)} bound. The worker "
            f"process (one GIL: pool, engine, LightRAG, Milvus Lite's in-process server) spends "
            f"{fast['cpu_ms_per_chunk']:.0f} ms of CPU per chunk at {_ms(LATENCY_S)} "
            f"({floor['cpu_ms_per_chunk']:.0f} ms with the instant model), where the "
            f"{_ms(LATENCY_S)} bound needs <= {fast_need:.0f} ms per chunk on one core: a "
            f"whole core would allow at most {1000 / fast['cpu_ms_per_chunk']:.1f} chunks/s; "
            f"this run's worker got {fast['rate'] * fast['cpu_ms_per_chunk'] / 1000:.2f} of a "
            f"core (floor: {floor['rate'] * floor['cpu_ms_per_chunk'] / 1000:.2f}) on a "
            f"machine shared with other work (load averages in the line above, 2 cores). "
            f"PostgreSQL adds {fast['pg_cpu_ms_per_chunk']:.0f} ms per chunk in its own "
            "processes. That CPU is lightrag-hku's own (profile "
            "in the notes): entity and relation merging, its PostgreSQL storages' statements "
            "(each with a pool checkout and a reset round trip) and the vector upserts."
        ),
        notes=[
            f"WorkerPool in the benchmark process (pool size = engine.max_concurrency = "
            f"2 × max_parallel_insert, max_parallel_insert = 3 × concurrency, so LightRAG "
            f"always has documents queued while others merge), the doubles in their own "
            f"processes (chat {_ms(SAT_CHAT_S)}, {_ms(LATENCY_S)} or 0 ms; embed "
            f"{_ms(EMBED_LATENCY_S)}); storages: {_storages_label()} "
            f"(BENCH_SAT_STORAGE={SAT_STORAGE}, BENCH_SAT_VECTORS={SAT_VECTORS}: the role's "
            f"defaults on Debian 12), PostgreSQL {'' if SAT_STORAGE == 'postgres' else 'not '}"
            f"started here on loopback. N = {SAT_N} for the headline (budget "
            f"{SAT_BUDGET_S:.0f} s), {FAST_N} for the {_ms(LATENCY_S)} and floor rows (budget "
            f"{FAST_BUDGET_S:.0f} s each: 'partial' rows are measured over what finished "
            "within it), "
            + (
                f"{CURVE_PER_SLOT} chunks per slot on the curve ({CURVE_BUDGET_S:.0f} s each)."
                if SAT_CURVE
                else "no curve (BENCH_SAT_CURVE=0)."
            ),
            "The clock starts at the first chunk added, once the worker announced "
            "worker.started (engine up: LightRAG's storages initialised, Milvus Lite's server "
            "running), and stops when the job hash says completed. 'chunks/s 10–90 %' is the "
            "rate between 10 % and 90 % of the chunks finished (the steady state). CPU: "
            "worker = this process's utime+stime over the job (all threads); PostgreSQL = the "
            "cluster's processes from /proc/<pid>/stat (a test cluster: fsync and "
            "synchronous_commit off). On 'partial' rows the double also counted the calls of "
            "chunks not finished yet, so their chat calls/chunk is high and their bound low.",
            PROFILE_NOTE,
            "The 'pool alone' rows run the same pool with the noop engine sleeping 200 ms "
            "(bound = concurrency / 0.2 s): they isolate the pool from LightRAG's own work, "
            "and show the bound moving with the allowed concurrency, not with the queue.",
        ],
        curves=[
            result.Curve(
                "Throughput vs allowed LLM concurrency (200 ms per call)",
                "allowed LLM concurrency",
                "chunks/s",
                {
                    "lightrag engine + double": [(p["concurrency"], p["rate"]) for p in curve],
                    "LLM bound of that run": [(p["concurrency"], p["bound"]) for p in curve],
                    "pool alone (noop engine, 200 ms)": [
                        (p["concurrency"], p["rate"]) for p in pool_only
                    ],
                },
            )
        ]
        if curve
        else [],
        seconds=round(time.perf_counter() - started, 1),
    )


async def bench_offline(server: RedisServer) -> result.Benchmark:
    from shield_orchestrator.engines.config import EngineConfig
    from shield_orchestrator.engines.offline import OfflineEngine

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-offline-") as tmp:
        cfg = EngineConfig(workspace="offline_pool", working_dir=f"{tmp}/pool",
                           max_parallel_insert=8)  # fmt: skip
        engine = OfflineEngine(cfg)  # the pool keeps engine.max_concurrency chunks in flight
        pool_run = await through_pool(server, engine, OFFLINE_N, engine.max_concurrency)
        pool_rate, status = pool_run.rate, pool_run.status
        direct = OfflineEngine(cfg.with_changes(workspace="offline_direct",
                                                working_dir=f"{tmp}/direct"))  # fmt: skip
        rag = direct.build_rag()
        await rag.initialize_storages()
        try:
            t0 = time.perf_counter()
            await rag.ainsert([text(i) for i in range(OFFLINE_N)],
                              ids=[f"direct-{i}" for i in range(OFFLINE_N)],
                              file_paths=[f"direct#{i}" for i in range(OFFLINE_N)])  # fmt: skip
            direct_rate = OFFLINE_N / (time.perf_counter() - t0)
        finally:
            await rag.finalize_storages()
    ratio = pool_rate / direct_rate
    return result.Benchmark(
        key="offline",
        title="Offline engine through the pool vs direct rag.ainsert",
        goal="through the pool ÷ direct ainsert >= 0.9",
        columns=["path", "chunks", "chunks/s", "÷ direct"],
        rows=[
            ["direct rag.ainsert (one call, one process)", OFFLINE_N, round(direct_rate, 1), 1.0],
            [
                f"WorkerPool + offline engine ({2 * 8} chunks in flight, 8 processed at once), "
                f"job {status}",
                OFFLINE_N,
                round(pool_rate, 1),
                round(ratio, 3),
            ],
        ],
        goal_met=bool(ratio >= 0.9 and status == "completed"),
        ratio=round(ratio, 3),
        ratio_label="pool ÷ direct",
        baseline="direct rag.ainsert of the same chunks, same process, same run",
        limits="LightRAG's per-document pipeline (CPU) on 2 shared cores; the pool adds one "
        "document per chunk and its Redis bookkeeping.",
        notes=["Same texts, same max_parallel_insert (8), fresh file storages for each path."],
        seconds=round(time.perf_counter() - started, 1),
    )


async def run(logdir: Path) -> list[result.Benchmark]:
    only = {k.strip() for k in os.environ.get("BENCH_FLOW_ONLY", "").split(",") if k.strip()}
    with redis_server() as server:
        out = [await bench_saturation(server, logdir)] if not only or "saturation" in only else []
        return out + ([await bench_offline(server)] if not only or "offline" in only else [])


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("lightrag").setLevel(logging.WARNING)  # per-document INFO costs CPU
    logdir = REPO / "bench" / "results" / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    benches = asyncio.run(run(logdir))
    for b in benches:
        print(f"{b.key}: {b.ratio_label} = {b.ratio} goal_met={b.goal_met}")
        for row in b.rows:
            print("  ", row)
    out = Path(os.environ.get("BENCH_JSON") or REPO / "bench" / "results" / "flow.json")
    result.write(out, benches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
