"""API benchmark: 202 latency of POST /lightrag/ingest-async at a fixed request rate.

Run: ``SHIELD_RENDERED=build/rendered/default .venv/bin/python -m bench.bench_api [seconds]``
(env BENCH_API_RATE requests/s, default 100; BENCH_API_CHUNKS chunks per request, default 100;
BENCH_API_PROCESSES the N of the N-process columns, default this machine's CPUs, as
``orchestrator_api_processes``; BENCH_API_ROUNDS rounds of every run, default 3, the table
shows each column pair's median round; BENCH_JSON: also write the results in the report format,
bench/result.py; BENCH_API_TRACE: a file to append each 202's due time and latency to).

Setup: a real redis-server and PostgreSQL (tests/support/servers.py, migrated); the API served
in its own process tree (``python -m bench.bench_api serve``), the queue limit raised through
ApiConfig so back-pressure never trips, prometheus-client's multiprocess files on (as the unit
sets PROMETHEUS_MULTIPROC_DIR); this process is the load generator. A drain task trims the
ingestion stream every 0.1 s, standing in for the workers (their XDEL of acknowledged entries).
Two ways to run N processes on one port, each measured:

- shared socket (as deployed): ``shield_orchestrator.api.processes.run_processes``, one
  listening socket bound by the main process, N uvicorn children accepting on it (uvicorn's
  own ``--workers`` manager); with N = 1 that is the service on a one-core host;
- SO_REUSEPORT: N independent processes, each binding the port with SO_REUSEPORT and running
  ``shield_orchestrator.api.__main__.serve`` (the kernel hashes each connection to one of them).

Baseline, same run, same load, same body, served the same way (same number of processes, same
socket arrangement, same ``server_config``): an empty FastAPI app whose one POST route reads
the body and answers 202 (no validation, no Redis, no PostgreSQL). It shows what the client,
uvicorn, FastAPI and this machine's load cost at this rate, before the API's work. Each API
run follows its baseline run at once.

Client: aiohttp (one connection per request in flight, up to CONNECTIONS), open loop: request
i is due at start + i / rate whatever happened to the others, and its latency counts from
that due time, not from when the client got round to sending it (no coordinated omission: a
late client or a queueing server both show up as latency). The client's own lateness (send
start - due time) is reported too, so a slow client is visible as such. CPU per request of
the server processes and of this client come from /proc and ``time.process_time``.

Goal (issue 18): p99 of the 202 ÷ p99 of the empty endpoint served the same way <= 3, with
1 and N processes, 0 errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("SHIELD_RENDERED", "build/rendered/default"))

import aiohttp
from fastapi import FastAPI, Request, Response

from bench import result
from tests.support.servers import (
    LOOPBACK,
    PostgresServer,
    RedisServer,
    free_port,
    postgres_server,
    redis_server,
    wait_for_port,
)

API_KEY = "bench-api-key-0123456789abcdef"
DB = "shield_bench_api"
PATH = "/lightrag/ingest-async"
GOAL_RATIO = 3.0  # API p99 / empty-endpoint p99, same serving, same run
CONNECTIONS = 1000  # the client's pool: far above what 100 req/s keeps in flight
WARMUP_S = 2.0  # load at the same rate before the clock starts: pools and connections grown
DRAIN_EVERY_S = 0.1


def _empty_app() -> FastAPI:
    """The baseline: FastAPI, one POST route that reads the body and answers 202."""
    from shield_orchestrator.api.config import ApiConfig

    app = FastAPI()
    app.state.config = ApiConfig()  # the same uvicorn bounds as the API (server_config)

    @app.post(PATH, status_code=202)
    async def ingest(request: Request) -> Response:
        await request.body()
        return Response(b'{"job_id":"-"}', status_code=202, media_type="application/json")

    return app


@dataclasses.dataclass(frozen=True)
class AppFactory:
    """The app of one server process (crosses the spawn boundary to uvicorn's children)."""

    params: dict[str, Any]

    def __call__(self) -> FastAPI:
        from shield_orchestrator.api.app import create_app
        from shield_orchestrator.api.config import ApiConfig
        from shield_orchestrator.api.processes import frozen
        from shield_orchestrator.logs import setup_logging
        from shield_orchestrator.settings import Settings

        setup_logging("INFO")  # "Application startup complete": the bench waits for it
        if self.params["app"] == "empty":
            return frozen(_empty_app())
        settings = Settings(
            **self.params["settings"], api_keys=(API_KEY,),
            api_metrics_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR"),
        )  # fmt: skip
        config = dataclasses.replace(ApiConfig(), max_queue_pending=10**12)
        return frozen(create_app(settings, config))


def serve(params: dict[str, Any]) -> None:
    """The server process: the API (or the empty baseline app), run as the service runs it
    (mode "shared": run_processes, N children on one socket) or as one SO_REUSEPORT process."""
    from shield_orchestrator.api.__main__ import serve as serve_app
    from shield_orchestrator.api.__main__ import server_config
    from shield_orchestrator.api.config import ApiConfig
    from shield_orchestrator.api.processes import listen, run_processes

    factory = AppFactory(params)
    if params["mode"] == "shared":
        sock = listen(LOOPBACK, params["port"])
        config = server_config(None, LOOPBACK, params["port"], ApiConfig())
        sys.exit(run_processes(factory, config, sock, params["processes"], None))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # several processes, one port
    sock.bind((LOOPBACK, params["port"]))
    serve_app(factory(), LOOPBACK, params["port"], sockets=[sock])


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
        await redis.xtrim(keys.ingestion_stream(keys.WORKSPACES[0]), maxlen=0)
        await asyncio.sleep(DRAIN_EVERY_S)
    await redis.aclose()


def _tree(pids: list[int]) -> list[int]:
    """These processes and all their descendants (uvicorn's children)."""
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        with_children = Path(f"/proc/{pid}/task/{pid}/children")
        if with_children.exists():
            todo += [int(c) for c in with_children.read_text().split()]
    return out


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
                server_pids = _tree(server_pids)
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


def _run_servers(params: dict[str, Any], metrics_dir: str) -> list[Any]:
    """The server processes, once every uvicorn process has logged its startup."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path.cwd()), *sys.path[:1]]),
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
    )
    log = Path(metrics_dir) / "servers.log"
    count = 1 if params["mode"] == "shared" else params["processes"]
    with log.open("wb") as out:
        servers = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.bench_api", "serve", json.dumps(params)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            for _ in range(count)
        ]
    deadline = time.monotonic() + 60
    while (
        log.read_text(errors="replace").count("Application startup complete") < params["processes"]
    ):
        if time.monotonic() > deadline or any(s.poll() is not None for s in servers):
            raise RuntimeError(f"bench_api: servers did not start:\n{log.read_text()}")
        time.sleep(0.2)
    wait_for_port(port=params["port"], timeout_s=30)
    return servers


def _measure(
    app: str, mode: str, processes: int, settings: dict[str, Any], redis_url: str | None,
    rate: float, seconds: float, n_chunks: int,
) -> dict[str, Any]:  # fmt: skip
    params = {"app": app, "mode": mode, "processes": processes, "port": free_port(),
              "settings": settings}  # fmt: skip
    metrics_dir = tempfile.mkdtemp(prefix="bench-api-metrics-")
    servers = _run_servers(params, metrics_dir)
    try:
        return asyncio.run(
            load(f"http://{LOOPBACK}:{params['port']}", redis_url, rate, seconds, n_chunks,
                 [s.pid for s in servers])
        )  # fmt: skip
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(30)
        shutil.rmtree(metrics_dir, ignore_errors=True)


# (column label, serving mode, processes: None = N) in the order they run, API after baseline
RUNS = [
    ("1 process", "shared", 1),
    ("N processes, one shared socket (as deployed)", "shared", None),
    ("N processes, SO_REUSEPORT", "reuseport", None),
]


def _ratio(api: dict[str, Any], empty: dict[str, Any]) -> float:
    return round(api["p99_ms"] / empty["p99_ms"], 2)


def _ok(d: dict[str, Any]) -> bool:
    return not d["errors"] and d["accepted"] == d["requests"]


def _median_round(rounds: list[tuple[dict[str, Any], dict[str, Any]]]) -> int:
    by_ratio = sorted(range(len(rounds)), key=lambda i: _ratio(*rounds[i]))
    return by_ratio[len(by_ratio) // 2]


def benchmark(
    all_rounds: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]], n: int
) -> result.Benchmark:
    """The report's table: for each way of serving, the API beside the empty endpoint served
    the same way (the round whose ratio of p99s is the median), and every round's ratio."""
    runs = {label: rounds[_median_round(rounds)] for label, rounds in all_rounds.items()}
    labels = list(runs)
    cols = [d for label in labels for d in runs[label]]  # api, empty, api, empty, ...

    def row(label: str, key: str) -> list[result.Cell]:
        return [label, *(d.get(key) for d in cols)]

    def errors(d: dict[str, Any]) -> str:
        return json.dumps(d["errors"]) if d["errors"] else "none"

    ratios = {label: _ratio(*runs[label]) for label in labels}
    rows: list[list[result.Cell]] = [
        ["API p99 ÷ empty p99 (goal <= 3), median round", *(x for label in labels
                                                             for x in (ratios[label], None))],
        ["  the ratio in each round", *(x for label in labels for x in (
            " / ".join(f"{_ratio(*r):g}" for r in all_rounds[label]), None))],
        row("offered rate (requests/s)", "rate_req_s"),
        row("chunks per request", "chunks_per_request"),
        ["requests sent / 202 accepted", *(f"{d['requests']} / {d['accepted']}" for d in cols)],
        row("202 latency p50 (ms)", "p50_ms"),
        row("202 latency p90 (ms)", "p90_ms"),
        row("202 latency p99 (ms)", "p99_ms"),
        row("202 latency max (ms)", "max_ms"),
        row("accepted chunks/s", "accepted_chunks_per_s"),
        ["errors", *(errors(d) for d in cols)],
        row("server CPU per request, all processes (ms)", "server_cpu_ms_per_request"),
        row("  of which kernel (ms)", "server_kernel_cpu_ms_per_request"),
        row("client CPU per request (ms)", "client_cpu_ms_per_request"),
        row("client send lateness p99 (ms)", "client_lag_p99_ms"),
        row("load average (1 min) at start", "load_avg_1m"),
    ]  # fmt: skip
    deployed = [labels[0], labels[1]]  # 1 and N processes as the service runs them
    worst = max(ratios[label] for label in deployed)
    met = worst <= GOAL_RATIO and all(
        _ok(d) for label in deployed for r in all_rounds[label] for d in r
    )
    one_api = runs[labels[0]][0]
    server_ms = one_api.get("server_cpu_ms_per_request") or 0.0
    return result.Benchmark(
        key="api",
        title="API: 202 latency and accepted chunks/s at a fixed request rate",
        goal=(
            "p99 of the 202 ÷ p99 of an empty endpoint served the same way <= 3 at 100 "
            "requests/s of 100 chunks, 0 errors, with 1 and N processes"
        ),
        columns=[
            "measure",
            *(
                f"{who} ({label.replace('N ', f'{n} ')})"
                for label in labels
                for who in ("API", "empty endpoint")
            ),
        ],
        rows=rows,
        goal_met=met,
        ratio=worst,
        ratio_label=(
            "worst of the median API p99 ÷ empty p99 of 1 and N processes as deployed "
            f"({len(all_rounds[labels[0]])} rounds)"
        ),
        baseline=(
            "an empty FastAPI endpoint (reads the body, answers 202) under the same load, served "
            "the same way (same processes, same socket arrangement, same uvicorn settings), run "
            "just before each API run: p99 (median round) "
            + ", ".join(
                f"{runs[label][1]['p99_ms']} ms ({label.replace('N ', f'{n} ')})"
                for label in labels
            )
        ),
        limits=(
            f"one API process spends {server_ms} ms of CPU per 100-chunk request "
            f"({server_ms * one_api['rate_req_s'] / 10:.0f} % of a core at this rate), the "
            "empty endpoint a fraction of it; with one process a request waits for the one "
            "event loop, with N it waits less. The rest is waiting for Redis and PostgreSQL "
            "and for a CPU on 2 cores shared with the load generator, redis-server, PostgreSQL "
            "and whatever else the machine runs."
        ),
        notes=[
            f"{len(all_rounds[labels[0]])} rounds; in each, every column pair runs in turn "
            "(empty endpoint, then the API). The machine is shared (other jobs' tests run beside "
            "it): a round in which the machine stalled shows as a high p99 in both columns and "
            "a high 'client send lateness'; the ratio of the same round cancels part of it.",
            "Client: aiohttp, open loop, latency counted from each request's scheduled time "
            "(no coordinated omission); 'client send lateness' is how late the client started "
            f"a request, so a client that could not keep up would show there. {WARMUP_S:g} s "
            "of the same load before the measured window (connection pools grown).",
            "Shared socket: shield_orchestrator.api.processes.run_processes, as the service "
            "runs `orchestrator_api_processes` (uvicorn's own multiprocess manager, one "
            "listening socket). SO_REUSEPORT: N processes of "
            "shield_orchestrator.api.__main__.serve, each binding the port. Both with uvicorn, "
            "uvloop, httptools, no access log, prometheus-client multiprocess files on.",
        ],
    )


def server_settings(rs: RedisServer, pg: PostgresServer) -> dict[str, Any]:
    """The Settings fields that point the API at this run's servers (database DB)."""
    return {
        "redis_host": LOOPBACK, "redis_port": rs.port, "redis_password": rs.password,
        "postgres_host": LOOPBACK, "postgres_port": pg.port, "postgres_db": DB,
        "postgres_user": pg.user, "postgres_password": pg.password,
    }  # fmt: skip


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    rate = float(os.environ.get("BENCH_API_RATE", "100"))
    n_chunks = int(os.environ.get("BENCH_API_CHUNKS", "100"))
    n = int(os.environ.get("BENCH_API_PROCESSES", str(os.cpu_count() or 1)))
    rounds = int(os.environ.get("BENCH_API_ROUNDS", "3"))
    runs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {r[0]: [] for r in RUNS}
    with redis_server() as rs, postgres_server() as pg:
        asyncio.run(_migrate(pg.dsn("postgres"), pg.dsn(DB)))
        settings = server_settings(rs, pg)
        for round_no in range(1, rounds + 1):
            for label, mode, processes in RUNS:
                procs = processes or n
                empty = _measure("empty", mode, procs, settings, None, rate, seconds, n_chunks)
                api = _measure("api", mode, procs, settings, rs.url, rate, seconds, n_chunks)
                runs[label].append((api, empty))
                print(
                    f"bench_api: round {round_no}, {label} (N={n}): API p50 {api['p50_ms']} "
                    f"p99 {api['p99_ms']} ms, errors {api['errors'] or 0}; empty p50 "
                    f"{empty['p50_ms']} p99 {empty['p99_ms']} ms; ratio {_ratio(api, empty)}",
                    flush=True,
                )  # fmt: skip
    print(json.dumps(runs, indent=2))
    bench = benchmark(runs, n)
    if os.environ.get("BENCH_JSON"):
        result.write(Path(os.environ["BENCH_JSON"]), [bench])
    verdict = "met" if bench.goal_met else "NOT met"
    print(f"bench_api: goal (ratio <= {GOAL_RATIO:g} with 1 and N={n} processes as deployed, "
          f"0 errors): {verdict} (worst ratio {bench.ratio})")  # fmt: skip
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "serve":
        serve(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
