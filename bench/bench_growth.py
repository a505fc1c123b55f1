"""Growth benchmark (issue 14): does the cost per chunk stay flat as LightRAG's graph grows?

    python -m bench.bench_growth      # with BENCH_JSON set (make bench), also writes results

Everything runs on one redis-server and one PostgreSQL cluster started here on loopback
(tests/support/servers.py), with the package rendered by the real playbook (playbooks/render.yml)
into a temporary root, once per storage choice, so the worker process reads its working
directory and storages from its rendered constants as in production:

1. pool, default storages: BENCH_GROWTH_N chunks (default 50,000) through one real worker
   process (``python -m shield_orchestrator.workers 1``, engine ``offline``, the rendered pool
   defaults: pool size, batch size, max tasks per child). When it exits 0 after its max tasks
   per child, it is started again after RestartSec, as systemd does (Restart=always). Storages:
   the role's defaults on this Debian 12 machine: PGKVStorage, PGDocStatusStorage,
   PGTableGraphStorage in the job database, vectors in Milvus Lite under the working dir.
   Chunks are put on the stream before the worker starts, by the API's producer
   (``JobRegistry.create``), in jobs of 1,000; the clock starts at the first finished chunk
   (so neither the enqueue nor the first start is in the first tenth). Per tenth of N:
   chunks/s and worker CPU seconds per chunk (utime+stime from /proc/<pid>/stat of the worker
   process and of any child of it, plus wait4's figures of exited processes; Milvus Lite runs
   inside the worker process here), pg_database_size, the Milvus Lite directory and the working
   directory. Also the peak RSS (VmHWM) of the worker process and PostgreSQL's PSS (all its
   processes). Goal: the last tenth's chunks/s >= 0.8 x the first tenth's. With
   BENCH_GROWTH_BUDGET_S set, a run still short of N then stops and its goal is not judged.
2. pool, file storages: the same corpus, first BENCH_GROWTH_FILE_N chunks (default 5,000),
   per tenth, stopped after BENCH_GROWTH_FILE_BUDGET_S (default 900 s): tenths not reached
   are shown as such, never estimated.
3. direct: OfflineEngine.process driven directly (no pool, no Redis) at the pool's
   concurrency (min(pool size, engine.max_concurrency)) with the default storages on a fresh
   database and working dir, first BENCH_GROWTH_DIRECT_N chunks (default 5,000); the pool's
   rate over the same first chunks of run 1 ÷ this rate (goal >= 0.9).

They run in the order 1, 3, 2. A pool run in which no chunk finished for BENCH_GROWTH_STALL_S
(default 600 s) ends "STALLED"; BENCH_GROWTH_MAX_TASKS_PER_CHILD overrides the rendered max tasks
per child (0: never restarted; not the production setting, and the report says so).
BENCH_GROWTH_ONLY=pool,file,direct runs some of them (pool ÷ direct needs both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
RENDERED = Path(os.environ.get("SHIELD_RENDERED", REPO / "build" / "rendered" / "default"))
sys.path.insert(0, str(RENDERED))

import asyncpg  # noqa: E402

from bench import proc, result  # noqa: E402
from bench.bench_pool import _migrated_db, _redis  # noqa: E402
from bench.bench_vectors import disk_used  # noqa: E402
from tests.support.procs import fleet, worker_env  # noqa: E402
from tests.support.servers import PostgresServer, RedisServer, postgres_server, redis_server  # noqa: E402

N = int(os.environ.get("BENCH_GROWTH_N", "50000"))
FILE_N = int(os.environ.get("BENCH_GROWTH_FILE_N", "5000"))
FILE_BUDGET_S = float(os.environ.get("BENCH_GROWTH_FILE_BUDGET_S", "900"))
BUDGET_S = float(os.environ.get("BENCH_GROWTH_BUDGET_S", "0")) or 1e9  # 0: until N are done
DIRECT_N = int(os.environ.get("BENCH_GROWTH_DIRECT_N", "5000"))
ONLY = {p for p in os.environ.get("BENCH_GROWTH_ONLY", "pool,file,direct").split(",") if p}
MAX_TASKS = os.environ.get("BENCH_GROWTH_MAX_TASKS_PER_CHILD", "")  # "": the rendered value
STALL_S = float(os.environ.get("BENCH_GROWTH_STALL_S", "600"))  # no chunk finished: stop
RENDER_ROOT = os.environ.get("BENCH_GROWTH_RENDER_ROOT", "")  # reuse renders (development)
JOB_CHUNKS = 1000
SAMPLE_S = 0.5
TENTHS = 10
GOAL_GROWTH = 0.8
GOAL_DIRECT = 0.9
CLK = os.sysconf("SC_CLK_TCK")
VARIANTS = {  # name: (orchestrator_engine_storage, orchestrator_engine_vector_storage)
    "default": ("", ""),  # the role's defaults (postgres, and milvus on Debian 12)
    "file": ("file", "file"),
}
WORKSPACE = "default"
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ru",
    "ze",
    "to",
    "va",
    "ni",
    "so",
    "pe",
    "du",
    "ga",
    "ri",
    "fo",
    "xe",
    "bu",
    "ta",
    "yo",
    "ne",
    "wi",
]
LINKS = [
    "and",
    "with",
    "before",
    "after",
    "between",
    "against",
    "during",
    "through",
    "over",
    "under",
    "while",
    "into",
]  # all of them offline_extract stopwords


def entity(k: int) -> str:
    """A unique capitalised word for entity number k (5 syllables: 3.2 million names)."""
    k = (k * 2654435761) % len(SYLLABLES) ** 5  # a bijection: neighbours look unrelated
    parts = []
    for _ in range(5):
        k, d = divmod(k, len(SYLLABLES))
        parts.append(SYLLABLES[d])
    return "".join(parts).capitalize()


def text(i: int) -> str:
    """Chunk i: 4 entities never seen before, 6 seen earlier, in 11-17 sentences whose only
    other words are stopwords, so every name is a keyphrase (an entity) and names in one
    sentence are related: entities and relations keep increasing with i. ~600-1200 chars."""
    rng = random.Random(i)
    names = [entity(4 * i + j) for j in range(4)]
    if i:
        recent = max(0, 4 * i - 400)
        names += [entity(rng.randrange(recent, 4 * i)) for _ in range(3)]
        names += [entity(rng.randrange(0, 4 * i)) for _ in range(3)]
    sentences = []
    for _ in range(rng.randint(11, 17)):
        picked = rng.sample(names, k=min(len(names), rng.randint(3, 5)))
        words = [picked[0]]
        for name in picked[1:]:
            words += [rng.choice(LINKS), name]
        sentences.append(" ".join(words) + ".")
    return " ".join(sentences)


# --- measurement helpers -----------------------------------------------------------------


def cpu_s(pid: int) -> float:
    """utime+stime of one live process (seconds); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK


def pss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total / 1024


def disk_mib(path: Path) -> float:
    """Blocks allocated under ``path`` (du), MiB."""
    return disk_used(path) / 2**20


async def db_size_mib(pg: PostgresServer, db: str) -> float:
    conn = await asyncpg.connect(pg.dsn("postgres"))
    try:
        return float(await conn.fetchval("SELECT pg_database_size($1)", db)) / 2**20
    finally:
        await conn.close()


@dataclass
class Mark:
    """The state at one tenth boundary (or the start of the clock)."""

    t: float
    done: int
    cpu: float
    pg_mib: float = 0.0
    milvus_mib: float = 0.0
    workdir_mib: float = 0.0


@dataclass
class Run:
    name: str
    planned: int
    marks: list[Mark] = field(default_factory=list)  # marks[0] = start of the clock
    done: int = 0
    status: str = ""
    restarts: int = 0
    worker_peak_mib: float = 0.0
    milvus_peak_mib: float = 0.0
    pg_peak_mib: float = 0.0
    seconds: float = 0.0

    def tenth_rows(self) -> list[tuple[float, float] | None]:
        """(chunks/s, CPU s per chunk) per tenth; None for a tenth not reached."""
        out: list[tuple[float, float] | None] = []
        for k in range(1, TENTHS + 1):
            if k >= len(self.marks):
                out.append(None)
                continue
            a, b = self.marks[k - 1], self.marks[k]
            n = b.done - a.done
            out.append((n / (b.t - a.t), (b.cpu - a.cpu) / n) if n > 0 else None)
        return out

    def rate_upto(self, count: int) -> float | None:
        """chunks/s from the start of the clock until ``count`` chunks were done."""
        ok = [m for m in self.marks[1:] if m.done >= count]
        if not ok:
            return None
        a, b = self.marks[0], ok[0]
        return (b.done - a.done) / (b.t - a.t)


# --- rendering -----------------------------------------------------------------------------


