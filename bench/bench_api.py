"""API benchmark: 202 latency of POST /lightrag/ingest-async at a fixed request rate.

Run: ``SHIELD_RENDERED=build/rendered/default .venv/bin/python -m bench.bench_api [seconds]``
(env BENCH_API_RATE requests/s, default 100; BENCH_API_CHUNKS chunks per request, default 100).

Setup: a real redis-server and PostgreSQL (tests/support/servers.py, migrated), the API under
uvicorn in its own process (``python -m bench.bench_api serve``: create_app with the queue
limit raised through ApiConfig, so back-pressure never trips), and this process as the load
generator: open loop, request i is due at start + i / rate whatever happened to the others,
and its latency counts from that due time (no coordinated omission). A drain task trims the
ingestion stream every 0.5 s, standing in for the workers. Reports p50/p90/p99/max of the 202s,
accepted chunks/s, and every non-202 or transport error. Target: p99 <= 25 ms at 100 req/s.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("SHIELD_RENDERED", "build/rendered/default"))

import httpx

from tests.support.servers import (
    LOOPBACK,
    free_port,
    postgres_server,
    redis_server,
    wait_for_port,
)

API_KEY = "bench-api-key-0123456789abcdef"
DB = "shield_bench_api"


def serve(params: dict[str, Any]) -> None:
    """The server process: the API app on real Redis/PostgreSQL, queue limit raised."""
    import dataclasses

    import uvicorn
    from shield_orchestrator.api.app import create_app
    from shield_orchestrator.api.config import ApiConfig
    from shield_orchestrator.settings import Settings

    settings = Settings(**params["settings"], api_keys=(API_KEY,))
    config = dataclasses.replace(ApiConfig(), max_queue_pending=10**12)
    uvicorn.run(create_app(settings, config), host=LOOPBACK, port=params["port"],
                log_level="warning", access_log=False)  # fmt: skip


async def _migrate(dsn_admin: str, dsn_db: str) -> None:
    import asyncpg
    from shield_orchestrator.database.migrate import migrate

    admin = await asyncpg.connect(dsn_admin)
    await admin.execute(f'CREATE DATABASE "{DB}"')
    await admin.close()
    conn = await asyncpg.connect(dsn_db)
    await migrate(conn)
    await conn.close()


def _body(n_chunks: int) -> bytes:
    chunks = [
        {"text": f"Benchmark chunk {i}: " + "lorem ipsum dolor sit amet " * 7,
         "source_uri": f"bench://doc/{i}", "metadata": {"i": i}}
        for i in range(n_chunks)
    ]  # fmt: skip
    return json.dumps({"chunks": chunks, "source_type": "bench"}).encode()


async def _drain(redis_url: str, stop: asyncio.Event) -> None:
    from redis.asyncio import Redis
    from shield_orchestrator import keys

    redis = Redis.from_url(redis_url)
    while not stop.is_set():
        await redis.xtrim(keys.INGESTION_STREAM, maxlen=0)
        await asyncio.sleep(0.5)
    await redis.aclose()


async def load(
    base: str, redis_url: str, rate: float, seconds: float, n_chunks: int
) -> dict[str, Any]:
    body = _body(n_chunks)
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        for _ in range(20):  # warm up connections and the server's pools
            await client.post("/lightrag/ingest-async", content=body, headers=headers)
        drain = asyncio.create_task(_drain(redis_url, stop))

        async def one(due: float) -> None:
            try:
                r = await client.post("/lightrag/ingest-async", content=body, headers=headers)
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            if r.status_code == 202:
                latencies.append(time.perf_counter() - due)
            else:
                errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1

        total = int(rate * seconds)
        start = time.perf_counter() + 0.05
        tasks = []
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        stop.set()
        await drain
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

    return {
        "rate_req_s": rate,
        "chunks_per_request": n_chunks,
        "body_bytes": len(body),
        "requests": total,
        "accepted": len(latencies),
        "errors": errors,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(1000 * latencies[-1], 2),
        "accepted_chunks_per_s": round(len(latencies) * n_chunks / elapsed, 1),
    }


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    rate = float(os.environ.get("BENCH_API_RATE", "100"))
    n_chunks = int(os.environ.get("BENCH_API_CHUNKS", "100"))
    with redis_server() as rs, postgres_server() as pg:
        asyncio.run(_migrate(pg.dsn("postgres"), pg.dsn(DB)))
        port = free_port()
        params = {
            "port": port,
            "settings": {
                "redis_host": LOOPBACK, "redis_port": rs.port, "redis_password": rs.password,
                "postgres_host": LOOPBACK, "postgres_port": pg.port, "postgres_db": DB,
                "postgres_user": pg.user, "postgres_password": pg.password,
            },
        }  # fmt: skip
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path.cwd()), *sys.path[:1]]))
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_api", "serve", json.dumps(params)], env=env
        )
        try:
            wait_for_port(port, 30, server)  # type: ignore[arg-type]
            out = asyncio.run(load(f"http://{LOOPBACK}:{port}", rs.url, rate, seconds, n_chunks))
        finally:
            server.terminate()
            server.wait(20)
    print(json.dumps(out, indent=2))
    ok = out["p99_ms"] <= 25 and not out["errors"]
    print(f"bench_api: p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms at {rate:g} req/s x "
          f"{n_chunks} chunks; {out['accepted_chunks_per_s']} chunks/s accepted; errors "
          f"{out['errors'] or 0}; target p99 <= 25 ms: {'met' if ok else 'NOT met'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "serve":
        serve(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
