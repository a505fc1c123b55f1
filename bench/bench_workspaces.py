"""Workspaces benchmark (issue 15): throughput against the workspaces that can run at once,
and the hand-over time after an owner is SIGKILLed.

    python -m bench.bench_workspaces      # with BENCH_JSON set (make bench), also writes results

One redis-server and one PostgreSQL cluster on loopback (tests/support/servers.py). The worker
processes are the rendered package's (SHIELD_RENDERED), copied into a temporary root with the
rendered constants this benchmark varies set as the playbook renders them (one knob per line,
``NAME = {{ var | filter }}``): ``DECLARED_WORKSPACES`` (orchestrator_workspaces: w1..w4),
``WORKSPACES_PER_PROCESS`` (orchestrator_workers_workspaces_per_process),
``WORKSPACE_LOCK_TTL_S`` (3 s, as the acceptance test), ``VECTOR_STORAGE`` (``file``: Milvus
Lite allows one process per host; NanoVectorDB files are per workspace) and ``WORKING_DIR``.

1. throughput: 4 workspaces x BENCH_WORKSPACES_N chunks (default 2,000) put on their streams
   by the API's producer (JobRegistry.create, jobs of 1,000) once the processes have split the
   workspaces; 1, 2 and 4 worker processes; per process at most 1 or 2 workspaces. A workspace
   no process can own waits (its chunks stay queued, nothing is read or dropped), so the rate
   is the served workspaces' chunks over the time until their jobs completed, and it should
   follow min(processes x per process, workspaces) x one workspace's rate.
   - sleeping engine: ``python -m bench.bench_workspaces INSTANCE`` with BENCH_WORKSPACES_ROLE
     set is the real worker entry (shield_orchestrator.workers) whose engine is the noop
     engine sleeping SLEEP_S per chunk wrapped in the workspace's real Redis lease
     (engines/workspace_lock.WorkspaceLock, fleet-wide as with PostgreSQL storages), and whose
     process counts it as a single writer (factory.SINGLE_WRITER + "noop"), so the pool
     owns, spreads and hands over workspaces exactly as with the in-process LightRAG engines.
     Pool size POOL per workspace: one workspace's bound is POOL / SLEEP_S chunks/s.
   - offline engine: ``python -m shield_orchestrator.workers`` unchanged (engine ``offline``,
     PostgreSQL KV/doc status/graph + file vectors, the rendered pool settings),
     BENCH_WORKSPACES_OFFLINE_N chunks per workspace (default 40: about 1 chunk/s here under
     load) of bench_growth's corpus, 1 workspace per process.
     CPU-bound: the rate stops at the cores.
   Each workspace's chunks must reach only its own engine: the sleeping engine counts in Redis
   the chunks each workspace's engine got, by the chunk's workspace; for the offline engine
   LightRAG's lightrag_doc_status rows of each workspace are exactly that workspace's jobs'
   documents. Counts are exact (processed = N, failed 0, nothing dead-lettered).
2. hand-over: one workspace, per process 1, the sleeping engine under load; a fresh standby is
   started, then the owner SIGKILLed: the time from the SIGKILL until the new owner's engine
   starts processing the workspace's next chunk (its first process() call, recorded in Redis
   by the engine), BENCH_WORKSPACES_SAMPLES times (default 5). Goal <= TTL + 2 s. The job then
   completes with exact counts (the dead owners' in-flight chunks counted once).

BENCH_WORKSPACES_ONLY=sleep,offline,handover runs some of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

N = int(os.environ.get("BENCH_WORKSPACES_N", "2000"))
OFFLINE_N = int(os.environ.get("BENCH_WORKSPACES_OFFLINE_N", "40"))
SAMPLES = int(os.environ.get("BENCH_WORKSPACES_SAMPLES", "5"))
ONLY = {p for p in os.environ.get("BENCH_WORKSPACES_ONLY", "sleep,offline,handover").split(",")}
ROLE = "BENCH_WORKSPACES_ROLE"  # set in a worker process of this module
WORKSPACES = ("w1", "w2", "w3", "w4")
PROCS = (1, 2, 4)
PER_PROCESS = (1, 2)
SLEEP_S = 0.1
POOL = 8
TTL_S = 3  # the lease TTL of every tree here (the acceptance test's)
GOAL_BOUND = 0.8  # sleeping engine: achieved / bound per cell
JOB_CHUNKS = 1000
SETTLE_S = 180.0  # processes started and the workspaces split
STALL_S = 180.0  # no chunk finished for this long: the cell failed
CALLS = "bench:workspaces:calls:"  # + engine's workspace: hash chunk's workspace -> process calls
FIRST = "bench:workspaces:first:"  # + workspace: hash instance -> epoch of its first process()


# --- the sleeping engine under the workspace lease (worker side) ----------------------------


class LeasedSleepEngine:
    """The noop engine sleeping per chunk, holding its workspace's Redis lease while started
    (like engines/lightrag_inproc.LightRAGEngine), counting in Redis what it processed."""

    name = "noop"
    label = "noop engine sleeping under the workspace lease (bench/bench_workspaces.py)"

    def __init__(self, config: Any, delay_s: float) -> None:
        from shield_orchestrator.engines.noop import NoopEngine

        self.config = config
        self.inner = NoopEngine(delay_s=delay_s)
        self.max_concurrency = self.inner.max_concurrency
        self._redis: Any = None
        self._lock: Any = None
        self._first = False

    @property
    def lease_lost(self) -> bool:
        return self._lock is not None and self._lock.lost.is_set()

    async def start(self) -> None:
        import redis.asyncio as aioredis
        from shield_orchestrator.engines.workspace_lock import WorkspaceLock, lease_host

        c = self.config
        self._redis = aioredis.Redis.from_url(c.redis_url)
        self._lock = WorkspaceLock(
            self._redis, c.workspace, c.workspace_lock_ttl_s, host=lease_host(True, c.host),
            owner=f"{c.host or socket.gethostname()}:{c.lock_owner}",
        )  # fmt: skip
        try:
            await self._lock.acquire(c.lock_wait_s())
        except BaseException:
            await self._redis.aclose()
            self._lock = self._redis = None
            raise

    async def close(self) -> None:
        if self._lock is not None:
            await self._lock.release()
            await self._redis.aclose()
            self._lock = self._redis = None

    async def process(self, chunk: Any) -> Any:
        from shield_orchestrator.engines.base import ChunkError

        if self.lease_lost:
            raise ChunkError(f"workspace {self.config.workspace!r}: lease lost")
        if not self._first:
            self._first = True
            await self._redis.hsetnx(
                FIRST + self.config.workspace, self.config.lock_owner, repr(time.time())
            )
        out = await self.inner.process(chunk)
        await self._redis.hincrby(CALLS + self.config.workspace, chunk.workspace, 1)
        return out

    async def delete(self, request: Any) -> Any:
        return await self.inner.delete(request)

    async def query(self, q: Any) -> Any:
        return await self.inner.query(q)


def sleep_worker(argv: Sequence[str]) -> int:
    """``python -m shield_orchestrator.workers`` with the leased sleeping engine."""
    from shield_orchestrator.engines.config import EngineConfig
    from shield_orchestrator.workers import __main__ as entry

    def create(
        settings: Any, workspace: str | None = None, lease_wait_s: float | None = None
    ) -> Any:
        chosen: dict[str, Any] = {}
        if workspace is not None:
            chosen["workspace"] = workspace
        if lease_wait_s is not None:
            chosen["workspace_lock_wait_s"] = lease_wait_s
        delay = settings.worker_overrides.get("noop_delay_ms", 0) / 1000.0
        return LeasedSleepEngine(EngineConfig.from_settings(settings, **chosen), delay)

    entry.SINGLE_WRITER = entry.SINGLE_WRITER | {"noop"}  # type: ignore[attr-defined]
    entry.create_engine = create  # type: ignore[assignment]
    return int(entry.main(list(argv)))


# --- the package under test ----------------------------------------------------------------


def set_constant(path: Path, name: str, value: str) -> None:
    """Replace the rendered value of ``NAME = value  # comment`` (exactly one such line)."""
    lines = path.read_text().splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.startswith(f"{name} = ")]
    if len(hits) != 1:
        raise RuntimeError(f"{path}: {len(hits)} lines render {name}, expected 1")
    line = lines[hits[0]]
    comment = line[line.index("  #") :] if "  #" in line else "\n"
    lines[hits[0]] = (
        f"{name} = {value}{comment if comment.endswith(chr(10)) else comment + chr(10)}"
    )
    path.write_text("".join(lines))


