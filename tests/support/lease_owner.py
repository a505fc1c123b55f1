"""A process that owns a LightRAG workspace lease: ``python -m tests.support.lease_owner
REDIS_URL WORKDIR HOST``. It starts the real offline engine (which takes the lease and renews
it), prints ``started``, and lives until it is killed: the owner a test sends SIGKILL to."""

from __future__ import annotations

import asyncio
import sys


async def _own(redis_url: str, workdir: str, host: str) -> None:
    from shield_orchestrator.engines.config import EngineConfig
    from shield_orchestrator.engines.offline import OfflineEngine

    config = EngineConfig(workspace="shared", working_dir=workdir, storage="file",
                          vector_storage="file", redis_url=redis_url, workspace_lock_ttl_s=3,
                          host=host, lock_owner="1", workspace_lock_wait_s=0)  # fmt: skip
    await OfflineEngine(config).start()
    print("started", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_own(*sys.argv[1:4]))
