"""SSE benchmarks: 200 followers of one job's event stream while the job runs through a pool;
and 200 followers of 200 different jobs against one follower (the cost of a delivered event).

Run: ``SHIELD_RENDERED=build/rendered/default .venv/bin/python -m bench.bench_sse``
(env BENCH_SSE_FOLLOWERS, default 200; BENCH_SSE_RATE requests/s of the POST load, default 20;
BENCH_SSE_CHUNKS chunks per POST, default 10; BENCH_SSE_SECONDS the measured POST window,
default 15; BENCH_SSE_PROCESSES the API's processes, default this machine's CPUs, as
``orchestrator_api_processes``; BENCH_SSE_FANOUT_JOBS the fan-out's jobs and followers,
default 200; BENCH_JSON: also write the report format, bench/result.py).
``make bench BENCH_ONLY=sse``.

Setup: a real redis-server and PostgreSQL (tests/support/servers.py, migrated); the API as the
service runs it (bench/bench_api.py ``serve``: run_processes, N children on one socket,
prometheus-client multiprocess files on); one real worker process
(``python -m shield_orchestrator.workers``, engine ``noop``, pool size 32, progress flushed every
200 ms, as the acceptance tests run it). Two phases, in this order, each with a fresh followed
job of JOB_CHUNKS chunks that sleep JOB_CHUNK_SLEEP_S each in the noop engine (so the job runs
for about half a minute and writes a progress event per flush):

- without followers: the job runs; the POST load (``bench_api.load``, open loop, latency from
  each request's due time) measures the 202's p50/p99 while it runs;
- with followers: FOLLOWERS clients (a separate process, aiohttp, one connection each) open the
  job's ``events_url`` (``GET /events/stream?job_id=``) right after its 202, then the same POST
  load runs while they follow; each follower reads until the stream ends (after the terminal
  event).

Fan-out (the second benchmark, same run, same API and worker): two phases with the same work,
FANOUT_JOBS jobs of FANOUT_CHUNKS chunks sleeping FANOUT_SLEEP_S each, queued behind a blocker
job that holds the pool for FANOUT_BLOCK_S (so every stream opens while its job is queued):
one follower (of the middle job: it waits in the queue as long as the average follower), then
FANOUT_JOBS followers, one per job. Over each phase (from the first POST to the last job done
and every stream ended): events delivered per second, Redis's CPU (INFO cpu: used_cpu_user +
used_cpu_sys) and the time Redis spent in XREAD (INFO commandstats; only the followers call
XREAD here, the worker reads with XREADGROUP), per delivered event. The marginal Redis CPU
per delivered event = (Redis CPU with N followers - with 1) / (events delivered with N -
with 1): the workload is the same, so the difference is what the followers cost.

Delivery lag of an event to a follower = when the follower read it - the time in its stream
entry id (Redis's clock at XADD, same machine): counted for live events only (those written
after the follower's stream opened; the replayed history is not a delivery lag). The API's CPU
(all its processes, /proc) over each phase's POST window, and its RSS (sum over its processes,
sampled every 0.5 s: peak). Redis's CPU over the same window.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("SHIELD_RENDERED", "build/rendered/default"))

import aiohttp

from bench import result
from bench.bench_api import (
    API_KEY,
    DB,
    _cpu_s,
    _migrate,
    _pct,
    _run_servers,
    _tree,
    load,
    server_settings,
)
from tests.support.procs import worker_env
from tests.support.servers import LOOPBACK, free_port, postgres_server, redis_server

FOLLOWERS = int(os.environ.get("BENCH_SSE_FOLLOWERS", "200"))
RATE = float(os.environ.get("BENCH_SSE_RATE", "20"))
CHUNKS = int(os.environ.get("BENCH_SSE_CHUNKS", "10"))
SECONDS = float(os.environ.get("BENCH_SSE_SECONDS", "15"))
JOB_CHUNKS = 640
JOB_CHUNK_SLEEP_S = 1.5  # 640 x 1.5 s / pool 32: about 30 s of the job
POOL_SIZE = 32
HEADERS = {"X-API-Key": API_KEY}
TERMINAL = {"ingestion.completed", "ingestion.failed"}
REDIS_MAX_CONNECTIONS = 256  # api/app.py: per process; each open SSE stream holds one
FANOUT_JOBS = int(os.environ.get("BENCH_SSE_FANOUT_JOBS", "200"))
FANOUT_CHUNKS = 5
FANOUT_SLEEP_S = 0.5  # 200 x 5 x 0.5 s / pool 32: about 16 s of work
FANOUT_BLOCK_S = 6.0  # the blocker's chunks: every follower's stream opens meanwhile


def _job_body(n_chunks: int = JOB_CHUNKS, sleep_s: float = JOB_CHUNK_SLEEP_S) -> bytes:
    chunks = [
        {"text": f"Followed chunk {i}.", "source_uri": f"bench://followed/{time.time_ns()}/{i}",
         "metadata": {"noop_sleep_s": sleep_s}}
        for i in range(n_chunks)
    ]  # fmt: skip
    return json.dumps({"chunks": chunks, "source_type": "bench"}).encode()


async def _submit_job(
    base: str, n_chunks: int = JOB_CHUNKS, sleep_s: float = JOB_CHUNK_SLEEP_S
) -> str:
    headers = {**HEADERS, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession(base) as session,
        session.post(
            "/lightrag/ingest-async", data=_job_body(n_chunks, sleep_s), headers=headers
        ) as r,
    ):
        answer = await r.json()
        assert r.status == 202, answer
        return str(answer["job_id"])


async def _wait_job(base: str, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(base) as session:
        while time.monotonic() < deadline:
            async with session.get(f"/jobs/{job_id}", headers=HEADERS) as r:
                job = await r.json()
            if job.get("status") in ("completed", "completed_with_errors", "failed"):
                return dict(job)
            await asyncio.sleep(0.5)
    raise RuntimeError(f"bench_sse: job {job_id} not done in {timeout_s} s")


# --- the followers (their own process: `python -m bench.bench_sse follow BASE JOB N OUT`) ---
async def _follow_one(session: aiohttp.ClientSession, job_id: str, out: dict[str, Any]) -> None:
    opened = time.time()
    deliveries: list[tuple[str, float]] = []  # (event id, read at)
    event = ""
    async with session.get("/events/stream", params={"job_id": job_id}, headers=HEADERS) as r:
        out["status"] = r.status
        opened = time.time()
        current_id = ""
        async for raw in r.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("id:"):
                current_id = line[3:].strip()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line == "" and current_id:
                deliveries.append((current_id, time.time()))
                out["last_event"] = event
                current_id = ""
    out["opened"] = opened
    out["deliveries"] = deliveries


async def _follow_all(base: str, job_ids: list[str]) -> list[dict[str, Any]]:
    outs: list[dict[str, Any]] = [{} for _ in job_ids]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600, sock_read=120)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
        tasks = [
            _follow_one(session, job_id, out) for job_id, out in zip(job_ids, outs, strict=True)
        ]
        done = await asyncio.gather(*tasks, return_exceptions=True)
    for out, outcome in zip(outs, done, strict=True):
        if isinstance(outcome, BaseException):
            out["error"] = repr(outcome)
    return outs


def follow_main(base: str, job_ids: list[str], out_path: str) -> None:
    """Follow each of ``job_ids`` on its own connection (one id may repeat)."""
    started = time.process_time()
    outs = asyncio.run(_follow_all(base, job_ids))
    Path(out_path).write_text(
        json.dumps({"followers": outs, "cpu_s": time.process_time() - started})
    )


# --- measuring -----------------------------------------------------------------------------
def _rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


async def _sample_rss(pids: list[int], stop: asyncio.Event, peaks: list[int]) -> None:
    while not stop.is_set():
        peaks.append(_rss_kib(_tree(pids)))
        await asyncio.sleep(0.5)


async def _phase(base: str, api_pids: list[int], redis_pid: int, followers: int) -> dict[str, Any]:
    """One phase: a fresh followed job, ``followers`` followers of it, the POST load."""
    job_id = await _submit_job(base)
    follower_proc = None
    out_path = Path(tempfile.mkdtemp(prefix="bench-sse-")) / "followers.json"
    if followers:
        follower_proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bench_sse", "follow", base, ",".join([job_id] * followers),
            str(out_path),
        )  # fmt: skip
        await asyncio.sleep(3)  # every follower connected (and replayed the history)
    stop, rss = asyncio.Event(), list[int]()
    sampler = asyncio.create_task(_sample_rss(api_pids, stop, rss))
    pids = _tree(api_pids)
    cpu0, redis0, t0 = _cpu_s(pids), _cpu_s([redis_pid]), time.perf_counter()
    posts = await load(base, None, RATE, SECONDS, CHUNKS, api_pids)
    cpu1, redis1, window = _cpu_s(_tree(api_pids)), _cpu_s([redis_pid]), time.perf_counter() - t0
    stop.set()
    await sampler
    job = await _wait_job(base, job_id)
    phase: dict[str, Any] = {
        "followers": followers, "job": job, "posts": posts, "window_s": round(window, 1),
        "api_cpu_cores": round((sum(cpu1 or (0, 0)) - sum(cpu0 or (0, 0))) / window, 3),
        "redis_cpu_cores": round((sum(redis1 or (0, 0)) - sum(redis0 or (0, 0))) / window, 3),
        "api_rss_peak_mib": round(max(rss, default=0) / 1024, 1),
    }  # fmt: skip
    if follower_proc is not None:
        assert await asyncio.wait_for(follower_proc.wait(), 120) == 0, "followers failed"
        phase |= _deliveries(json.loads(out_path.read_text()))
    return phase


def _id_time(event_id: str) -> float:
    return int(event_id.split("-", 1)[0]) / 1000


def _deliveries(data: dict[str, Any]) -> dict[str, Any]:
    outs = data["followers"]
    lags: list[float] = []
    per_follower_p99: list[float] = []
    counts = []
    for out in outs:
        mine = [now - _id_time(i) for i, now in out.get("deliveries", [])
                if _id_time(i) >= out.get("opened", 0)]  # fmt: skip
        lags += mine
        per_follower_p99.append(_pct(mine, 0.99))
        counts.append(len(out.get("deliveries", [])))
    return {
        "statuses": sorted({out.get("status") for out in outs}, key=str),
        "errors": [out["error"] for out in outs if "error" in out][:5],
        "ended_after_terminal": sum(out.get("last_event") in TERMINAL for out in outs),
        "events_per_follower": sorted(set(counts)),
        "deliveries": sum(counts),
        "live_deliveries": len(lags),
        "lag_p50_ms": _pct(lags, 0.50),
        "lag_p99_ms": _pct(lags, 0.99),
        "lag_max_ms": round(1000 * max(lags, default=float("nan")), 1),
        "worst_follower_p99_ms": max(per_follower_p99, default=float("nan")),
        "followers_cpu_s": round(data["cpu_s"], 2),
    }


def _fit(n: int, processes: int) -> list[str]:
    """What bounds the number of SSE streams, and whether FOLLOWERS fit."""
    from shield_orchestrator.api.config import ApiConfig

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = ApiConfig().limit_concurrency
    return [
        f"{n} followers fit: each process takes at most {limit} connections "
        f"(orchestrator_api_limit_concurrency; beyond: 503) and {REDIS_MAX_CONNECTIONS} Redis "
        "connections (api/app.py; an SSE stream holds one while its XREAD blocks; beyond: 503 "
        f"for Redis), so even all {n} streams on one of the {processes} processes fit, with "
        f"{REDIS_MAX_CONNECTIONS - n} Redis connections left for the POSTs it serves meanwhile; "
        f"this machine's `ulimit -n` is {soft} (hard {hard}), the unit's LimitNOFILE is "
        f"limit_concurrency + 1024 = {limit + 1024} per process.",
    ]


def _errors(posts: dict[str, Any]) -> str:
    return json.dumps(posts["errors"]) if posts["errors"] else "none"


def benchmark(without: dict[str, Any], with_: dict[str, Any], processes: int) -> result.Benchmark:
    p_without, p_with = without["posts"], with_["posts"]
    ratio = round(p_with["p99_ms"] / p_without["p99_ms"], 2)
    complete = (
        with_["ended_after_terminal"] == FOLLOWERS
        and with_["statuses"] == [200]
        and not with_["errors"]
        and len(with_["events_per_follower"]) == 1
        and not p_with["errors"] and not p_without["errors"]
    )  # fmt: skip

    def row(label: str, key: str, source: str = "posts") -> list[result.Cell]:
        return [label, without[source].get(key) if source else without.get(key),
                with_[source].get(key) if source else with_.get(key)]  # fmt: skip

    rows: list[list[result.Cell]] = [
        ["followers of the running job", 0, FOLLOWERS],
        ["POST 202 p99 with ÷ without followers", None, ratio],
        row("POST 202 latency p50 (ms)", "p50_ms"),
        row("POST 202 latency p99 (ms)", "p99_ms"),
        [
            "POST requests sent / 202 accepted",
            f"{p_without['requests']} / {p_without['accepted']}",
            f"{p_with['requests']} / {p_with['accepted']}",
        ],
        ["POST errors", _errors(p_without), _errors(p_with)],
        ["delivery lag p50, live events, all followers (ms)", None, with_["lag_p50_ms"]],
        ["delivery lag p99, live events, all followers (ms)", None, with_["lag_p99_ms"]],
        ["delivery lag max (ms)", None, with_["lag_max_ms"]],
        ["worst single follower's lag p99 (ms)", None, with_["worst_follower_p99_ms"]],
        [
            "events per follower (every follower the same)",
            None,
            "/".join(str(c) for c in with_["events_per_follower"]),
        ],
        [
            "followers whose stream ended after the terminal event",
            None,
            f"{with_['ended_after_terminal']} / {FOLLOWERS}",
        ],
        ["events delivered (live)", None, f"{with_['deliveries']} ({with_['live_deliveries']})"],
        row("API CPU over the POST window (cores, all processes)", "api_cpu_cores", ""),
        row("API RSS peak (MiB, all processes)", "api_rss_peak_mib", ""),
        row("Redis CPU over the POST window (cores)", "redis_cpu_cores", ""),
        row("POST window (s)", "window_s", ""),
        row("job chunks processed", "chunks_processed", "job"),
        ["followers' client CPU (s, own process)", None, with_["followers_cpu_s"]],
    ]
    return result.Benchmark(
        key="sse",
        title=f"SSE: {FOLLOWERS} followers of one job's event stream while it runs through a pool",
        goal=(
            f"{FOLLOWERS} followers of one running job each receive every event and the end "
            "(no 503: they fit the API's connection and Redis pool bounds); report their "
            "delivery lag p50/p99, the API's CPU and RSS, and the POST 202 p99 with and without "
            "them"
        ),
        columns=["measure", "without followers", f"with {FOLLOWERS} followers"],
        rows=rows,
        goal_met=complete,
        ratio=ratio,
        ratio_label=f"POST 202 p99 with {FOLLOWERS} followers ÷ without (same run)",
        baseline=(
            f"the same POST load ({RATE:g} requests/s × {CHUNKS} chunks, {SECONDS:g} s) against "
            f"the same API ({processes} processes, one socket) while an identical job runs "
            "through the same pool, with no follower, run just before"
        ),
        limits=(
            "2 shared cores carry the API, the followers' client process, the POST load "
            "generator, the worker, redis-server and PostgreSQL: a follower's lag includes "
            "waiting for a CPU on the client side too (its process's CPU is in the table)."
        ),
        notes=[
            f"Followed job: {JOB_CHUNKS} chunks sleeping {JOB_CHUNK_SLEEP_S:g} s each in the "
            f"noop engine, one worker process with pool size {POOL_SIZE}, progress flushed every "
            "200 ms (one ingestion.progress event per flush), so the stream carries queued, "
            "started, a progress event per flush, completed.",
            "Followers connect right after the job's 202 and replay its history first; lag is "
            "counted for live events only (entry id time >= the follower's stream opening): "
            "read time minus the time in the stream entry id (Redis's clock, same machine).",
            *_fit(FOLLOWERS, processes),
            "One round of each phase (without, then with), run once; the machine is shared.",
        ],
    )


# --- fan-out: N followers of N different jobs against one follower -------------------------
async def _redis_counters(redis: Any) -> dict[str, float]:
    """Redis's CPU seconds (user + sys) and its XREAD calls and microseconds so far."""
    cpu, stats = await redis.info("cpu"), await redis.info("commandstats")
    xread = stats.get("cmdstat_xread", {"calls": 0, "usec": 0})
    return {
        "cpu_s": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        "xread_calls": float(xread["calls"]),
        "xread_usec": float(xread["usec"]),
    }