def variant_tree(
    rendered: Path, dest: Path, workspaces: Sequence[str], per_process: int, workdir: Path
) -> Path:
    """A copy of the rendered package with the workspaces, per-process cap, lease TTL, file
    vectors and working dir of this benchmark (the playbook's rendering of those values)."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(rendered, dest, ignore=shutil.ignore_patterns("__pycache__"))
    pkg = dest / "shield_orchestrator"
    declared = json.dumps([{"name": w} for w in workspaces])
    set_constant(pkg / "keys.py", "DECLARED_WORKSPACES", declared)
    set_constant(pkg / "workers" / "defaults.py", "WORKSPACES_PER_PROCESS", str(per_process))
    set_constant(pkg / "engines" / "config.py", "WORKSPACE_LOCK_TTL_S", str(TTL_S))
    set_constant(pkg / "engines" / "config.py", "VECTOR_STORAGE", '"file"')
    set_constant(pkg / "engines" / "config.py", "STORAGE", '"postgres"')
    set_constant(pkg / "engines" / "config.py", "WORKING_DIR", json.dumps(str(workdir)))
    return dest


# --- measurement ------------------------------------------------------------------------------


@dataclass
class Cell:
    engine: str
    procs: int
    per_process: int
    served: list[str]
    chunks: int = 0
    seconds: float = 0.0
    load: float = 0.0
    waiting_ok: bool = False  # unserved workspaces: every chunk still queued, none read
    routing: dict[str, dict[str, int]] = field(default_factory=dict)  # engine ws -> chunk ws -> n
    processed: dict[str, int] = field(default_factory=dict)  # served workspace -> job counts

    @property
    def rate(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0


@dataclass
class Handover:
    samples: list[float] = field(default_factory=list)
    chunks: int = 0
    processed: int = 0
    failed: int = 0
    seen: int = 0
    dead: int = 0
    pending: int = 0


def sample_text(workspace: str, i: int) -> str:
    from bench.bench_growth import text

    return text(i)


async def enqueue(
    redis: Any, pg_dsn: str, workspace: str, n: int, text: Callable[[str, int], str]
) -> list[str]:
    """n chunks for ``workspace`` through the API's producer, in jobs of JOB_CHUNKS."""
    import asyncpg
    from shield_orchestrator.services.job_registry import JobRegistry, NewChunk, NewJob

    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    ids = []
    try:
        registry = JobRegistry(redis, pool, max_queue_pending=10**9, idempotency_ttl_s=60)
        for start in range(0, n, JOB_CHUNKS):
            chunks = [
                NewChunk(text(workspace, i), f"bench://{workspace}/{workspace}-{i}")
                for i in range(start, min(start + JOB_CHUNKS, n))
            ]
            ids.append((await registry.create(NewJob(chunks, "text", workspace))).job_id)
    finally:
        await pool.close()
    return ids


