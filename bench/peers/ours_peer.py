"""Producer for our pool: jobs created through JobRegistry (the API's path, without HTTP).

Runs in the project's venv with the rendered package on PYTHONPATH; settings from the
SHIELD_* environment (settings.load_settings). Each ``enqueue K`` creates K/100 jobs of 100
chunks, 8 jobs in flight at a time.
"""

from __future__ import annotations

import asyncio
import os

import _proto
from shield_orchestrator.database.pool import create_pool
from shield_orchestrator.services.job_registry import JobRegistry, NewChunk, NewJob
from shield_orchestrator.services.redis_client import create_redis
from shield_orchestrator.settings import load_settings

JOB_CHUNKS = int(os.environ.get("BENCH_JOB_CHUNKS", "100"))
JOBS_IN_FLIGHT = 8

_state: dict[str, object] = {}


async def _startup() -> None:
    settings = load_settings()
    _state["redis"] = create_redis(settings, max_connections=JOBS_IN_FLIGHT + 2)
    _state["db"] = await create_pool(settings, min_size=1, max_size=JOBS_IN_FLIGHT)
    _state["registry"] = JobRegistry(
        _state["redis"], _state["db"], max_queue_pending=10**9, idempotency_ttl_s=60
    )  # type: ignore[arg-type]


def _job(n: int, serial: int) -> NewJob:
    chunks = [NewChunk(text=f"noop {serial}.{i}", source_uri=f"bench://{serial}/{i}")
              for i in range(n)]  # fmt: skip
    return NewJob(chunks=chunks, source_type="text", workspace="default")


async def _enqueue(n: int) -> None:
    registry: JobRegistry = _state["registry"]  # type: ignore[assignment]
    sizes = [JOB_CHUNKS] * (n // JOB_CHUNKS) + ([n % JOB_CHUNKS] if n % JOB_CHUNKS else [])
    serial = int(_state.get("serial", 0))  # type: ignore[call-overload]
    for start in range(0, len(sizes), JOBS_IN_FLIGHT):
        batch = sizes[start : start + JOBS_IN_FLIGHT]
        await asyncio.gather(*(registry.create(_job(k, serial + i)) for i, k in enumerate(batch)))
        serial += len(batch)
    _state["serial"] = serial


async def _shutdown() -> None:
    await _state["redis"].aclose()  # type: ignore[attr-defined]
    await _state["db"].close()  # type: ignore[attr-defined]


def main() -> None:
    _proto.use_uvloop()
    asyncio.run(_proto.serve_async(_enqueue, _startup, _shutdown))


if __name__ == "__main__":
    main()
