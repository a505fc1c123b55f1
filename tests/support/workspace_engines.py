"""The real offline LightRAG engine sized for tests of workspace ownership.

``offline_factory(workdir)`` returns what ``engines.factory.create_engine`` returns in
production for engine ``offline`` (the same OfflineEngine, which takes the workspace's Redis
lease at start and renews it), with file storages under ``workdir`` and a 3-second lease, so a
hand-over after SIGKILL takes seconds. ``python -m tests.support.workspace_engines N`` is the
real worker entry (``shield_orchestrator.workers``) with that factory: set SHIELD_ENGINE=offline
and TEST_LIGHTRAG_WORKDIR.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

LEASE_TTL_S = 3


def offline_factory(workdir: str) -> Callable[..., Any]:
    def create(
        settings: Any, workspace: str | None = None, lease_wait_s: float | None = None
    ) -> Any:
        from shield_orchestrator import keys
        from shield_orchestrator.engines.config import EngineConfig
        from shield_orchestrator.engines.offline import OfflineEngine

        config = EngineConfig.from_settings(
            settings,
            workspace=workspace or keys.WORKSPACES[0],
            working_dir=workdir,
            storage="file",
            vector_storage="file",
            workspace_lock_ttl_s=LEASE_TTL_S,
            workspace_lock_wait_s=0 if lease_wait_s is None else lease_wait_s,
        )
        return OfflineEngine(config)

    return create


def main() -> int:
    from shield_orchestrator.workers import __main__ as entry

    entry.create_engine = offline_factory(os.environ["TEST_LIGHTRAG_WORKDIR"])  # type: ignore[assignment]
    return int(entry.main(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