async def owners(redis: Any, interval_s: float = 1.0) -> dict[str, list[str]]:
    """Live processes (fresh heartbeats) -> the workspaces each serves."""
    from shield_orchestrator.services.heartbeat import read_workers

    fresh = time.time() - 3 * interval_s
    return {
        b.consumer: sorted(b.workspaces) for b in await read_workers(redis) if b.last_seen >= fresh
    }


async def _settled(redis: Any, procs: int, expect: int, workers: Any) -> dict[str, list[str]]:
    deadline = time.monotonic() + SETTLE_S
    while True:
        found = await owners(redis)
        counts = [len(w) for w in found.values()]
        if len(found) == procs and sum(counts) == expect and max(counts) - min(counts) <= 1:
            await asyncio.sleep(2.0)  # no release in flight: still the same a moment later
            if await owners(redis) == found:
                return found
        if any(not w.running() for w in workers.started) or time.monotonic() > deadline:
            raise RuntimeError(f"{procs} processes did not split the workspaces: {found}\n"
                               + workers.logs())  # fmt: skip
        await asyncio.sleep(0.2)


async def _job_counts(redis: Any, job_ids: list[str]) -> tuple[int, int, set[str]]:
    from shield_orchestrator import keys

    done = failed = 0
    states = set()
    for j in job_ids:
        h = await redis.hgetall(keys.job(j))
        done += int(h.get("chunks_processed", 0))
        failed += int(h.get("chunks_failed", 0))
        states.add(h.get("status", ""))
    return done, failed, states


