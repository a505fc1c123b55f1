"""Benchmark of the worker runtime: one real worker process against its own Redis/PostgreSQL.

    python bench/bench_pool.py            # prints the table
    python -m bench.bench_pool            # the same; with BENCH_JSON set, also writes results

Measured in one run, on one redis-server and one PostgreSQL cluster started here:

1. ceiling: a raw XREADGROUP COUNT=B + XACK loop (one client, no processing) on N entries;
2. no-op: N chunks of one job through ``python -m shield_orchestrator.workers`` (engine
   noop), from the first XADD until the job hash says completed; ratio = no-op / ceiling;
3. PostgreSQL transactions per 1,000 chunks during (2): ``pg_stat_database.xact_commit`` of
   the job database, read from another database after the worker exited (goal <= 10);
4. saturation: an engine that sleeps 200 ms with allowed concurrency 8: chunks/s divided by
   the ideal 8 / 0.2 = 40 chunks/s (goal >= 0.95).

BENCH_N (default 20000) sets N; BENCH_SLEEP_N (default 400) the chunks of (4).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/bench_pool.py` puts bench/ first, not the repo
    sys.path.insert(0, str(REPO))
RENDERED = Path(os.environ.get("SHIELD_RENDERED", REPO / "build" / "rendered" / "default"))
sys.path.insert(0, str(RENDERED))

import asyncpg  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from bench import result  # noqa: E402
from tests.support.chunks import enqueue_job, insert_job_row  # noqa: E402
from tests.support.servers import (  # noqa: E402
    PostgresServer,
    RedisServer,
    postgres_server,
    redis_server,
)

N = int(os.environ.get("BENCH_N", "20000"))
SLEEP_N = int(os.environ.get("BENCH_SLEEP_N", "400"))
RAW_BATCH = 100
NOOP_POOL = {"POOL_SIZE": "256", "BATCH_SIZE": "256"}
SLEEP_POOL = {"POOL_SIZE": "8", "BATCH_SIZE": "10", "NOOP_DELAY_MS": "200",
              "NOOP_MAX_CONCURRENCY": "8"}  # fmt: skip


def _redis(server: RedisServer) -> Redis:
    return Redis(host="127.0.0.1", port=server.port, password=server.password,
                 decode_responses=True)  # fmt: skip


async def raw_ceiling(server: RedisServer, n: int) -> float:
    """entries/s of a bare XREADGROUP + XACK loop (no processing, no bookkeeping)."""
    r = _redis(server)
    stream, group = "bench:raw", "g"
    await r.delete(stream)
    await r.xgroup_create(stream, group, id="0", mkstream=True)
    for start in range(0, n, 1000):
        async with r.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + 1000, n)):
                pipe.xadd(stream, {"v": "1", "i": str(i)})
            await pipe.execute()
    done = 0
    t0 = time.perf_counter()
    while done < n:
        reply: Any = await r.xreadgroup(group, "raw", {stream: ">"}, count=RAW_BATCH)
        ids = [entry_id for _s, entries in reply for entry_id, _f in entries]
        await r.xack(stream, group, *ids)
        done += len(ids)
    rate = n / (time.perf_counter() - t0)
    await r.delete(stream)
    await r.aclose()
    return rate


def _spawn(redis: RedisServer, pg: PostgresServer, db: str, knobs: dict[str, str],
           log: Path) -> subprocess.Popen[bytes]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIELD_")}
    env.update({
        "PYTHONPATH": str(RENDERED), "SHIELD_ENGINE": "noop",
        "SHIELD_REDIS_HOST": "127.0.0.1", "SHIELD_REDIS_PORT": str(redis.port),
        "SHIELD_REDIS_DB": "0", "SHIELD_REDIS_PASSWORD": redis.password,
        "SHIELD_POSTGRES_HOST": "127.0.0.1", "SHIELD_POSTGRES_PORT": str(pg.port),
        "SHIELD_POSTGRES_DB": db, "SHIELD_POSTGRES_USER": pg.user,
        "SHIELD_POSTGRES_PASSWORD": pg.password, "SHIELD_WORKER_METRICS_PORT": "0",
        "SHIELD_WORKER_MAX_TASKS_PER_CHILD": "0", "SHIELD_WORKER_FLUSH_INTERVAL_MS": "1000",
        **{f"SHIELD_WORKER_{k}": v for k, v in knobs.items()},
    })  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "shield_orchestrator.workers", "1"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


async def _wait_done(r: Redis, job_id: str) -> None:
    from shield_orchestrator import keys

    done = ("completed", "completed_with_errors")
    while True:  # polled: the benchmark measures the worker, not a notification path
        if await r.hget(keys.job(job_id), "status") in done:
            return
        await asyncio.sleep(0.005)


async def _xact_commit(pg: PostgresServer, db: str) -> int:
    conn = await asyncpg.connect(pg.dsn("postgres"))
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        value = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", db)  # fmt: skip
        return int(value)
    finally:
        await conn.close()


async def through_worker(
    redis: RedisServer, pg: PostgresServer, db: str, n: int, knobs: dict[str, str], log: Path
) -> tuple[float, int]:
    """(chunks/s, PostgreSQL commits of the worker) for one job of n chunks."""
    r = _redis(redis)
    await r.flushall()
    worker = _spawn(redis, pg, db, knobs, log)
    try:
        job_id = __import__("uuid").uuid4().__str__()
        conn = await asyncpg.connect(pg.dsn(db))
        warm = await enqueue_job(r, conn, 50)
        await insert_job_row(conn, job_id, n)
        await conn.close()
        await _wait_done(r, warm)
        await asyncio.sleep(1.5)  # the worker flushes the warm-up job; stats settle
        before = await _xact_commit(pg, db)
        t0 = time.perf_counter()
        await _enqueue_large(r, n, job_id)
        await _wait_done(r, job_id)
        rate = n / (time.perf_counter() - t0)
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 60)
        await r.aclose()
    await asyncio.sleep(1.0)
    commits = await _xact_commit(pg, db) - before
    return rate, commits


async def _enqueue_large(r: Redis, n: int, job_id: str) -> None:
    """Like the API: job hash + chunks in pipelines of 1,000 (one MULTI would be one reply)."""
    from shield_orchestrator import keys
    from shield_orchestrator.services.job_status import new_job_fields

    from tests.support.chunks import chunk_fields

    await r.hset(keys.job(job_id), mapping=new_job_fields(job_id, n, "default", time.time()))
    for start in range(0, n, 1000):
        async with r.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + 1000, n)):
                pipe.xadd(keys.ingestion_stream(keys.WORKSPACES[0]), chunk_fields(job_id, i + 1))
            await pipe.execute()


async def _migrated_db(pg: PostgresServer) -> str:
    from shield_orchestrator.database.migrate import migrate

    for _ in range(300):  # a just-started server may still say "starting up"
        try:
            admin = await asyncpg.connect(pg.dsn("postgres"))
            break
        except asyncpg.CannotConnectNowError:
            await asyncio.sleep(0.2)
    await admin.execute('CREATE DATABASE "bench"')
    await admin.close()
    conn = await asyncpg.connect(pg.dsn("bench"))
    await migrate(conn)
    await conn.close()
    return "bench"


async def run() -> list[result.Benchmark]:
    log = Path(tempfile.mkdtemp(prefix="bench-pool-")) / "worker.log"
    with redis_server() as redis, postgres_server() as pg:
        db = await _migrated_db(pg)
        ceiling = await raw_ceiling(redis, N)
        noop_rate, commits = await through_worker(redis, pg, db, N, NOOP_POOL, log)
        sleep_rate, _ = await through_worker(redis, pg, db, SLEEP_N, SLEEP_POOL, log)
    per_1000 = commits * 1000 / N
    ideal = 8 / 0.2
    ratio = noop_rate / ceiling
    rows: list[list[result.Cell]] = [
        ["raw XREADGROUP+XACK loop (ceiling)", N, round(ceiling), "1.00"],
        ["worker process, noop engine", N, round(noop_rate), f"{ratio:.2f}"],
        [
            "worker process, 200 ms engine, concurrency 8",
            SLEEP_N,
            round(sleep_rate, 1),
            f"{sleep_rate / ideal:.3f} of ideal {ideal:.0f}/s",
        ],
        ["PostgreSQL commits per 1,000 chunks (noop run)", N, round(per_1000, 2), "goal <= 10"],
    ]
    notes = [
        f"pool knobs: noop {NOOP_POOL}, sleep {SLEEP_POOL}; worker log {log}",
        "one worker process (python -m shield_orchestrator.workers), Redis and PostgreSQL "
        "started by the benchmark on loopback; the machine is shared (2 cores).",
    ]
    return [result.Benchmark(
        key="pool",
        title="Worker runtime: no-op throughput, saturation, PostgreSQL transactions",
        goal="saturation >= 0.95 of engine concurrency / latency; <= 10 PG commits / 1,000",
        columns=["run", "chunks", "chunks/s (or value)", "ratio"],
        rows=rows,
        goal_met=sleep_rate / ideal >= 0.95 and per_1000 <= 10,
        ratio=round(ratio, 3),
        ratio_label="no-op chunks/s / raw XREADGROUP+XACK",
        baseline="raw XREADGROUP+XACK loop, same Redis, same run",
        limits="one process on 2 shared cores; the noop run is bound by the pool's own Python",
        notes=notes,
    )]  # fmt: skip


def main() -> int:
    benches = asyncio.run(run())
    for b in benches:
        print(b.title)
        widths = [max(len(str(c)), *(len(str(r[i])) for r in b.rows)) for i, c in
                  enumerate(b.columns)]  # fmt: skip
        print("  ".join(str(c).ljust(w) for c, w in zip(b.columns, widths, strict=True)))
        for row in b.rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        print(f"goal met: {b.goal_met}  ({b.goal})")
    if os.environ.get("BENCH_JSON"):
        result.write(Path(os.environ["BENCH_JSON"]), benches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