def render(root: Path) -> dict[str, Path]:
    """The package rendered per variant (in parallel), working dir ``<root>/<variant>-wd``."""
    playbook = Path(sys.executable).parent / "ansible-playbook"
    pending: dict[str, subprocess.Popen[bytes]] = {}
    out: dict[str, Path] = {}
    for name, (storage, vectors) in VARIANTS.items():
        target, workdir = root / name, root / f"{name}-wd"
        out[name] = target
        config = target / "shield_orchestrator" / "engines" / "config.py"
        if config.is_file() and f'WORKING_DIR = "{workdir}"' in config.read_text():
            continue  # BENCH_GROWTH_RENDER_ROOT: rendered by an earlier run
        extra = ["-e", f"render_root={target}", "-e", f"orchestrator_engine_working_dir={workdir}"]
        if storage:
            extra += ["-e", f"orchestrator_engine_storage={storage}"]
            extra += ["-e", f"orchestrator_engine_vector_storage={vectors}"]
        log = (root / f"render-{name}.log").open("wb")
        pending[name] = subprocess.Popen(
            [str(playbook), "-i", "localhost,", "playbooks/render.yml", *extra],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
    for name, p in pending.items():
        if p.wait(900) != 0:
            raise RuntimeError(f"render of {name} failed: see {root}/render-{name}.log")
    return out


def rendered_constant(tree: Path, module: str, name: str) -> str:
    for line in (tree / "shield_orchestrator" / module).read_text().splitlines():
        if line.startswith(f"{name} = "):
            return line.split("=", 1)[1].split("#", 1)[0].strip().strip('"')
    raise RuntimeError(f"{name} not in {module}")


# --- the pool runs -------------------------------------------------------------------------


async def enqueue(redis: Any, pg: PostgresServer, db: str, n: int) -> list[str]:
    """n chunks, in jobs of JOB_CHUNKS, through the API's producer (JobRegistry.create)."""
    from shield_orchestrator.services.job_registry import JobRegistry, NewChunk, NewJob

    pool = await asyncpg.create_pool(pg.dsn(db), min_size=1, max_size=2)
    ids = []
    try:
        registry = JobRegistry(redis, pool, max_queue_pending=10**9, idempotency_ttl_s=60)
        for start in range(0, n, JOB_CHUNKS):
            chunks = [
                NewChunk(text(i), f"growth://chunk/{i}")
                for i in range(start, min(start + JOB_CHUNKS, n))
            ]
            ids.append((await registry.create(NewJob(chunks, "text", WORKSPACE))).job_id)
    finally:
        await pool.close()
    return ids


async def processed(redis: Any, job_ids: list[str]) -> tuple[int, int]:
    """(chunks finished, chunks failed) over the jobs' hashes."""
    from shield_orchestrator import keys

    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), "chunks_processed", "chunks_failed")
        values = await pipe.execute()
    ok = sum(int(v[0] or 0) for v in values)
    failed = sum(int(v[1] or 0) for v in values)
    return ok + failed, failed


def _stop_reason(
    run: Run, failed: int, elapsed_s: float, budget_s: float, quiet_s: float, log: Path
) -> str:
    """Why the run ends now ('' while it goes on)."""
    if failed:
        return f"{failed} chunks failed: see {log}"
    if run.done >= run.planned:
        return "completed"
    if elapsed_s > budget_s:
        return f"stopped after the {budget_s:.0f} s budget: {run.done} of {run.planned}"
    if quiet_s > STALL_S:
        return f"STALLED: no chunk finished for {quiet_s:.0f} s at {run.done}: see {log}"
    return ""


def _worker_env(tree: Path, redis_srv: RedisServer, pg: PostgresServer, db: str) -> dict[str, str]:
    """The worker's environment: the rendered settings, the servers started here."""
    env = worker_env(
        tree,
        redis_srv,
        pg,
        db,
        base={
            "SHIELD_ENGINE": "offline",
            "SHIELD_WORKER_METRICS_PORT": "0",
            "SHIELD_WORKER_HOST": "bench",
            "SHIELD_WORKER_JOB_STATUS_TTL_S": "86400",  # a long run must not lose its counters
        },
    )
    if MAX_TASKS:
        env["SHIELD_WORKER_MAX_TASKS_PER_CHILD"] = MAX_TASKS
    return env


