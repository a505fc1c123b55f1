"""arq (Redis sorted-set queue), a no-op job.

Worker: ``python arq_peer.py worker`` (run_worker with the settings below).
Producer: ``python arq_peer.py`` speaks bench/peers/_proto.py.
Env: BENCH_REDIS_URL, BENCH_MAX_JOBS (jobs in flight per process), BENCH_POLL_DELAY_S.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import _proto
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import run_worker

URL = os.environ["BENCH_REDIS_URL"]


async def noop(ctx: dict[str, Any]) -> None:
    return None


class WorkerSettings:
    functions = [noop]  # noqa: RUF012 - arq reads class attributes
    redis_settings = RedisSettings.from_dsn(URL)
    max_jobs = int(os.environ.get("BENCH_MAX_JOBS", "10"))
    poll_delay = float(os.environ.get("BENCH_POLL_DELAY_S", "0.5"))
    keep_result = 0  # no result storage: the fastest setting
    handle_signals = True


_pool: list[ArqRedis] = []


async def _startup() -> None:
    _pool.append(await create_pool(WorkerSettings.redis_settings))


async def _enqueue(n: int) -> None:
    redis = _pool[0]
    await _proto.windowed(lambda: redis.enqueue_job("noop"), n)


async def _shutdown() -> None:
    await _pool[0].aclose()


def main() -> None:
    _proto.use_uvloop()
    if sys.argv[1:] == ["worker"]:
        asyncio.set_event_loop(asyncio.new_event_loop())
        run_worker(WorkerSettings)  # type: ignore[arg-type]
        return
    asyncio.run(_proto.serve_async(_enqueue, _startup, _shutdown))


if __name__ == "__main__":
    main()