async def _until_completed(redis: Any, job_ids: list[str], workers: Any) -> None:
    last, quiet_since = -1, time.monotonic()
    while True:
        done, failed, states = await _job_counts(redis, job_ids)
        if states == {"completed"}:
            return
        if failed:
            raise RuntimeError(f"{failed} chunks failed\n" + workers.logs())
        if done != last:
            last, quiet_since = done, time.monotonic()
        elif time.monotonic() - quiet_since > STALL_S:
            raise RuntimeError(f"stalled at {done} chunks\n" + workers.logs())
        await asyncio.sleep(0.05)


def _base_env(engine: str) -> dict[str, str]:
    env = {
        "SHIELD_ENGINE": engine,
        "SHIELD_WORKER_METRICS_PORT": "0",
        "SHIELD_WORKER_HOST": "bench",
        "SHIELD_WORKER_HEALTH_CHECK_INTERVAL_S": "1",
        "SHIELD_WORKER_MAX_TASKS_PER_CHILD": "0",
        "SHIELD_WORKER_JOB_STATUS_TTL_S": "86400",
    }
    if engine == "noop":  # the sleeping engine
        env |= {
            "SHIELD_WORKER_POOL_SIZE": str(POOL),
            "SHIELD_WORKER_BATCH_SIZE": str(POOL),
            "SHIELD_WORKER_NOOP_DELAY_MS": str(int(SLEEP_S * 1000)),
            ROLE: "worker",
        }
    return env


async def _doc_rows(pg_dsn: str) -> dict[str, set[str]]:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetch(
            "SELECT workspace, id FROM lightrag_doc_status WHERE status = 'processed'"
        )
    finally:
        await conn.close()
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(str(r["workspace"]), set()).add(str(r["id"]))
    return out


