"""API benchmark: 202 latency of POST /lightrag/ingest-async at a fixed request rate.

Run: ``SHIELD_RENDERED=build/rendered/default .venv/bin/python -m bench.bench_api [seconds]``
(env BENCH_API_RATE requests/s, default 100; BENCH_API_CHUNKS chunks per request, default 100;
BENCH_JSON: also write the results in the report format, bench/result.py; BENCH_API_TRACE: a
file to append each 202's due time and latency to, to see when a stall happened).

Setup: a real redis-server and PostgreSQL (tests/support/servers.py, migrated); the API in its
own process (``python -m bench.bench_api serve``), run by the service's own
``shield_orchestrator.api.__main__.serve`` (uvicorn, uvloop, httptools, no access log) with
the queue limit raised through ApiConfig so back-pressure never trips; this process is the
load generator. A drain task trims the ingestion stream every 0.1 s, standing in for the
workers (their XDEL of acknowledged entries).

Baseline, same run, same load, same body, same ``serve``: an empty FastAPI app whose one POST
route reads the body and answers 202 (no validation, no Redis, no PostgreSQL). It shows what
the client, uvicorn, FastAPI and this machine's load cost at this rate, before the API's work.

Client: aiohttp (one connection per request in flight, up to CONNECTIONS), open loop: request
i is due at start + i / rate whatever happened to the others, and its latency counts from
that due time, not from when the client got round to sending it (no coordinated omission: a
late client or a queueing server both show up as latency). The client's own lateness (send
start - due time) is reported too, so a slow client is visible as such. CPU per request of
the server process and of this client come from /proc and ``time.process_time``.

Target: p99 <= 25 ms at 100 req/s of 100 chunks, 0 errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("SHIELD_RENDERED", "build/rendered/default"))

import aiohttp
from fastapi import FastAPI, Request, Response

from bench import result
from tests.support.servers import (
    LOOPBACK,
    free_port,
    postgres_server,
    redis_server,
    wait_for_port,
)

API_KEY = "bench-api-key-0123456789abcdef"
DB = "shield_bench_api"
PATH = "/lightrag/ingest-async"
GOAL_P99_MS = 25.0
CONNECTIONS = 1000  # the client's pool: far above what 100 req/s keeps in flight
WARMUP_S = 2.0  # load at the same rate before the clock starts: pools and connections grown
DRAIN_EVERY_S = 0.1


def _empty_app() -> FastAPI:
    """The baseline: FastAPI, one POST route that reads the body and answers 202."""
    app = FastAPI()

    @app.post(PATH, status_code=202)
    async def ingest(request: Request) -> Response:
        await request.body()
        return Response(b'{"job_id":"-"}', status_code=202, media_type="application/json")

    return app


def serve(params: dict[str, Any]) -> None:
    """The server process: the API (or the empty baseline app), run as the service runs it."""
    from shield_orchestrator.api.__main__ import serve as serve_app
    from shield_orchestrator.api.app import create_app
    from shield_orchestrator.api.config import ApiConfig
    from shield_orchestrator.settings import Settings

    if params["app"] == "empty":
        app = _empty_app()
    else:
        settings = Settings(**params["settings"], api_keys=(API_KEY,))
        config = dataclasses.replace(ApiConfig(), max_queue_pending=10**12)
        app = create_app(settings, config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # several processes, one port
    sock.bind((LOOPBACK, params["port"]))
    serve_app(app, LOOPBACK, params["port"], sockets=[sock])


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
        await asyncio.sleep(DRAIN_EVERY_S)
    await redis.aclose()


def _cpu_s(pids: list[int]) -> tuple[float, float] | None:
    """(user, system) CPU seconds of these processes (all threads), or None off Linux."""
    user = system = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        user, system = user + int(fields[11]) / tick, system + int(fields[12]) / tick
    return user, system


def _cpu_per_request(
    before: tuple[float, float] | None, after: tuple[float, float] | None, requests: int
) -> dict[str, float | None]:
    if before is None or after is None:
        return {"server_cpu_ms_per_request": None, "server_kernel_cpu_ms_per_request": None}
    return {
        "server_cpu_ms_per_request": round(1000 * (sum(after) - sum(before)) / requests, 2),
        "server_kernel_cpu_ms_per_request": round(1000 * (after[1] - before[1]) / requests, 2),
    }


def _write_trace(path: Path, base: str, trace: list[tuple[float, float]]) -> None:
    """BENCH_API_TRACE: one line per 202 (server, due time in s, latency in ms), to find stalls."""
    with path.open("a") as f:
        f.writelines(f"{base} {t:.3f} {1000 * lat:.2f}\n" for t, lat in sorted(trace))


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)


async def load(
    base: str,
    redis_url: str | None,
    rate: float,
    seconds: float,
    n_chunks: int,
    server_pids: list[int],
) -> dict[str, Any]:
    body = _body(n_chunks)
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    latencies: list[float] = []
    lags: list[float] = []
    trace: list[tuple[float, float]] = []  # (due - start, latency) of each 202
    errors: dict[str, int] = {}
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
        drain = asyncio.create_task(_drain(redis_url, stop)) if redis_url else None

        async def one(due: float, measured: bool) -> None:
            if measured:
                lags.append(time.perf_counter() - due)
            try:
                async with session.post(PATH, data=body, headers=headers) as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                if measured:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            if not measured:
                return
            if status == 202:
                latencies.append(time.perf_counter() - due)
                trace.append((due - start, latencies[-1]))
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1

        warm, total = int(rate * WARMUP_S), int(rate * seconds)
        server_cpu0, client_cpu0, load0 = None, 0.0, 0.0
        begin = time.perf_counter() + 0.05
        start = begin + warm / rate  # the first measured request is due then
        warm_tasks, tasks = [], []
        for i in range(warm + total):
            due = begin + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i == warm:
                server_cpu0, client_cpu0 = _cpu_s(server_pids), time.process_time()
                load0 = os.getloadavg()[0]
            (tasks if i >= warm else warm_tasks).append(asyncio.create_task(one(due, i >= warm)))
        await asyncio.gather(*warm_tasks, *tasks)
        elapsed = time.perf_counter() - start
        server_cpu1, client_cpu = _cpu_s(server_pids), time.process_time() - client_cpu0
        stop.set()
        if drain is not None:
            await drain
    if os.environ.get("BENCH_API_TRACE"):
        _write_trace(Path(os.environ["BENCH_API_TRACE"]), base, trace)
    return {
        **_cpu_per_request(server_cpu0, server_cpu1, total),
        "rate_req_s": rate,
        "chunks_per_request": n_chunks,
        "body_bytes": len(body),
        "requests": total,
        "accepted": len(latencies),
        "errors": errors,
        "p50_ms": _pct(latencies, 0.50),
        "p90_ms": _pct(latencies, 0.90),
        "p99_ms": _pct(latencies, 0.99),
        "max_ms": round(1000 * max(latencies, default=float("nan")), 2),
        "accepted_chunks_per_s": round(len(latencies) * n_chunks / elapsed, 1),
        "client_cpu_ms_per_request": round(1000 * client_cpu / total, 2),
        "client_lag_p99_ms": _pct(lags, 0.99),
        "load_avg_1m": round(load0, 2),
    }


def _run_servers(app: str, port: int, settings: dict[str, Any], processes: int) -> list[Any]:
    params = {"app": app, "port": port, "settings": settings}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path.cwd()), *sys.path[:1]]))
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.bench_api", "serve", json.dumps(params)], env=env
        )
        for _ in range(processes)
    ]
    for server in servers:
        wait_for_port(port, 30, server)
    time.sleep(0.5 * (processes - 1))  # the last one to bind may still be starting
    return servers


def _measure(
    app: str, settings: dict[str, Any], redis_url: str | None, rate: float, seconds: float,
    n_chunks: int, processes: int = 1,
) -> dict[str, Any]:  # fmt: skip
    port = free_port()
    servers = _run_servers(app, port, settings, processes)
    try:
        return asyncio.run(
            load(f"http://{LOOPBACK}:{port}", redis_url, rate, seconds, n_chunks,
                 [s.pid for s in servers])
        )  # fmt: skip
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(20)


def benchmark(api: dict[str, Any], two: dict[str, Any], empty: dict[str, Any]) -> result.Benchmark:
    """The report's table: the API (as deployed: one process; and two processes on one port)
    beside the empty-endpoint baseline of the same run."""
    met = api["p99_ms"] <= GOAL_P99_MS and not api["errors"] and api["accepted"] == api["requests"]

    def row(label: str, key: str) -> list[result.Cell]:
        return [label, api.get(key), two.get(key), empty.get(key)]

    def errors(d: dict[str, Any]) -> str:
        return json.dumps(d["errors"]) if d["errors"] else "none"

    offered = api["rate_req_s"] * api["chunks_per_request"]
    rows: list[list[result.Cell]] = [
        row("offered rate (requests/s)", "rate_req_s"),
        row("chunks per request", "chunks_per_request"),
        ["requests sent / 202 accepted", *(f"{d['requests']} / {d['accepted']}"
                                           for d in (api, two, empty))],
        row("202 latency p50 (ms)", "p50_ms"),
        row("202 latency p90 (ms)", "p90_ms"),
        row("202 latency p99 (ms)", "p99_ms"),
        row("202 latency max (ms)", "max_ms"),
        row("accepted chunks/s", "accepted_chunks_per_s"),
        ["errors", errors(api), errors(two), errors(empty)],
        row("server CPU per request, all processes (ms)", "server_cpu_ms_per_request"),
        row("  of which kernel (ms)", "server_kernel_cpu_ms_per_request"),
        row("client CPU per request (ms)", "client_cpu_ms_per_request"),
        row("client send lateness p99 (ms)", "client_lag_p99_ms"),
        row("load average (1 min) at start", "load_avg_1m"),
    ]  # fmt: skip
    server_ms = api.get("server_cpu_ms_per_request") or 0.0
    return result.Benchmark(
        key="api",
        title="API: 202 latency and accepted chunks/s at a fixed request rate",
        goal=f"p99 <= {GOAL_P99_MS:.0f} ms at 100 requests/s of 100 chunks",
        columns=[
            "measure",
            "API (1 process, as deployed)",
            "API (2 processes, one port)",
            "baseline: empty FastAPI endpoint",
        ],
        rows=rows,
        goal_met=met,
        ratio=round(api["p99_ms"] / GOAL_P99_MS, 3),
        ratio_label=f"p99 ÷ {GOAL_P99_MS:.0f} ms goal",
        baseline=(
            f"the same load against an empty FastAPI endpoint in the same run: p99 "
            f"{empty['p99_ms']} ms (API p99 ÷ baseline p99 = "
            f"{api['p99_ms'] / empty['p99_ms']:.2f}); accepted ÷ offered chunks/s = "
            f"{api['accepted_chunks_per_s'] / offered:.3f}"
        ),
        limits=(
            f"one API process (one event loop) spends {server_ms} ms of CPU per 100-chunk "
            f"request, {server_ms * api['rate_req_s'] / 10:.0f} % of a core at this rate; the "
            "rest of the latency is waiting: for Redis and PostgreSQL (three round trips) and "
            "for a CPU on 2 cores shared with the load generator, redis-server, PostgreSQL and "
            "whatever else the machine runs (the baseline column shows that share)."
        ),
        notes=[
            "Client: aiohttp, open loop, latency counted from each request's scheduled time "
            "(no coordinated omission); 'client send lateness' is how late the client started "
            f"a request, so a client that could not keep up would show there. {WARMUP_S:g} s "
            "of the same load before the measured window (connection pools grown).",
            "Server run by shield_orchestrator.api.__main__.serve, as the service runs it "
            "(uvicorn, uvloop, httptools, no access log). The 2-process column runs two such "
            "processes on one port (SO_REUSEPORT), as `uvicorn --workers 2` would.",
        ],
    )


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    rate = float(os.environ.get("BENCH_API_RATE", "100"))
    n_chunks = int(os.environ.get("BENCH_API_CHUNKS", "100"))
    with redis_server() as rs, postgres_server() as pg:
        asyncio.run(_migrate(pg.dsn("postgres"), pg.dsn(DB)))
        settings = {
            "redis_host": LOOPBACK, "redis_port": rs.port, "redis_password": rs.password,
            "postgres_host": LOOPBACK, "postgres_port": pg.port, "postgres_db": DB,
            "postgres_user": pg.user, "postgres_password": pg.password,
        }  # fmt: skip
        empty = _measure("empty", settings, None, rate, seconds, n_chunks)
        out = _measure("api", settings, rs.url, rate, seconds, n_chunks)
        two = _measure("api", settings, rs.url, rate, seconds, n_chunks, processes=2)
    out["two_processes"] = two
    out["baseline_empty_endpoint"] = empty
    print(json.dumps(out, indent=2))
    bench = benchmark(out, two, empty)
    if os.environ.get("BENCH_JSON"):
        result.write(Path(os.environ["BENCH_JSON"]), [bench])
    print(
        f"bench_api: p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms at {rate:g} req/s x "
        f"{n_chunks} chunks; {out['accepted_chunks_per_s']} chunks/s accepted; errors "
        f"{out['errors'] or 0}; server CPU {out['server_cpu_ms_per_request']} ms/request; "
        f"2 processes: p50 {two['p50_ms']} ms, p99 {two['p99_ms']} ms; "
        f"baseline (empty endpoint) p50 {empty['p50_ms']} ms, p99 {empty['p99_ms']} ms; "
        f"target p99 <= {GOAL_P99_MS:.0f} ms: {'met' if bench.goal_met else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "serve":
        serve(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
