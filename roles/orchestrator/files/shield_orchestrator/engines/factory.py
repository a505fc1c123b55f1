"""Build the configured engine by name (the only place that knows every engine)."""

from __future__ import annotations

from typing import Any

from shield_orchestrator.engines.base import Engine
from shield_orchestrator.engines.noop import NoopEngine
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.settings import Settings

# Every engine by name; the roles' argument_specs `choices` and preflight lists must equal it
# (tests/render/test_choices.py).
ENGINES = ("offline", "lightrag", "lightrag_server", "noop")
# Engines that write a workspace's graph from inside the worker process: LightRAG allows one such
# process per workspace, so a workspace is served by its owner only (the engine takes the lease at
# start: engines/workspace_lock.py). The others serve every workspace from every process.
SINGLE_WRITER = frozenset({"offline", "lightrag"})


def create_engine(
    settings: Settings, workspace: str | None = None, lease_wait_s: float | None = None
) -> Engine:
    """The engine named by ``settings.engine`` for ``workspace`` (default: the first declared),
    with that workspace's own engine settings (engines/workspace_settings.py); ConfigError for
    an unknown name or a bad setting. ``lease_wait_s``: how long a single-writer engine's start
    waits for the workspace's lease (None: one lease TTL; 0: refuse at once when it is held).

    Engines with heavy imports (lightrag) are imported here lazily, only when chosen.
    """
    name = settings.engine
    if name == "noop":
        overrides = settings.worker_overrides
        return NoopEngine(
            delay_s=overrides.get("noop_delay_ms", 0) / 1000.0,
            max_concurrency=overrides.get("noop_max_concurrency", 1024),
        )
    if name in ("offline", "lightrag", "lightrag_server"):
        from shield_orchestrator.engines.workspace_settings import engine_config
        from shield_orchestrator.keys import WORKSPACES

        chosen: dict[str, Any] = {}
        if lease_wait_s is not None:
            chosen["workspace_lock_wait_s"] = lease_wait_s
        config = engine_config(settings, workspace or WORKSPACES[0], **chosen)
        if name == "offline":
            from shield_orchestrator.engines.offline import OfflineEngine

            return OfflineEngine(config)
        if name == "lightrag":
            from shield_orchestrator.engines.lightrag_inproc import LightRAGEngine

            return LightRAGEngine(config)
        from shield_orchestrator.engines.lightrag_server import LightRAGServerEngine

        return LightRAGServerEngine(config)
    raise ConfigError("engine", name, f"Not a known engine ({', '.join(ENGINES)}).")
