"""Worker processes of a test: ``python -m shield_orchestrator.workers N`` (or the fault
suite's recording wrapper of it, ``tests.faults.recording_worker``).

The environment points them at the test's Redis and PostgreSQL and overrides the pool's knobs
with short test values (settings.py reads SHIELD_WORKER_*). Every process is ended by PID
when its block ends; its log is kept in a file the test can read.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.servers import PostgresServer, RedisServer

REPO = Path(__file__).resolve().parents[2]
WORKER_MODULE = "shield_orchestrator.workers"
RECORDING_MODULE = "tests.faults.recording_worker"

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
    "SHIELD_WORKER_HOST": "acceptance",
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

    def left_pending(self) -> int:
        """What the worker's last ``worker_stopped`` line says it left pending in the group
        (the entries it fetched and did not finish); AssertionError when it never said it."""
        found = re.findall(r"left_pending=(\d+)", self.log())
        assert found, f"no worker_stopped line in {self.log_path.name}"
        return int(found[-1])


@dataclass
class Fleet:
    """The worker processes of one test, all started with ``env`` plus per-spawn overrides."""

    env: dict[str, str]
    log_dir: Path
    module: str = WORKER_MODULE
    started: list[WorkerProc] = field(default_factory=list)

    def spawn(self, instance: str, **overrides: str) -> WorkerProc:
        env = {**self.env, **{f"SHIELD_WORKER_{k.upper()}": v for k, v in overrides.items()}}
        log_path = self.log_dir / f"worker-{instance}-{len(self.started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", self.module, instance],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            )  # fmt: skip
        worker = WorkerProc(instance, proc, log_path)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log()[-3000:]}" for w in self.started)


def worker_env(
    rendered: Path,
    redis: RedisServer,
    pg: PostgresServer,
    database: str,
    base: Mapping[str, str] = FAST_ENV,
    **overrides: str,
) -> dict[str, str]:
    """The environment of a worker process: ``base`` knobs, then ``overrides`` (by knob name)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIELD_", "FAULTS_"))}
    env.update(base)
    env.update({
        "PYTHONPATH": os.pathsep.join([str(rendered), str(REPO)]),
        "SHIELD_REDIS_HOST": "127.0.0.1", "SHIELD_REDIS_PORT": str(redis.port),
        "SHIELD_REDIS_DB": "0", "SHIELD_REDIS_PASSWORD": redis.password,
        "SHIELD_POSTGRES_HOST": "127.0.0.1", "SHIELD_POSTGRES_PORT": str(pg.port),
        "SHIELD_POSTGRES_DB": database, "SHIELD_POSTGRES_USER": pg.user,
        "SHIELD_POSTGRES_PASSWORD": pg.password,
    })  # fmt: skip
    env.update({f"SHIELD_WORKER_{k.upper()}": v for k, v in overrides.items()})
    return env


@contextmanager
def fleet(env: Mapping[str, str], log_dir: Path, module: str = WORKER_MODULE) -> Iterator[Fleet]:
    """A Fleet whose processes are all ended by PID when the block ends."""
    f = Fleet(dict(env), log_dir, module)
    try:
        yield f
    finally:
        for w in f.started:
            if w.running():
                w.signal(signal.SIGKILL)
                w.proc.wait(10)


@contextmanager
def worker_processes(env: Mapping[str, str], log_dir: Path) -> Iterator[Callable[..., WorkerProc]]:
    """A factory ``spawn(instance, **overrides)`` of real workers, ended by PID at exit."""
    with fleet(env, log_dir) as f:
        yield f.spawn
