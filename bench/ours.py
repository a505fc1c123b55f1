"""Our pool as a contender of the overhead benchmark (bench/bench_overhead.py).

Workers: ``python -m shield_orchestrator.workers N`` (the systemd unit's ExecStart), engine
noop, one or two processes. Producer: bench/peers/ours_peer.py, which creates jobs through
``services.job_registry.JobRegistry`` (the API's own path: PostgreSQL row + one MULTI per job)
in jobs of 100 chunks. Both need the rendered package (SHIELD_RENDERED) and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.bench_overhead import Config

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RENDERED = Path(os.environ.get("SHIELD_RENDERED", REPO / "build" / "rendered" / "default"))
if not (RENDERED / "shield_orchestrator" / "workers" / "__main__.py").is_file():
    raise ImportError(f"no rendered worker under {RENDERED} (make render)")
if str(RENDERED) not in sys.path:
    sys.path.insert(0, str(RENDERED))

# Our pool's fastest settings for a no-op engine on 2 cores (env overrides, settings.py).
KNOBS = {
    "SHIELD_ENGINE": "noop",
    "SHIELD_WORKER_POOL_SIZE": "64",
    "SHIELD_WORKER_BATCH_SIZE": "200",
    "SHIELD_WORKER_METRICS_PORT": "0",
    "SHIELD_WORKER_MAX_TASKS_PER_CHILD": "0",
    "SHIELD_WORKER_FLUSH_INTERVAL_MS": "1000",
    "SHIELD_WORKER_HOST": "bench",
}
JOB_CHUNKS = 100  # chunks per job, as an API request of 100 chunks


def ingestion_stream_and_group() -> tuple[str, str]:
    from shield_orchestrator import keys

    return keys.ingestion_stream(keys.WORKSPACES[0]), keys.CONSUMER_GROUP


def configs() -> list[Config]:
    from bench.bench_overhead import Config, ours_probe

    path = os.pathsep.join([str(RENDERED), str(REPO), str(BENCH / "peers")])
    env = {**KNOBS, "PYTHONPATH": path, "BENCH_JOB_CHUNKS": str(JOB_CHUNKS)}
    worker = ["{py}", "-m", "shield_orchestrator.workers", "--log-level", "WARNING"]

    def ours(procs: int) -> Config:
        return Config(
            f"our pool ({procs} proc)",
            f"{procs} x worker process, noop engine, pool 64, batch 200; jobs of {JOB_CHUNKS} "
            "chunks via JobRegistry",
            None, [[*worker, str(i + 1)] for i in range(procs)], ["{py}", "ours_peer.py"],
            ours_probe, env, needs_postgres=True,
        )  # fmt: skip

    return [ours(1), ours(2)]


async def _migrated(dsn_admin: str, dsn_db: str, name: str) -> None:
    import asyncpg
    from shield_orchestrator.database.migrate import migrate

    admin = await asyncpg.connect(dsn_admin)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn_db)
    try:
        await migrate(conn)
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_env(name: str = "bench") -> Iterator[dict[str, str]]:
    """A PostgreSQL cluster with a migrated database; yields the SHIELD_POSTGRES_* env."""
    from tests.support.servers import postgres_server

    with postgres_server() as pg:
        asyncio.run(_migrated(pg.dsn("postgres"), pg.dsn(name), name))
        yield {
            "SHIELD_POSTGRES_HOST": "127.0.0.1",
            "SHIELD_POSTGRES_PORT": str(pg.port),
            "SHIELD_POSTGRES_DB": name,
            "SHIELD_POSTGRES_USER": pg.user,
            "SHIELD_POSTGRES_PASSWORD": pg.password,
        }
