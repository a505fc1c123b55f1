"""engines/workspace_settings.py: a workspace's own engine settings, checked and merged.

Pure logic (no Redis, no PostgreSQL): the declaration is passed in, as keys.WORKSPACE_ENTRIES
is in production. A bad value fails naming the workspace's entry, the key and value, and the
keys a workspace may set; the worker's engine for it carries its own settings over the
deployment's.
"""

from __future__ import annotations

from typing import Any

import pytest
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.workspace_settings import ENGINE_KEYS, engine_config, own_settings
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.settings import Settings

ALLOWED = ", ".join(ENGINE_KEYS)


def _declared(engine: Any) -> list[dict[str, Any]]:
    return [{"name": "default"}, {"name": "code", "engine": engine}]


def test_a_workspace_without_settings_of_its_own_has_none() -> None:
    assert own_settings("default", _declared({"chunk_token_size": 900})) == {}
    assert own_settings("code", _declared(None)) == {}  # `engine:` left empty in YAML
    assert own_settings("code", _declared({})) == {}
    assert own_settings("elsewhere", _declared({"chunk_token_size": 900})) == {}


def test_its_own_settings_are_returned() -> None:
    chosen = {"chunk_token_size": 900, "offline_max_entities": 3, "max_parallel_insert": 12}
    assert own_settings("code", _declared(chosen)) == chosen


@pytest.mark.parametrize(
    ("engine", "named"),
    [
        ({"storage": "file"}, ["orchestrator_workspaces[name=code].engine.storage", ALLOWED]),
        ({"chunk_token_size": 0}, ["engine.chunk_token_size", "0", "integer >= 1"]),
        ({"chunk_token_size": True}, ["engine.chunk_token_size", "True", "integer >= 1"]),
        ({"chunk_token_size": "900"}, ["engine.chunk_token_size", "'900'", "integer >= 1"]),
        (900, ["orchestrator_workspaces[name=code].engine'", "900", "mapping", ALLOWED]),
    ],
)
def test_a_bad_setting_names_the_workspace_the_key_and_the_fix(
    engine: Any, named: list[str]
) -> None:
    with pytest.raises(ConfigError) as refused:
        own_settings("code", _declared(engine))
    assert all(n in str(refused.value) for n in named), str(refused.value)


def test_the_engine_config_carries_the_workspaces_own_settings_over_the_deployments() -> None:
    settings = Settings(engine="offline", worker_instance="7")
    deployment = EngineConfig()
    declared = _declared({"chunk_token_size": 900, "llm_model_max_async": 2})
    code = engine_config(settings, "code", declared=declared, workspace_lock_wait_s=0)
    assert (code.workspace, code.chunk_token_size, code.llm_model_max_async) == ("code", 900, 2)
    assert code.max_parallel_insert == deployment.max_parallel_insert
    assert (code.lock_owner, code.workspace_lock_wait_s) == ("7", 0)  # from settings, overrides
    plain = engine_config(settings, "default", declared=declared)
    assert plain == EngineConfig.from_settings(settings, workspace="default")


def test_settings_that_break_the_engines_own_rule_name_the_workspace() -> None:
    """max_parallel_insert below llm_model_max_async: LLM slots would idle (EngineConfig)."""
    settings = Settings(engine="offline")
    with pytest.raises(ConfigError) as refused:
        engine_config(settings, "code", declared=_declared({"max_parallel_insert": 1}))
    message = str(refused.value)
    assert "orchestrator_workspaces[name=code].engine" in message
    assert "{'max_parallel_insert': 1}" in message
    assert "llm_model_max_async" in message
