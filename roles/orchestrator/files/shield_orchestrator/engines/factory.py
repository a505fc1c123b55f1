"""Build the configured engine by name (the only place that knows every engine)."""

from __future__ import annotations

from shield_orchestrator.engines.base import Engine
from shield_orchestrator.engines.noop import NoopEngine
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.settings import Settings

# Every engine by name; the roles' argument_specs `choices` and preflight lists must equal it
# (tests/render/test_choices.py).
ENGINES = ("offline", "lightrag", "lightrag_server", "noop")


def create_engine(settings: Settings) -> Engine:
    """The engine named by ``settings.engine``; ConfigError for an unknown name.

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
        from shield_orchestrator.engines.config import EngineConfig

        config = EngineConfig.from_settings(settings)
        if name == "offline":
            from shield_orchestrator.engines.offline import OfflineEngine

            return OfflineEngine(config)
        if name == "lightrag":
            from shield_orchestrator.engines.lightrag_inproc import LightRAGEngine

            return LightRAGEngine(config)
        from shield_orchestrator.engines.lightrag_server import LightRAGServerEngine

        return LightRAGServerEngine(config)
    raise ConfigError("engine", name, f"Not a known engine ({', '.join(ENGINES)}).")