async def throughput_cell(
    engine: str, tree: Path, servers: tuple[Any, Any, str], procs: int, per_process: int,
    n: int, logdir: Path,
) -> Cell:  # fmt: skip
    """One cell: ``procs`` worker processes, 4 workspaces of ``n`` chunks each."""
    from shield_orchestrator import keys

    from tests.support.pools import redis_for
    from tests.support.procs import WORKER_MODULE, fleet, worker_env

    redis_srv, pg, db = servers
    redis = redis_for(redis_srv)
    await redis.flushall()
    env = worker_env(tree, redis_srv, pg, db, _base_env(engine))
    module = "bench.bench_workspaces" if engine == "noop" else WORKER_MODULE
    expect = min(procs * per_process, len(WORKSPACES))
    label = "sleep" if engine == "noop" else engine
    cell = Cell(label, procs, per_process, [])
    load_start = os.getloadavg()[0]
    try:
        with fleet(env, logdir, module) as workers:
            for i in range(procs):
                workers.spawn(str(i + 1))
            owned = await _settled(redis, procs, expect, workers)
            cell.served = sorted(ws for wss in owned.values() for ws in wss)
            started = time.perf_counter()
            jobs = {}
            for ws in WORKSPACES:
                text = sample_text if engine != "noop" else (lambda w, i: f"{w} chunk {i}")
                jobs[ws] = await enqueue(redis, pg.dsn(db), ws, n, text)
            await _until_completed(redis, [j for ws in cell.served for j in jobs[ws]], workers)
            cell.seconds = time.perf_counter() - started
            cell.chunks = n * len(cell.served)
            if (now := await owners(redis, interval_s=20)) != owned:  # a busy loop beats late
                raise RuntimeError(f"ownership changed during the run: {owned} -> {now}")
            waiting = [ws for ws in WORKSPACES if ws not in cell.served]
            ok = True
            for ws in waiting:
                done, failed, states = await _job_counts(redis, jobs[ws])
                groups = await redis.xinfo_groups(keys.ingestion_stream(ws))
                unread = all(g["last-delivered-id"] == "0-0" and not g["pending"] for g in groups)
                ok &= (done, failed, states, unread) == (0, 0, {"queued"}, True)
                ok &= await redis.xlen(keys.ingestion_stream(ws)) == n
            cell.waiting_ok = ok
            for ws in cell.served:
                done, failed, _ = await _job_counts(redis, jobs[ws])
                cell.processed[ws] = done if failed == 0 else -failed
            if await redis.xlen(keys.DEAD_LETTER_STREAM):
                raise RuntimeError("chunks were dead-lettered\n" + workers.logs())
            if engine == "noop":
                for ws in WORKSPACES:
                    got = await redis.hgetall(CALLS + ws)
                    cell.routing[ws] = {k: int(v) for k, v in got.items()}
            else:
                docs = await _doc_rows(pg.dsn(db))
                for ws in WORKSPACES:
                    mine = {
                        f"shield-{j}-c{i:06d}" for j in jobs[ws] for i in range(1, JOB_CHUNKS + 1)
                    }
                    cell.routing[ws] = {
                        other: len(ids & mine) for other, ids in docs.items() if ids & mine
                    }
    finally:
        await redis.aclose()
    cell.load = round((load_start + os.getloadavg()[0]) / 2, 2)
    return cell


async def handover(
    tree: Path, servers: tuple[Any, Any, str], samples: int, logdir: Path
) -> Handover:
    """SIGKILL the owner of one workspace under load ``samples`` times (see the module doc)."""
    from shield_orchestrator import keys

    from tests.support.pools import redis_for
    from tests.support.procs import fleet, worker_env

    redis_srv, pg, db = servers
    redis = redis_for(redis_srv)
    await redis.flushall()
    ws = WORKSPACES[0]
    env = worker_env(tree, redis_srv, pg, db, _base_env("noop"))
    out = Handover(chunks=300 * samples + 200)
    try:
        with fleet(env, logdir, "bench.bench_workspaces") as workers:
            # one owner and two standbys; a killed owner is replaced by a fresh standby
            procs = {i: workers.spawn(i) for i in ("h1", "h2", "h3")}
            await _settled(redis, 3, 1, workers)
            jobs = await enqueue(redis, pg.dsn(db), ws, out.chunks, lambda w, i: f"{w} chunk {i}")
            owner = await _first_owner(redis, ws, set(), "", 0.0)
            for k in range(samples):
                await asyncio.sleep(0.5)  # the owner processing steadily
                await _standby_ready(redis, procs, owner, workers)
                killed_at = time.time()
                procs[owner].signal(signal.SIGKILL)
                await procs[owner].exited(10)
                dead = {i for i, p in procs.items() if not p.running()}
                new_owner = await _first_owner(redis, ws, dead, "", killed_at)
                first = float((await redis.hget(FIRST + ws, new_owner)) or 0)
                out.samples.append(first - killed_at)
                print(f"workspaces: hand-over {k + 1}: {first - killed_at:.2f} s "
                      f"({owner} -> {new_owner})", flush=True)  # fmt: skip
                owner = new_owner
                procs[f"h{k + 4}"] = workers.spawn(f"h{k + 4}")
            await _until_completed(redis, jobs, workers)
            out.processed, out.failed, _ = await _job_counts(redis, jobs)
            out.seen = sum([await redis.scard(keys.job_seen(j)) for j in jobs])
            out.dead = await redis.xlen(keys.DEAD_LETTER_STREAM)
            pend = await redis.xpending(keys.ingestion_stream(ws), keys.CONSUMER_GROUP)
            out.pending = int(pend["pending"])
    finally:
        await redis.aclose()
    return out