async def pool_run(
    name: str,
    tree: Path,
    redis_srv: RedisServer,
    pg: PostgresServer,
    db: str,
    n: int,
    budget_s: float,
    logdir: Path,
) -> Run:
    """n chunks through real worker processes of the ``tree`` package (restarted as systemd)."""
    run = Run(name, n)
    workdir = Path(rendered_constant(tree, "engines/config.py", "WORKING_DIR"))
    restart_s = 2.0  # orchestrator_workers_restart_sec (RestartSec=)
    redis = _redis(redis_srv)
    await redis.flushall()
    job_ids = await enqueue(redis, pg, db, n)
    env = _worker_env(tree, redis_srv, pg, db)
    exited_cpu = 0.0
    boundaries = [n * k // TENTHS for k in range(1, TENTHS + 1)]
    t_start = last_change = time.perf_counter()
    with fleet(env, logdir) as workers:
        worker = workers.spawn("1")
        milvus_pids: set[int] = set()
        try:
            while True:
                await asyncio.sleep(SAMPLE_S)
                pid, status, usage = os.wait4(worker.pid, os.WNOHANG)  # noqa: ASYNC222 (WNOHANG)
                if pid:  # exited: its CPU (and its reaped children's) from wait4
                    exited_cpu += usage.ru_utime + usage.ru_stime
                    exited_cpu += sum(cpu_s(p) for p in milvus_pids)  # orphans, if any
                    code = os.waitstatus_to_exitcode(status)
                    if code != 0:
                        run.status = f"worker exited {code}: see {worker.log_path}"
                        break
                    done, _ = await processed(redis, job_ids)
                    if done >= n:
                        run.status = "completed"
                        break
                    await asyncio.sleep(restart_s)
                    worker = workers.spawn("1")
                    run.restarts += 1
                    continue
                pids = proc.tree(worker.pid)
                milvus_pids = set(pids[1:])
                cpu = exited_cpu + sum(cpu_s(p) for p in pids)
                run.worker_peak_mib = max(run.worker_peak_mib, proc.peak_rss_kib(worker.pid) / 1024)
                for p in pids[1:]:
                    run.milvus_peak_mib = max(run.milvus_peak_mib, proc.peak_rss_kib(p) / 1024)
                assert pg.proc is not None
                run.pg_peak_mib = max(run.pg_peak_mib, pss_mib(proc.tree(pg.proc.pid)))
                done, failed = await processed(redis, job_ids)
                now = time.perf_counter()
                last_change = now if done > run.done else last_change
                if not run.marks and done > 0:
                    run.marks.append(Mark(now, done, cpu))
                while (
                    run.marks
                    and len(run.marks) <= TENTHS
                    and done >= boundaries[len(run.marks) - 1]
                ):
                    sizes = (await db_size_mib(pg, db), disk_mib(workdir / "milvus.db"))
                    run.marks.append(Mark(now, done, cpu, *sizes, disk_mib(workdir)))
                run.done = done
                run.status = _stop_reason(
                    run, failed, now - t_start, budget_s, now - last_change, worker.log_path
                )
                if run.status:
                    break
        finally:
            if worker.proc.returncode is None:
                with contextlib.suppress(ChildProcessError):
                    worker.signal(signal.SIGTERM)
                    await asyncio.to_thread(worker.proc.wait, 120)
    run.seconds = time.perf_counter() - t_start
    await redis.aclose()
    return run


# --- the direct run ------------------------------------------------------------------------


async def direct_run(pg: PostgresServer, tmp: Path, n: int, slots: int) -> Run:
    """OfflineEngine.process driven directly, ``slots`` at a time, default storages."""
    from shield_orchestrator.engines.base import ChunkInput
    from shield_orchestrator.engines.config import EngineConfig
    from shield_orchestrator.engines.offline import OfflineEngine

    admin = await asyncpg.connect(pg.dsn("postgres"))
    try:
        await admin.execute('CREATE DATABASE "direct"')
    finally:
        await admin.close()
    workdir = tmp / "direct-wd"
    config = EngineConfig(
        workspace=WORKSPACE,
        working_dir=str(workdir),
        postgres_host="127.0.0.1",
        postgres_port=pg.port,
        postgres_db="direct",
        postgres_user=pg.user,
        postgres_password=pg.password,
    )
    run = Run("direct", n)
    me = os.getpid()
    engine = OfflineEngine(config)
    await engine.start()
    sem = asyncio.Semaphore(slots)
    boundaries = [n * k // TENTHS for k in range(1, TENTHS + 1)]

    def cpu() -> float:
        return sum(cpu_s(p) for p in proc.tree(me))

    async def one(i: int) -> None:
        async with sem:
            await engine.process(
                ChunkInput(
                    job_id="direct",
                    chunk_id=f"c{i}",
                    text=text(i),
                    source_uri=f"growth://chunk/{i}",
                    workspace=WORKSPACE,
                )
            )
        run.done += 1
        if run.done == 1:
            run.marks.append(Mark(time.perf_counter(), 1, cpu()))
        if len(run.marks) <= TENTHS and run.done >= boundaries[len(run.marks) - 1]:
            run.marks.append(Mark(time.perf_counter(), run.done, cpu()))

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(one(i) for i in range(n)))
        run.status = "completed"
    finally:
        await engine.close()
    run.seconds = time.perf_counter() - t0
    run.worker_peak_mib = proc.peak_rss_kib(me) / 1024  # the benchmark process: the engine's
    run.pg_peak_mib = pss_mib(proc.tree(pg.proc.pid)) if pg.proc else 0.0
    run.marks[-1].pg_mib = await db_size_mib(pg, "direct")
    run.marks[-1].milvus_mib = disk_mib(workdir / "milvus.db")
    run.marks[-1].workdir_mib = disk_mib(workdir)
    return run


# --- the report ----------------------------------------------------------------------------


def _fmt(v: float | None, digits: int) -> result.Cell:
    return "–" if v is None else round(v, digits)


def benchmark(
    main: Run | None, files: Run | None, direct: Run | None, slots: int
) -> result.Benchmark:
    rows: list[list[result.Cell]] = []
    t_main = main.tenth_rows() if main else [None] * TENTHS
    t_file = files.tenth_rows() if files else [None] * TENTHS
    for k in range(TENTHS):
        m, f = t_main[k], t_file[k]
        mark = main.marks[k + 1] if main and k + 1 < len(main.marks) else None
        rows.append(
            [
                f"{k + 1}" + (f" (to {main.planned * (k + 1) // TENTHS})" if main else ""),
                _fmt(m[0] if m else None, 2),
                _fmt(m[1] if m else None, 4),
                _fmt(mark.pg_mib if mark else None, 0),
                _fmt(mark.milvus_mib if mark else None, 0),
                _fmt(mark.workdir_mib if mark else None, 0),
                f"{_fmt(f[0] if f else None, 2)} (to {files.planned * (k + 1) // TENTHS})"
                if files
                else "–",
                _fmt(f[1] if f else None, 4),
            ]
        )
    growth = None
    if main and main.status == "completed" and t_main[0] and t_main[-1]:
        growth = t_main[-1][0] / t_main[0][0]
    ratio_direct = None
    notes: list[str] = []
    if main and direct and direct.status == "completed":
        ours = main.rate_upto(direct.planned)
        theirs = direct.rate_upto(direct.planned)
        if ours and theirs:
            ratio_direct = ours / theirs
            notes.append(
                f"pool ÷ direct over the first {direct.planned} chunks: {ours:.2f} ÷ "
                f"{theirs:.2f} chunks/s = {ratio_direct:.3f} (goal >= {GOAL_DIRECT}; "
                f"{'met' if ratio_direct >= GOAL_DIRECT else 'NOT met'}); direct CPU "
                f"{(direct.marks[-1].cpu - direct.marks[0].cpu) / (direct.done - 1):.4f} s/chunk "
                f"(this process + Milvus Lite), {slots} at a time."
            )
    if growth is not None:
        notes.insert(
            0,
            f"last tenth ÷ first tenth chunks/s = {growth:.3f} (goal >= "
            f"{GOAL_GROWTH}: {'met' if growth >= GOAL_GROWTH else 'NOT met'}).",
        )
    for r in (main, files, direct):
        if r:
            notes.append(
                f"{r.name}: {r.done} of {r.planned} chunks in {r.seconds:.0f} s, {r.status}; "
                f"worker restarts (max tasks per child) {r.restarts}; peak RSS "
                f"{'benchmark process' if r is direct else 'worker'} {r.worker_peak_mib:.0f} MiB"
                + (
                    f", Milvus Lite process {r.milvus_peak_mib:.0f} MiB; "
                    if r.milvus_peak_mib
                    else "; "
                    if r is files
                    else " (Milvus Lite runs inside it: no process of its own); "
                )
                + f"PostgreSQL PSS (all its processes) peak {r.pg_peak_mib:.0f} MiB."
            )
    if MAX_TASKS:
        notes.append(
            f"NOT the production setting: max tasks per child = {MAX_TASKS} "
            "(BENCH_GROWTH_MAX_TASKS_PER_CHILD; 0 = the worker is never restarted)."
        )
    if main and main.planned < 50000:
        notes.append(
            f"N = {main.planned}, not the 50,000 of the issue: the 50,000-chunk figure is not "
            "measured in this run (set BENCH_GROWTH_N)."
        )
    notes.append(
        "Chunk i: 4 new entities, 3 recent and 3 random earlier ones, 11-17 sentences "
        "(~550-1,300 chars), deterministic (bench_growth.text); the clock of each run starts at "
        "its first finished chunk. CPU = utime+stime of the worker process and its Milvus Lite "
        "server if it has one (here it runs inside the worker process) from /proc, plus wait4 of "
        "exited ones (restarts are in the figures)."
    )
    goal_met = None
    if growth is not None and ratio_direct is not None:
        goal_met = growth >= GOAL_GROWTH and ratio_direct >= GOAL_DIRECT
    elif growth is not None:
        goal_met = growth >= GOAL_GROWTH
    return result.Benchmark(
        key="growth",
        title="Growth: offline engine through the pool, default storages (PostgreSQL + Milvus "
        "Lite) vs file storages",
        goal=f"last tenth >= {GOAL_GROWTH} x first tenth chunks/s (default storages); "
        f"pool ÷ direct >= {GOAL_DIRECT}",
        columns=[
            "tenth (default run)",
            "chunks/s",
            "CPU s/chunk",
            "PG db MiB",
            "Milvus Lite MiB",
            "working dir MiB",
            "file storages: chunks/s",
            "file: CPU s/chunk",
        ],
        rows=rows,
        goal_met=goal_met,
        ratio=None if growth is None else round(growth, 3),
        ratio_label="last ÷ first tenth chunks/s",
        baseline="the first tenth of the same run",
        limits="one worker process on 2 shared cores; the offline engine is CPU-bound "
        "(LightRAG's merge and storage calls), so figures move with the machine's load",
        notes=notes,
        curves=[
            result.Curve(
                "Chunks/s per tenth of the run",
                "chunks done",
                "chunks/s",
                {
                    f"{r.name} storages" if r is not direct else "direct (engine only)": [
                        (float(r.marks[k + 1].done), v[0])
                        for k, v in enumerate(r.tenth_rows())
                        if v
                    ]
                    for r in (main, files, direct)
                    if r
                },
            )
        ],
    )


async def run() -> list[result.Benchmark]:
    tmp = Path(RENDER_ROOT) if RENDER_ROOT else Path(tempfile.mkdtemp(prefix="bench-growth-"))
    tmp.mkdir(parents=True, exist_ok=True)
    trees = render(tmp)
    logdir = REPO / "bench" / "results" / "logs" / "growth"
    logdir.mkdir(parents=True, exist_ok=True)
    for name in VARIANTS:  # fresh storages every run
        shutil.rmtree(tmp / f"{name}-wd", ignore_errors=True)
    shutil.rmtree(tmp / "direct-wd", ignore_errors=True)
    pool_size = int(rendered_constant(trees["default"], "workers/worker_pool.py", "POOL_SIZE"))
    max_parallel = int(
        rendered_constant(trees["default"], "engines/config.py", "MAX_PARALLEL_INSERT")
    )
    slots = min(pool_size, 2 * max_parallel)  # WorkerPool.slots with the engine's concurrency
    main = files = direct = None
    with redis_server() as redis_srv, postgres_server() as pg:
        db = await _migrated_db(pg)
        if "pool" in ONLY:
            main = await pool_run(
                "default", trees["default"], redis_srv, pg, db, N, BUDGET_S, logdir
            )
            print(f"growth: default {main.done}/{N} {main.status}", flush=True)
        if "direct" in ONLY:
            direct = await direct_run(pg, tmp, DIRECT_N, slots)
            print(f"growth: direct {direct.done}/{DIRECT_N} {direct.status}", flush=True)
        if "file" in ONLY:
            files = await pool_run(
                "file", trees["file"], redis_srv, pg, db, FILE_N, FILE_BUDGET_S, logdir
            )
            print(f"growth: file {files.done}/{FILE_N} {files.status}", flush=True)
    return [benchmark(main, files, direct, slots)]


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("lightrag").setLevel(logging.WARNING)
    benches = asyncio.run(run())
    for b in benches:
        print(f"{b.title}\n  goal: {b.goal}; goal met: {b.goal_met}")
        print("  " + " | ".join(b.columns))
        for row in b.rows:
            print("  " + " | ".join(str(c) for c in row))
        for note in b.notes:
            print(f"  {note}")
    if out := os.environ.get("BENCH_JSON"):
        result.write(Path(out), benches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
