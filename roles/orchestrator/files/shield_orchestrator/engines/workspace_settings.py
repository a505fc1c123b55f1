"""A workspace's own engine settings (``orchestrator_workspaces: [{name, engine: {...}}]``).

A declared workspace may change a closed set of its engine's settings, ENGINE_KEYS; every other
setting is the deployment's (``orchestrator_engine_*``). The engine of a workspace is built from
:func:`engine_config` (engines/factory.py; storage_check.py checks every declared workspace
with it). ENGINE_KEYS is the one list of these keys in the code; the orchestrator role's
argument_specs (``orchestrator_workspaces.options.engine.options``) and its preflight
(``__orchestrator_workspace_engine_defaults``) name the same keys (tests/render/test_choices.py).

Why these keys and no others (lightrag-hku 1.5.7):

- Isolation needs no setting: the workspace's name is its storage namespace. LightRAG's
  PostgreSQL storages share fixed tables (``lightrag_doc_status``, ``lightrag_vdb_*_<model>``,
  ...) and key every row by a ``workspace`` column (there is no schema or table prefix option);
  Milvus Lite names collections ``<workspace>_*``; the file storages write under
  ``<working_dir>/<workspace>/``. POSTGRES_WORKSPACE, which would override every instance's
  workspace in the process, is exported empty (lightrag_setup.postgres_environment).
- Deployment-wide by necessity: the storages, the database, the pgvector index and the pool
  size (one process-wide PostgreSQL pool, ClientManager, configured from the environment and
  refusing a second vector setup), and the embedding model and dimension (another one moves a
  workspace's vectors to another table or collection: its graph would drop out of queries).
- Per LightRAG instance, so per workspace: how documents are split (``chunk_token_size``), its
  own limiters (``llm_model_max_async``, ``max_parallel_insert`` and with it the chunks the pool
  keeps in flight for the workspace, ``embedding_max_async``), and the offline engine's entity
  extraction (``offline_max_entities``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.keys import WORKSPACE_ENTRIES
from shield_orchestrator.settings import Settings

# key of orchestrator_workspaces[].engine -> the deployment-wide variable it overrides; each
# key is also the EngineConfig field it sets. Every value is an integer >= MINIMUM.
ENGINE_KEYS: dict[str, str] = {
    "chunk_token_size": "orchestrator_engine_chunk_token_size",
    "llm_model_max_async": "orchestrator_engine_llm_model_max_async",
    "max_parallel_insert": "orchestrator_engine_max_parallel_insert",
    "embedding_max_async": "orchestrator_engine_embedding_max_async",
    "offline_max_entities": "orchestrator_engine_offline_max_entities",
}
MINIMUM = 1


def _where(workspace: str, key: str | None = None) -> str:
    """How an operator finds the value: the workspace's entry in orchestrator_workspaces."""
    return f"orchestrator_workspaces[name={workspace}].engine" + (f".{key}" if key else "")


def own_settings(
    workspace: str, declared: Sequence[Mapping[str, Any]] = WORKSPACE_ENTRIES
) -> dict[str, int]:
    """The engine settings ``workspace`` declares for itself (checked); {} when it declares
    none, or is not declared (a test's or tool's own workspace)."""
    entry = next((w for w in declared if w.get("name") == workspace), None)
    engine = None if entry is None else entry.get("engine")
    if engine is None:
        return {}
    allowed = ", ".join(ENGINE_KEYS)
    if not isinstance(engine, Mapping):
        raise ConfigError(
            _where(workspace), engine, f"Must be a mapping of engine settings ({allowed})."
        )
    chosen: dict[str, int] = {}
    for key, value in engine.items():
        if key not in ENGINE_KEYS:
            raise ConfigError(
                _where(workspace, str(key)),
                value,
                f"Not a per-workspace engine setting; a workspace may set {allowed} (any other "
                "setting is the deployment's orchestrator_engine_*).",
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < MINIMUM:
            raise ConfigError(_where(workspace, key), value, f"Must be an integer >= {MINIMUM}.")
        chosen[key] = value
    return chosen


def engine_config(
    settings: Settings,
    workspace: str,
    *,
    declared: Sequence[Mapping[str, Any]] = WORKSPACE_ENTRIES,
    **overrides: Any,
) -> EngineConfig:
    """The EngineConfig of ``workspace``: the deployment's engine settings, the workspace's own
    (:func:`own_settings`), then ``overrides`` (the factory's lease wait; tests)."""
    own = own_settings(workspace, declared)
    try:
        return EngineConfig.from_settings(settings, workspace=workspace, **{**own, **overrides})
    except ConfigError as exc:
        if not own:
            raise
        raise ConfigError(
            _where(workspace),
            own,
            f"With this workspace's settings the engine's configuration is invalid: {exc} "
            "Fix the workspace's engine settings (or the orchestrator_engine_* they combine with).",
        ) from exc
