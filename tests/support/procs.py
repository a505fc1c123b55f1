"""Run the rendered worker as a real process: ``python -m shield_orchestrator.workers N``.

The environment points it at the test session's Redis and PostgreSQL and overrides the pool's
knobs with short test values (settings.py reads SHIELD_WORKER_*). Processes are stopped by
PID when the test ends; their log is kept in a file the test can read.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import PostgresServer, RedisServer

FAST_ENV = {
    "SHIELD_ENGINE": "noop",
    "SHIELD_WORKER_POOL_SIZE": "4",
    "SHIELD_WORKER_BATCH_SIZE": "4",
    "SHIELD_WORKER_RETRY_ATTEMPTS": "2",
    "SHIELD_WORKER_RETRY_BASE_DELAY_MS": "10",
    "SHIELD_WORKER_RETRY_MAX_DELAY_MS": "50",
    "SHIELD_WORKER_TIMEOUT_S": "30",
    "SHIELD_WORKER_HEALTH_CHECK_INTERVAL_S": "1",
    "SHIELD_WORKER_MAX_TASKS_PER_CHILD": "0",
    "SHIELD_WORKER_GRACEFUL_SHUTDOWN_TIMEOUT_S": "10",
    "SHIELD_WORKER_RECLAIM_IDLE_MS": "600",
    "SHIELD_WORKER_FLUSH_INTERVAL_MS": "200",
    "SHIELD_WORKER_METRICS_PORT": "0",
}


@dataclass
class WorkerProc:
    instance: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    async def exited(self, timeout_s: float = 30) -> int:
        """The exit status, waiting (off the event loop) up to ``timeout_s``."""
        return await asyncio.to_thread(self.proc.wait, timeout_s)

    def running(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def worker_env(
    rendered: Path, redis: RedisServer, pg: PostgresServer, database: str, **overrides: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIELD_")}
    env.update(FAST_ENV)
    env.update({
        "PYTHONPATH": str(rendered),
        "SHIELD_REDIS_HOST": "127.0.0.1", "SHIELD_REDIS_PORT": str(redis.port),
        "SHIELD_REDIS_DB": "0", "SHIELD_REDIS_PASSWORD": redis.password,
        "SHIELD_POSTGRES_HOST": "127.0.0.1", "SHIELD_POSTGRES_PORT": str(pg.port),
        "SHIELD_POSTGRES_DB": database, "SHIELD_POSTGRES_USER": pg.user,
        "SHIELD_POSTGRES_PASSWORD": pg.password, "SHIELD_WORKER_HOST": "acceptance",
    })  # fmt: skip
    env.update({f"SHIELD_WORKER_{k.upper()}": v for k, v in overrides.items()})
    return env


@contextmanager
def worker_processes(env: Mapping[str, str], log_dir: Path) -> Iterator[Callable[..., WorkerProc]]:
    """A factory ``spawn(instance, **overrides)``; every process is ended by PID at exit."""
    started: list[WorkerProc] = []

    def spawn(instance: str, **overrides: str) -> WorkerProc:
        e = dict(env)
        e.update({f"SHIELD_WORKER_{k.upper()}": v for k, v in overrides.items()})
        log_path = log_dir / f"worker-{instance}-{len(started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "shield_orchestrator.workers", instance],
                env=e, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        w = WorkerProc(instance, proc, log_path)
        started.append(w)
        return w

    try:
        yield spawn
    finally:
        for w in started:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGKILL)
                w.proc.wait(10)