async def _standby_ready(redis: Any, procs: dict[str, Any], owner: str, workers: Any) -> None:
    """Wait until a live process other than ``owner`` beats (a standby that can take over)."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        live = {c.rpartition(":")[2] for c in await owners(redis)}
        if any(i != owner and p.running() and i in live for i, p in procs.items()):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("no standby process\n" + workers.logs())


async def _first_owner(redis: Any, ws: str, dead: set[str], known: str, after: float) -> str:
    """The instance (not dead, not ``known``) whose engine processed a chunk of ``ws`` after
    ``after`` first (waiting for it)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        firsts = {k: float(v) for k, v in (await redis.hgetall(FIRST + ws)).items()}
        if known and known in firsts:
            return known
        fresh = {k: t for k, t in firsts.items() if k not in dead and t >= after}
        if fresh:
            return min(fresh, key=lambda k: fresh[k])
        await asyncio.sleep(0.01)
    raise RuntimeError(f"no process took workspace {ws!r} over")


# --- the report -------------------------------------------------------------------------------


def benchmark(
    cells: list[Cell], offline: list[Cell], hand: Handover | None, n: int, offline_n: int,
    seconds: float,
) -> Any:  # fmt: skip
    from bench import result

    one_ws = POOL / SLEEP_S
    rows: list[list[result.Cell]] = []
    ratios = []
    checks = []
    for c in cells:
        bound = len(c.served) * one_ws
        ratios.append(c.rate / bound)
        checks.append(_cell_ok(c, n))
        rows.append([
            "sleep", c.procs, c.per_process, min(c.procs * c.per_process, 4), len(c.served),
            c.chunks, round(c.rate, 1), round(bound), round(c.rate / bound, 3),
            "yes" if checks[-1] else "NO", c.load,
        ])  # fmt: skip
    base = offline[0].rate if offline else 0.0
    for c in offline:
        checks.append(_cell_ok(c, offline_n))
        rows.append([
            "offline", c.procs, c.per_process, min(c.procs * c.per_process, 4), len(c.served),
            c.chunks, round(c.rate, 2), None, round(c.rate / base, 2) if base else None,
            "yes" if checks[-1] else "NO", c.load,
        ])  # fmt: skip
    notes = [
        f"Sleeping engine: {n:,} chunks per workspace, the noop engine sleeping "
        f"{SLEEP_S * 1000:.0f} ms per chunk under the workspace's Redis lease (fleet-wide), "
        f"pool {POOL} per workspace: one workspace's bound is {one_ws:.0f} chunks/s; "
        "bound = served x that. "
        "The ratio column is achieved ÷ bound (sleep) or ÷ the 1-process rate (offline).",
        f"Offline engine: {offline_n:,} chunks per workspace of bench_growth's corpus (~550-1,300 "
        "characters, 10 entities each), the real `python -m shield_orchestrator.workers` with "
        "the rendered pool settings, PostgreSQL KV/doc status/graph and file (NanoVectorDB) "
        "vectors: Milvus Lite allows one process per host, so the default vector store cannot "
        "serve 2-4 processes here. The offline engine is CPU-bound (extraction and hashing in "
        "the worker, PostgreSQL beside it): more processes add only the cores that are free (2 "
        "on this machine, fewer while it is shared: see the load column), however many "
        "workspaces could run at once.",
        "A workspace no process can own (served < 4) waits: its jobs stay queued, their "
        "chunks stay in its stream unread; the 'exact' column also checks that.",
        "'exact': every served job processed exactly N, 0 failed, nothing dead-lettered, the "
        "ownership unchanged during the cell, and each workspace's engine got only its own "
        "workspace's chunks (sleep: its engine's per-chunk count in Redis, by the chunk's "
        "workspace; offline: lightrag_doc_status rows of each workspace = its own jobs' "
        "documents).",
        "The machine is shared with other work during this run (several agents' tests and "
        "benchmarks on 2 cores): the load column is the 1-minute load average during each cell "
        "(mean of start and end); rates under load are lower bounds.",
    ]
    same = {(c.procs, c.per_process): c.rate / (len(c.served) * one_ws) for c in cells}
    if (4, 1) in same and (2, 2) in same:
        notes.append(
            f"At 4 workspaces served, 2 processes x 2 reached {same[(2, 2)]:.2f} of the bound "
            f"and 4 processes x 1 {same[(4, 1)]:.2f}: the same 4 workspaces at once, so the gap "
            "is the processes' own CPU (each runs its loops, heartbeat, query loops and Redis "
            "clients) on 2 shared cores, not the ownership."
        )
    handover_ok = None
    if hand is not None and hand.samples:
        med, worst = statistics.median(hand.samples), max(hand.samples)
        handover_ok = worst <= TTL_S + 2 and (
            hand.processed,
            hand.failed,
            hand.seen,
            hand.dead,
            hand.pending,
        ) == (hand.chunks, 0, hand.chunks, 0, 0)
        notes.append(
            f"Hand-over after SIGKILL of the owner (sleeping engine, lease TTL {TTL_S} s, "
            f"renewed every TTL/3, ownership checked every second): {len(hand.samples)} "
            f"samples, median {med:.2f} s, max {worst:.2f} s (goal <= TTL + 2 = {TTL_S + 2} s); "
            f"samples: {', '.join(f'{s:.2f}' for s in hand.samples)} s. Measured from the "
            "SIGKILL to the new owner's first process() call for that workspace. The job of "
            f"{hand.chunks:,} chunks then completed: processed {hand.processed:,}, failed "
            f"{hand.failed}, distinct chunks {hand.seen:,}, dead-lettered {hand.dead}, pending "
            f"{hand.pending}."
        )
    ratio = min(ratios) if ratios else None
    met = None
    if ratios or handover_ok is not None:
        met = all(checks) and (ratio is None or ratio >= GOAL_BOUND) and handover_ok is not False
    return result.Benchmark(
        key="workspaces",
        title="Workspaces: throughput against the workspaces that can run at once, hand-over "
        "after SIGKILL",
        goal=f"chunks/s follows min(processes x per process, workspaces) (sleep: achieved ÷ "
        f"bound >= {GOAL_BOUND}), exact counts, each workspace only in its own engine; "
        f"hand-over <= lease TTL + 2 s",
        columns=[
            "engine",
            "processes",
            "per process",
            "min(p x pp, 4)",
            "served",
            "chunks",
            "chunks/s",
            "bound chunks/s",
            "ratio",
            "exact",
            "load (1 min)",
        ],
        rows=rows,
        goal_met=met,
        ratio=round(ratio, 3) if ratio is not None else None,
        ratio_label="lowest achieved ÷ bound (sleeping engine)",
        baseline=f"bound = served workspaces x pool {POOL} / {SLEEP_S} s (sleep); the 1-process "
        "rate of the same run (offline)",
        limits="sleep: the workspaces that can run at once, by design; offline: the 2 cores.",
        notes=notes,
        seconds=round(seconds, 1),
    )


