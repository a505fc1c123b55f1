"""One list per knob of the worker pool (roles/orchestrator_workers): the role default,
meta/argument_specs.yml (type and default), the preflight minimum (vars/main.yml
``__orchestrator_workers_min``, looped by one assert in tasks/preflight.yml) and the rendered
constant agree, and the alt tree renders the alt values.

Each knob is either rendered as exactly one constant, or read by the deployment (tasks, the
unit, playbooks). The environment side (SHIELD_WORKER_<FIELD> -> PoolConfig) is
tests/unit/test_worker_config.py.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.render.templates import REPO, Knob, knobs, role_values

ROLE = REPO / "roles" / "orchestrator_workers"
PREFIX = "orchestrator_workers_"


def _yaml(rel: str) -> Any:
    return yaml.safe_load((ROLE / rel).read_text())


DEFAULTS: dict[str, Any] = _yaml("defaults/main.yml")
SPECS: dict[str, Any] = _yaml("meta/argument_specs.yml")["argument_specs"]["main"]["options"]
MINIMA: dict[str, int] = _yaml("vars/main.yml")["__orchestrator_workers_min"]
ALT: dict[str, Any] = yaml.safe_load((REPO / "tests" / "render" / "alt_values.yml").read_text())
INTEGERS = sorted(k for k, v in DEFAULTS.items() if isinstance(v, int))
RENDERED: dict[str, list[Knob]] = {}
for _knob in knobs():
    RENDERED.setdefault(_knob.var, []).append(_knob)


def _deployment_text() -> str:
    """What the deployment reads: the role's tasks and unit template, and the playbooks."""
    paths = [*ROLE.glob("tasks/*.yml"), *ROLE.glob("templates/*.service.j2")]
    paths += (REPO / "playbooks").glob("*.yml")
    return "\n".join(p.read_text() for p in paths)


def test_the_role_has_pool_knobs() -> None:
    assert len(INTEGERS) >= 15
    assert {"orchestrator_workers_reclaim_idle_ms", "orchestrator_workers_flush_max_jobs"} <= set(
        INTEGERS
    )


def test_every_integer_knob_has_one_minimum_and_no_minimum_is_stale() -> None:
    assert sorted(MINIMA) == INTEGERS


@pytest.mark.parametrize("var", INTEGERS)
def test_default_spec_and_minimum_agree(var: str) -> None:
    spec = SPECS[var]
    assert (spec["type"], spec["default"]) == ("int", DEFAULTS[var])
    assert DEFAULTS[var] >= MINIMA[var], f"the default of {var} fails its own preflight"
    if var in ALT:
        assert int(ALT[var]) >= MINIMA[var], f"the alt value of {var} fails the preflight"


@pytest.mark.parametrize("var", sorted(DEFAULTS))
def test_each_knob_is_rendered_once_or_read_by_the_deployment(var: str) -> None:
    rendered = RENDERED.get(var, [])
    assert len(rendered) <= 1, f"{var} is rendered twice: {rendered}"
    assert rendered or var in _deployment_text(), f"{var} is read by nothing"


@pytest.mark.parametrize("var", sorted(v for v in RENDERED if v.startswith(PREFIX)))
def test_the_alt_tree_sets_every_rendered_knob_to_another_value(var: str) -> None:
    assert var in ALT, f"tests/render/alt_values.yml does not set {var}"
    assert ALT[var] != DEFAULTS[var], f"the alt value of {var} is its default: proves nothing"


@pytest.mark.parametrize("var", sorted(v for v in RENDERED if v.startswith(PREFIX)))
def test_the_rendered_constant_is_this_trees_value(var: str, rendered_root: Path) -> None:
    (knob,) = RENDERED[var]
    values = role_values("alt" if rendered_root.name == "alt" else "default")
    constant = getattr(importlib.import_module(knob.module), knob.name)
    assert constant == int(values[var])  # type: ignore[call-overload]
    assert constant >= MINIMA[var]
