"""A workspace's own engine settings: one list of keys, rendered as declared, used when its
engine is built (issue 15).

engines/workspace_settings.ENGINE_KEYS is the code's list; the orchestrator role's argument
spec (orchestrator_workspaces.options.engine.options) and its preflight
(__orchestrator_workspace_engine_defaults) must name the same keys, each overriding the
deployment-wide orchestrator_engine_<key> that EngineConfig's field of that name renders. The
alt tree declares a workspace with settings of its own (tests/render/alt_values.yml).
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import yaml

from tests.render.templates import REPO, knobs, role_values

ROLE = REPO / "roles" / "orchestrator"
PREFLIGHT_TASK = "Check each workspace's own engine settings (orchestrator_workspaces[].engine)"


def _spec_engine_options() -> dict[str, Any]:
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    workspaces = spec["argument_specs"]["main"]["options"]["orchestrator_workspaces"]
    return dict(workspaces["options"]["engine"]["options"])


def _preflight_defaults() -> dict[str, str]:
    tasks = yaml.safe_load((ROLE / "tasks" / "preflight.yml").read_text())
    (task,) = [t for t in tasks if t.get("name") == PREFLIGHT_TASK]
    return dict(task["vars"]["__orchestrator_workspace_engine_defaults"])


def _tree(rendered_root: Path) -> str:
    return "alt" if rendered_root.name == "alt" else "default"


def test_argument_spec_preflight_and_code_name_the_same_keys() -> None:
    from shield_orchestrator.engines.workspace_settings import ENGINE_KEYS

    options = _spec_engine_options()
    assert list(options) == list(ENGINE_KEYS)
    assert {o["type"] for o in options.values()} == {"int"}
    for key, opt in options.items():
        assert ENGINE_KEYS[key] in opt["description"], f"{key}: say which variable it overrides"
    assert _preflight_defaults() == {k: f"{{{{ {v} }}}}" for k, v in ENGINE_KEYS.items()}


def test_each_key_overrides_the_deployment_knob_rendered_into_its_engine_config_field() -> None:
    from shield_orchestrator.engines.config import EngineConfig
    from shield_orchestrator.engines.workspace_settings import ENGINE_KEYS

    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    fields = {f.name for f in dataclasses.fields(EngineConfig)}
    rendered = {k.var: k for k in knobs()}
    for key, variable in ENGINE_KEYS.items():
        assert variable == f"orchestrator_engine_{key}"
        assert isinstance(defaults[variable], int), variable
        assert key in fields, f"EngineConfig has no field {key}"
        knob = rendered[variable]
        constant = getattr(importlib.import_module(knob.module), knob.name)
        assert getattr(EngineConfig(), key) == constant, key


def test_the_declaration_is_rendered_as_given(rendered_root: Path) -> None:
    from shield_orchestrator import keys

    declared = role_values(_tree(rendered_root))["orchestrator_workspaces"]
    assert isinstance(declared, list)
    assert declared == keys.DECLARED_WORKSPACES
    assert declared == list(keys.WORKSPACE_ENTRIES)
    assert tuple(str(w["name"]) for w in declared) == keys.WORKSPACES


def test_each_workspace_engine_is_built_with_its_own_settings(rendered_root: Path) -> None:
    """What the worker builds for each declared workspace (engines.factory.create_engine)."""
    from shield_orchestrator import keys
    from shield_orchestrator.engines.config import EngineConfig
    from shield_orchestrator.engines.factory import create_engine
    from shield_orchestrator.engines.workspace_settings import ENGINE_KEYS
    from shield_orchestrator.settings import Settings

    deployment = EngineConfig()
    own_somewhere = False
    for entry in keys.WORKSPACE_ENTRIES:
        engine = create_engine(Settings(engine="offline"), entry["name"], lease_wait_s=0)
        config = engine.config  # type: ignore[attr-defined]
        own = entry.get("engine") or {}
        own_somewhere = own_somewhere or bool(own)
        assert config.workspace == entry["name"]
        for key in ENGINE_KEYS:
            assert getattr(config, key) == own.get(key, getattr(deployment, key)), key
    # the alt tree proves the settings reach the engine; the default tree declares none
    assert own_somewhere == (_tree(rendered_root) == "alt")