def _cell_ok(c: Cell, n: int) -> bool:
    served_ok = len(c.served) == min(c.procs * c.per_process, len(WORKSPACES))
    counts = all(c.processed.get(ws) == n for ws in c.served)
    routing = all(c.routing.get(ws, {}) == ({ws: n} if ws in c.served else {}) for ws in WORKSPACES)
    return served_ok and counts and routing and c.waiting_ok


# --- main ---------------------------------------------------------------------------------------


async def fresh_db(pg: Any, kind: str) -> str:
    """A new migrated job database (LightRAG's tables are made in it on first use)."""
    import uuid

    import asyncpg
    from shield_orchestrator.database.migrate import migrate

    for _ in range(300):  # a just-started server may still say "starting up"
        try:
            admin = await asyncpg.connect(pg.dsn("postgres"))
            break
        except asyncpg.CannotConnectNowError:
            await asyncio.sleep(0.2)
    name = f"bench_ws_{kind}_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    conn = await asyncpg.connect(pg.dsn(name))
    await migrate(conn)
    await conn.close()
    return name


async def run_all(
    rendered: Path, redis_srv: Any, pg: Any, tmp: Path, logdir: Path, *, n: int = N,
    offline_n: int = OFFLINE_N, samples: int = SAMPLES, only: set[str] = ONLY,
    procs: Sequence[int] = PROCS, per_process: Sequence[int] = PER_PROCESS,
) -> tuple[list[Cell], list[Cell], Handover | None]:  # fmt: skip
    cells: list[Cell] = []
    offline: list[Cell] = []
    hand = None
    if "sleep" in only:
        db = await fresh_db(pg, "sleep")
        for pp in per_process:
            tree = variant_tree(rendered, tmp / f"pp{pp}", WORKSPACES, pp, tmp / "wd")
            for p in procs:
                c = await throughput_cell("noop", tree, (redis_srv, pg, db), p, pp, n, logdir)
                print(f"workspaces: sleep {p} proc x {pp}: served {len(c.served)}, "
                      f"{c.rate:.1f} chunks/s", flush=True)  # fmt: skip
                cells.append(c)
    if "offline" in only:
        for p in procs:
            wd = tmp / f"offline-wd-{p}"
            tree = variant_tree(rendered, tmp / f"offline-{p}", WORKSPACES, 1, wd)
            db = await fresh_db(pg, f"offline{p}")
            c = await throughput_cell("offline", tree, (redis_srv, pg, db), p, 1, offline_n,
                                      logdir)  # fmt: skip
            print(f"workspaces: offline {p} proc x 1: {c.rate:.2f} chunks/s", flush=True)
            offline.append(c)
    if "handover" in only:
        tree = variant_tree(rendered, tmp / "handover", WORKSPACES[:1], 1, tmp / "wd")
        db = await fresh_db(pg, "handover")
        hand = await handover(tree, (redis_srv, pg, db), samples, logdir)
    return cells, offline, hand


async def run() -> list[Any]:
    from tests.support.servers import postgres_server, redis_server

    started = time.perf_counter()
    rendered = Path(os.environ.get("SHIELD_RENDERED", REPO / "build" / "rendered" / "default"))
    logdir = REPO / "bench" / "results" / "logs" / "workspaces"
    logdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-workspaces-"))
    try:
        with redis_server() as redis_srv, postgres_server() as pg:
            cells, offline, hand = await run_all(rendered, redis_srv, pg, tmp, logdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [benchmark(cells, offline, hand, N, OFFLINE_N, time.perf_counter() - started)]


def main(argv: Sequence[str]) -> int:
    if os.environ.get(ROLE) == "worker":
        return sleep_worker(argv)
    rendered = Path(os.environ.get("SHIELD_RENDERED", REPO / "build" / "rendered" / "default"))
    sys.path.insert(0, str(rendered))
    from bench import report, result

    benches = asyncio.run(run())
    print(report.summary_table(benches))
    for b in benches:
        for note in b.notes:
            print(f"  {note}")
    if out := os.environ.get("BENCH_JSON"):
        result.write(Path(out), benches)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