async def _fanout_phase(
    base: str, api_pids: list[int], redis: Any, followers: int
) -> dict[str, Any]:
    """FANOUT_JOBS jobs behind a blocker; ``followers`` of them followed (1: the middle one)."""
    blocker = await _submit_job(base, POOL_SIZE, FANOUT_BLOCK_S)
    pids = _tree(api_pids)
    api0, redis0, t0 = _cpu_s(pids), await _redis_counters(redis), time.perf_counter()
    gate = asyncio.Semaphore(16)

    async def submit() -> str:
        async with gate:
            return await _submit_job(base, FANOUT_CHUNKS, FANOUT_SLEEP_S)

    jobs = list(await asyncio.gather(*(submit() for _ in range(FANOUT_JOBS))))
    followed = jobs if followers == len(jobs) else [jobs[len(jobs) // 2]] * followers
    out_path = Path(tempfile.mkdtemp(prefix="bench-sse-fanout-")) / "followers.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_sse", "follow", base, ",".join(followed), str(out_path)
    )
    assert await asyncio.wait_for(proc.wait(), 300) == 0, "fan-out followers failed"
    done = [await _wait_job(base, job) for job in [blocker, *jobs]]
    api1, redis1 = _cpu_s(_tree(api_pids)), await _redis_counters(redis)
    window = time.perf_counter() - t0
    data = json.loads(out_path.read_text())
    outs = data["followers"]
    delivered = sum(len(out.get("deliveries", [])) for out in outs)
    return {
        "followers": followers,
        "window_s": round(window, 1),
        "delivered": delivered,
        "delivered_per_s": round(delivered / window, 1),
        "ended_after_terminal": sum(out.get("last_event") in TERMINAL for out in outs),
        "statuses": sorted({out.get("status") for out in outs}, key=str),
        "errors": [out["error"] for out in outs if "error" in out][:5],
        "jobs_completed": sum(job.get("status") == "completed" for job in done),
        "redis_cpu_s": round(redis1["cpu_s"] - redis0["cpu_s"], 3),
        "xread_calls": int(redis1["xread_calls"] - redis0["xread_calls"]),
        "xread_usec": int(redis1["xread_usec"] - redis0["xread_usec"]),
        "api_cpu_s": round(sum(api1 or (0, 0)) - sum(api0 or (0, 0)), 2),
        "followers_cpu_s": round(data["cpu_s"], 2),
    }


def _per_event(phase: dict[str, Any], key: str, scale: float) -> float | None:
    return round(scale * phase[key] / phase["delivered"], 2) if phase["delivered"] else None


def fanout_benchmark(one: dict[str, Any], many: dict[str, Any]) -> result.Benchmark:
    extra = many["delivered"] - one["delivered"]
    marginal_redis = round(1e6 * (many["redis_cpu_s"] - one["redis_cpu_s"]) / extra, 1)
    marginal_api = round(1e6 * (many["api_cpu_s"] - one["api_cpu_s"]) / extra, 1)
    xread_one, xread_many = _per_event(one, "xread_usec", 1), _per_event(many, "xread_usec", 1)
    ratio = round(xread_many / xread_one, 2) if xread_one and xread_many else float("nan")
    complete = all(
        p["ended_after_terminal"] == p["followers"] and p["statuses"] == [200]
        and not p["errors"] and p["jobs_completed"] == FANOUT_JOBS + 1
        for p in (one, many)
    )  # fmt: skip

    def row(label: str, key: str) -> list[result.Cell]:
        return [label, one[key], many[key]]

    rows: list[list[result.Cell]] = [
        ["followers (each of its own job; one: of the middle job)", 1, many["followers"]],
        row("events delivered", "delivered"),
        row("events delivered per second (over the phase)", "delivered_per_s"),
        row("phase (s: first POST to last job done, every stream ended)", "window_s"),
        [
            "followers whose stream ended after the terminal event",
            f"{one['ended_after_terminal']} / 1",
            f"{many['ended_after_terminal']} / {many['followers']}",
        ],
        row("Redis CPU over the phase (s, INFO cpu user + sys)", "redis_cpu_s"),
        [
            "marginal Redis CPU per delivered event (µs: Δ CPU ÷ Δ events, N vs 1)",
            None,
            marginal_redis,
        ],
        row("XREAD calls (INFO commandstats; the followers' reads)", "xread_calls"),
        [
            "XREAD calls per delivered event",
            _per_event(one, "xread_calls", 1),
            _per_event(many, "xread_calls", 1),
        ],
        ["Redis time in XREAD per delivered event (µs)", xread_one, xread_many],
        row("API CPU over the phase (s, all processes)", "api_cpu_s"),
        ["marginal API CPU per delivered event (µs, N vs 1)", None, marginal_api],
        row("followers' client CPU (s, own process)", "followers_cpu_s"),
        row("jobs completed (with the blocker)", "jobs_completed"),
    ]
    return result.Benchmark(
        key="sse_fanout",
        title=(
            f"SSE: {many['followers']} followers of {many['followers']} different jobs against "
            "one follower (cost per delivered event)"
        ),
        goal=(
            "no follower reads other jobs' events: Redis's cost per delivered event is flat in "
            f"the number of followers (1 vs {many['followers']}, each following its own job)"
        ),
        columns=["measure", "1 follower", f"{many['followers']} followers"],
        rows=rows,
        goal_met=complete,
        ratio=ratio,
        ratio_label=(
            f"Redis time in XREAD per delivered event, {many['followers']} followers ÷ 1 "
            "(same run, same work)"
        ),
        baseline=(
            f"the same work ({FANOUT_JOBS} jobs × {FANOUT_CHUNKS} chunks sleeping "
            f"{FANOUT_SLEEP_S:g} s behind a blocker) with one follower, run just before"
        ),
        limits=(
            "2 shared cores carry the API, the followers' process, the worker, redis-server and "
            "PostgreSQL; INFO cpu counts every command of the phase (the worker's writes too), "
            "so the per-event comparison is XREAD's own time and the marginal CPU."
        ),
        notes=[
            f"Each phase: a blocker job ({POOL_SIZE} chunks × {FANOUT_BLOCK_S:g} s, the pool's "
            f"size) first, then {FANOUT_JOBS} jobs of {FANOUT_CHUNKS} chunks × "
            f"{FANOUT_SLEEP_S:g} s (16 POSTs at a time), then the followers open their jobs' "
            "events_url while the jobs are queued and read until the stream ends; the phase "
            "ends when every job is done.",
            "A follower reads its job's own stream (XREAD BLOCK on one key): an idle follower "
            "costs an XREAD per block timeout (1 s), a delivered event one XREAD reply (or "
            "part of one, when several events are waiting).",
            "Redis's CPU per delivered event: INFO cpu over a phase counts the jobs' own "
            "writes too (the same in both phases), so the followers' cost is the difference "
            "between the phases over the difference in events delivered (one follower's few "
            "events are below that counter's noise); XREAD's own time (INFO commandstats) is "
            "measured for each phase alone. The marginal figure also holds what each follower "
            "costs once, whatever its events: its Redis connection (AUTH, CLIENT SETNAME/SETINFO), "
            "the EVAL that opens its job's stream, its reply writes.",
            "One round of each phase, run once; the machine is shared.",
        ],
    )


async def _run(
    base: str, api_pids: list[int], redis_pid: int, redis_url: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    from redis.asyncio import Redis

    without = await _phase(base, api_pids, redis_pid, 0)
    print(f"bench_sse: without followers: POST p99 {without['posts']['p99_ms']} ms", flush=True)
    with_ = await _phase(base, api_pids, redis_pid, FOLLOWERS)
    print(f"bench_sse: with {FOLLOWERS}: POST p99 {with_['posts']['p99_ms']} ms, lag p50 "
          f"{with_['lag_p50_ms']} p99 {with_['lag_p99_ms']} ms", flush=True)  # fmt: skip
    redis = Redis.from_url(redis_url)
    try:
        one = await _fanout_phase(base, api_pids, redis, 1)
        print(f"bench_sse: fan-out, 1 follower: {one}", flush=True)
        many = await _fanout_phase(base, api_pids, redis, FANOUT_JOBS)
        print(f"bench_sse: fan-out, {FANOUT_JOBS} followers: {many}", flush=True)
    finally:
        await redis.aclose()
    return without, with_, one, many


def main() -> int:
    processes = int(os.environ.get("BENCH_SSE_PROCESSES", str(os.cpu_count() or 1)))
    rendered = Path(os.environ.get("SHIELD_RENDERED", "build/rendered/default"))
    with redis_server() as rs, postgres_server() as pg, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_migrate(pg.dsn("postgres"), pg.dsn(DB)))
        settings = server_settings(rs, pg)
        params = {"app": "api", "mode": "shared", "processes": processes, "port": free_port(),
                  "settings": settings}  # fmt: skip
        metrics_dir = tempfile.mkdtemp(prefix="bench-sse-metrics-")
        env = worker_env(rendered.resolve(), rs, pg, DB, POOL_SIZE=str(POOL_SIZE),
                         BATCH_SIZE=str(POOL_SIZE))  # fmt: skip
        worker_log = Path(tmp) / "worker.log"
        with worker_log.open("wb") as log:
            import subprocess

            worker = subprocess.Popen([sys.executable, "-m", "shield_orchestrator.workers", "1"],
                                      env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        servers = _run_servers(params, metrics_dir)
        try:
            base = f"http://{LOOPBACK}:{params['port']}"
            assert rs.proc is not None
            without, with_, one, many = asyncio.run(
                _run(base, [s.pid for s in servers], rs.proc.pid, rs.url)
            )
        finally:
            for proc in [*servers, worker]:
                proc.terminate()
            for proc in [*servers, worker]:
                proc.wait(30)
    print(json.dumps({"without": without, "with": with_, "fanout_one": one, "fanout_many": many},
                     indent=2, default=str))  # fmt: skip
    bench = benchmark(without, with_, processes)
    fanout = fanout_benchmark(one, many)
    if os.environ.get("BENCH_JSON"):
        result.write(Path(os.environ["BENCH_JSON"]), [bench, fanout])
    print(f"bench_sse: every follower got every event and the end: {bench.goal_met}; "
          f"POST p99 with/without followers {bench.ratio}")  # fmt: skip
    print(f"bench_sse: fan-out complete: {fanout.goal_met}; XREAD time per delivered event "
          f"{FANOUT_JOBS} followers / 1: {fanout.ratio}")  # fmt: skip
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "follow":
        follow_main(sys.argv[2], sys.argv[3].split(","), sys.argv[4])
    else:
        sys.exit(main())
