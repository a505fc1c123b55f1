"""A process that answers queries the way a worker process does, for acceptance tests:
``python -m tests.support.query_worker N``.

It builds the engine the worker would (engines.factory with the process's settings:
SHIELD_ENGINE, noop in the tests), starts it, and for every declared workspace runs
services/query_server.serve_queries with ``engine.query`` as the answer, consumer ``host:N``,
until SIGTERM. These are the lines workers/workspaces.py runs per workspace it serves; once it does,
the acceptance test spawns the real worker (tests.support.procs) instead of this process.
"""

from __future__ import annotations

import asyncio
import signal
import sys


async def serve(instance: str) -> int:
    from shield_orchestrator.api.models import WORKSPACES
    from shield_orchestrator.engines.factory import create_engine
    from shield_orchestrator.services.query_server import serve_queries
    from shield_orchestrator.services.redis_client import create_redis
    from shield_orchestrator.settings import load_settings
    from shield_orchestrator.workers.worker_pool import consumer_name

    settings = load_settings()
    redis = create_redis(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    consumer = consumer_name(instance, settings.worker_host)
    engine = create_engine(settings)  # noop: one engine serves every workspace
    await engine.start()
    try:
        await asyncio.gather(
            *(serve_queries(redis, ws, consumer, engine.query, stop) for ws in WORKSPACES)
        )
    finally:
        await engine.close()
        await redis.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(serve(sys.argv[1] if len(sys.argv) > 1 else "1")))
