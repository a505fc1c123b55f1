"""Benchmark 6: scaling with worker processes x pool size, engine latency 200 ms.

Real worker processes (``python -m shield_orchestrator.workers N``, 1, 2 and 4 of them) with
pool sizes 4, 8 and 16, the noop engine sleeping 200 ms per chunk (standing in for the
double's 200 ms per call, without LightRAG's CPU work, so that the pool's behaviour shows).
The bound of a cell is processes x pool size / 0.2 s; the table gives chunks/s and
achieved ÷ bound, the plot chunks/s against the total allowed concurrency. If the queue were
the limit, the curves would flatten; they follow the allowed concurrency instead.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from redis import Redis

from bench import ours, proc, result
from tests.support.servers import redis_server

REPO = Path(__file__).resolve().parent.parent
DELAY_S = 0.2
PROCS = [1, 2, 4]
POOLS = [4, 8, 16]
CELL_S = float(os.environ.get("BENCH_SCALING_CELL_S", "4"))  # chunks = bound x this


def _enqueue(r: Redis, n: int) -> str:
    from shield_orchestrator import keys
    from shield_orchestrator.services.job_status import new_job_fields

    from tests.support.chunks import chunk_fields

    job_id = str(uuid.uuid4())
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.job(job_id), mapping=new_job_fields(job_id, n, "default", time.time()))
    for i in range(n):
        pipe.xadd(keys.ingestion_stream(keys.WORKSPACES[0]), chunk_fields(job_id, i + 1))  # type: ignore[arg-type]
    pipe.execute()
    return job_id


def cell(r: Redis, env: dict[str, str], procs: int, pool: int, logdir: Path) -> dict[str, Any]:
    from shield_orchestrator import keys

    r.flushall()
    knobs = {**env, **ours.KNOBS, "SHIELD_WORKER_POOL_SIZE": str(pool),
             "SHIELD_WORKER_BATCH_SIZE": str(pool), "SHIELD_WORKER_NOOP_DELAY_MS": "200",
             "SHIELD_WORKER_HEALTH_CHECK_INTERVAL_S": "1"}  # fmt: skip
    workers = [
        proc.start([sys.executable, "-m", "shield_orchestrator.workers", "--log-level",
                    "WARNING", str(i + 1)], env=knobs, cwd=REPO, log=logdir / "scaling.log")
        for i in range(procs)
    ]  # fmt: skip
    bound = procs * pool / DELAY_S
    n = max(40, int(bound * CELL_S))
    with proc.running(workers):
        deadline = time.monotonic() + 60
        while r.zcard(keys.WORKERS) < procs:  # every process registered its heartbeat
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                raise RuntimeError(f"{procs} workers did not start (see scaling.log)")
            time.sleep(0.05)
        t0 = time.perf_counter()
        job_id = _enqueue(r, n)
        deadline = time.monotonic() + 120 + n * DELAY_S
        while r.hget(keys.job(job_id), "status") != "completed":
            if time.monotonic() > deadline:
                raise RuntimeError(f"job of {n} not completed (see scaling.log)")
            time.sleep(0.01)
        rate = n / (time.perf_counter() - t0)
    return {"procs": procs, "pool": pool, "n": n, "rate": rate, "bound": bound}


def run(logdir: Path) -> result.Benchmark:
    started = time.perf_counter()
    cells = []
    with redis_server() as srv, ours.postgres_env("scaling") as pg_env:
        env = {**pg_env, "PYTHONPATH": os.pathsep.join([str(ours.RENDERED), str(REPO)]),
               "SHIELD_REDIS_HOST": "127.0.0.1", "SHIELD_REDIS_PORT": str(srv.port),
               "SHIELD_REDIS_PASSWORD": srv.password}  # fmt: skip
        r = Redis(host="127.0.0.1", port=srv.port, password=srv.password, decode_responses=True)
        try:
            for procs in PROCS:
                for pool in POOLS:
                    c = cell(r, env, procs, pool, logdir)
                    print(f"scaling: {procs} proc x pool {pool}: {c['rate']:.1f}/s of "
                          f"{c['bound']:.0f}", flush=True)  # fmt: skip
                    cells.append(c)
        finally:
            r.close()
    ratios = [c["rate"] / c["bound"] for c in cells]
    rows: list[list[result.Cell]] = [
        [c["procs"], c["pool"], c["procs"] * c["pool"], c["n"], round(c["rate"], 1),
         round(c["bound"], 1), round(c["rate"] / c["bound"], 3)]
        for c in cells
    ]  # fmt: skip
    series = {
        f"{p} process{'es' if p > 1 else ''}": [
            (float(c["procs"] * c["pool"]), c["rate"]) for c in cells if c["procs"] == p
        ]
        for p in PROCS
    }
    series["bound (allowed / 0.2 s)"] = sorted(
        {(float(c["procs"] * c["pool"]), c["bound"]) for c in cells}
    )
    return result.Benchmark(
        key="scaling",
        title="Scaling: worker processes x pool size, 200 ms per chunk",
        goal="chunks/s follows the allowed concurrency (processes x pool / 0.2 s), not the queue",
        columns=[
            "processes",
            "pool size",
            "allowed concurrency",
            "chunks",
            "chunks/s",
            "bound chunks/s",
            "achieved ÷ bound",
        ],
        rows=rows,
        goal_met=min(ratios) >= 0.9,
        ratio=round(min(ratios), 3),
        ratio_label="lowest achieved ÷ bound over the cells",
        baseline="bound = processes x pool size / 0.2 s (the engine latency), same run",
        limits="the allowed concurrency by design; a ratio below 1 is ramp-up (first fetch, "
        "last batch) and, at 4 processes x 16, the 2 shared cores.",
        notes=[f"Each cell runs about {CELL_S:.0f} s of work (chunks = bound x {CELL_S:.0f})."],
        curves=[
            result.Curve(
                "Chunks/s vs allowed concurrency (200 ms per chunk)",
                "processes x pool size",
                "chunks/s",
                series,
            )
        ],
        seconds=round(time.perf_counter() - started, 1),
    )


def main() -> int:
    logdir = REPO / "bench" / "results" / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    bench = run(logdir)
    out = Path(os.environ.get("BENCH_JSON") or REPO / "bench" / "results" / "scaling.json")
    result.write(out, [bench])
    return 0


if __name__ == "__main__":
    sys.exit(main())
