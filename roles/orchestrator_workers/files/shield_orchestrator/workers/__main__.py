"""``python -m shield_orchestrator.workers [INSTANCE]``: one worker process (worker@N unit).

INSTANCE (systemd's %i, or SHIELD_WORKER_INSTANCE) makes the consumer name ``host:N``.
Exit status: 0 after a clean stop (SIGTERM/SIGINT, or max tasks per child reached: systemd
starts a fresh process), 1 when the process could not start or run, 2 on a config error.
A stop that abandoned tasks past their hard deadline (an engine ignoring cancellation) exits
0 at once: asyncio.run() would otherwise wait for them forever.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from shield_orchestrator import keys
from shield_orchestrator.database.pool import create_pool
from shield_orchestrator.engines.base import Engine
from shield_orchestrator.engines.factory import SINGLE_WRITER, create_engine
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.logs import setup_logging
from shield_orchestrator.services.redis_client import create_redis
from shield_orchestrator.settings import Settings, load_settings
from shield_orchestrator.workers.defaults import WORKSPACES_PER_PROCESS
from shield_orchestrator.workers.worker_pool import PoolConfig, consumer_name
from shield_orchestrator.workers.workspaces import WorkspacePools

log = logging.getLogger("shield_orchestrator.workers")


def per_host_leases(settings: Settings) -> bool:
    """Whether the engine's workspace leases are per host (file storages: the engine's rule)."""
    if settings.engine not in SINGLE_WRITER:
        return False
    from shield_orchestrator.engines import lightrag_setup
    from shield_orchestrator.engines.config import EngineConfig

    return not lightrag_setup.uses_postgres(EngineConfig.from_settings(settings))


async def serve(settings: Settings) -> int:
    """Run the process's pools until a signal (or max tasks per child); returns the exit status."""
    config = PoolConfig.from_settings(settings)
    single_writer = settings.engine in SINGLE_WRITER
    served = WORKSPACES_PER_PROCESS if single_writer else len(keys.WORKSPACES)
    # per workspace: the pool's blocked XREADGROUP, acker, leases, the query loop's blocked
    # XREADGROUP and replies; plus the process's own loops
    redis = create_redis(settings, max_connections=8 + 6 * served)

    def make_engine(workspace: str) -> Engine:
        return create_engine(settings, workspace, lease_wait_s=0)

    async def db_factory() -> Any:
        return await create_pool(settings, min_size=1, max_size=2)

    consumer = consumer_name(settings.worker_instance, settings.worker_host)
    pool = WorkspacePools(redis, make_engine, config, consumer, db_factory,
                          engine_name=settings.engine, single_writer=single_writer,
                          per_host=per_host_leases(settings))  # fmt: skip
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, pool.request_stop, sig.name)  # only sets an event
    try:
        await pool.run()
    finally:
        await pool.close()
        await redis.aclose()
    if pool.abandoned:
        _exit_abandoning(pool.abandoned)
    return 0


def _exit_abandoning(tasks: Sequence[str]) -> NoReturn:
    log.warning(
        "exiting without waiting for %d abandoned tasks (%s)",
        len(tasks),
        ", ".join(tasks),
        extra={"action": "exit_abandoning"},
    )
    logging.shutdown()
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shield_orchestrator.workers")
    parser.add_argument("instance", nargs="?", help="instance number (systemd %%i)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        settings = load_settings(instance=args.instance)
    except ConfigError as exc:
        log.error("%s", exc, extra={"action": "config_error"})
        return 2
    try:
        return asyncio.run(serve(settings))
    except Exception:
        log.exception("worker failed", extra={"action": "worker_failed"})
        return 1


if __name__ == "__main__":
    sys.exit(main())
