"""One list per knob, in every role: the role default, meta/argument_specs.yml, the preflight
bounds and the rendered constants agree.

- argument_specs: every default has its option, same type and default
  (tests/repo/test_roles_argument_specs.py, every role).
- Preflight: every integer knob of a role is checked by its tasks/preflight.yml. A role with a
  map of minima (``__<role>_min`` in vars/main.yml, looped by one assert in its preflight) lists
  exactly its integer knobs there, and the default and the alt tree's value pass their minimum;
  the other roles (redis, postgresql, temporal: ports and ranges) name each integer knob in a
  preflight check.
- Rendered constants (the app roles): each knob is rendered as one constant (SHARED names the
  switches rendered into several, and why), or read by the deployment (tasks, templates,
  playbooks); the alt tree sets every rendered integer knob to another value, and each rendered
  constant equals the value its tree was rendered with. The environment side
  (SHIELD_WORKER_<FIELD> -> PoolConfig) is tests/unit/test_worker_config.py.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.render.templates import REPO, Knob, knobs, role_values

ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())
ALT: dict[str, Any] = yaml.safe_load((REPO / "tests" / "render" / "alt_values.yml").read_text())
RENDERED: dict[str, list[Knob]] = {}
for _knob in knobs():
    RENDERED.setdefault(_knob.var, []).append(_knob)
# one switch rendered into several constants of different meaning
SHARED = {
    "orchestrator_tls_enabled": "settings.REDIS_TLS, settings.POSTGRES_TLS, api.config.HTTPS",
    "orchestrator_config_dir": "settings.CONFIG_DIR (clients' CA), api.config.CONFIG_DIR (API key)",
}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def defaults(role: str) -> dict[str, Any]:
    return dict(_yaml(REPO / "roles" / role / "defaults" / "main.yml"))


def minima(role: str) -> dict[str, int] | None:
    path = REPO / "roles" / role / "vars" / "main.yml"
    found = _yaml(path).get(f"__{role}_min") if path.exists() else None
    return None if found is None else dict(found)


def integers(role: str) -> list[str]:
    return sorted(k for k, v in defaults(role).items() if type(v) is int)


def preflight(role: str) -> str:
    return (REPO / "roles" / role / "tasks" / "preflight.yml").read_text(encoding="utf-8")


def _deployment_text() -> str:
    """What the deployment reads: every role's tasks, vars and deployment templates, the plays."""
    paths = [*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("roles/*/vars/*.yml")]
    paths += [p for p in REPO.glob("roles/*/templates/*.j2") if p.is_file()]
    paths += (REPO / "playbooks").glob("*.yml")
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)


def _integer_knobs() -> list[tuple[str, str]]:
    return [(role, var) for role in ROLES for var in integers(role)]


def test_the_roles_have_integer_knobs() -> None:
    assert len(_integer_knobs()) >= 70
    assert "orchestrator_workers_reclaim_idle_ms" in integers("orchestrator_workers")


@pytest.mark.parametrize("role", [r for r in ROLES if minima(r) is not None])
def test_the_minima_map_lists_exactly_the_integer_knobs_and_preflight_loops_it(role: str) -> None:
    found = minima(role)
    assert found is not None
    stale = sorted(set(found) - set(defaults(role)))
    missing = sorted(set(integers(role)) - set(found))
    assert not stale, f"roles/{role}/vars/main.yml __{role}_min names no knob: {stale}"
    assert not missing, f"roles/{role}/vars/main.yml __{role}_min lacks {missing}"
    assert f"__{role}_min | dict2items" in preflight(role), (
        f"roles/{role}/tasks/preflight.yml does not loop __{role}_min"
    )


@pytest.mark.parametrize(("role", "var"), _integer_knobs())
def test_preflight_checks_every_integer_knob(role: str, var: str) -> None:
    found = minima(role)
    if found is not None:
        assert var in found
        assert defaults(role)[var] >= found[var], f"the default of {var} fails its own preflight"
        if var in ALT:
            assert int(ALT[var]) >= found[var], f"the alt value of {var} fails the preflight"
    else:
        assert var in preflight(role), f"roles/{role}/tasks/preflight.yml never checks {var}"


@pytest.mark.parametrize("var", sorted({v for role in ROLES for v in defaults(role)}))
def test_each_knob_is_rendered_once_or_read_by_the_deployment(var: str) -> None:
    rendered = RENDERED.get(var, [])
    if var not in SHARED:
        assert len(rendered) <= 1, f"{var} is rendered twice: {rendered}"
    assert rendered or var in _deployment_text(), f"{var} is read by nothing"


def test_shared_switches_are_rendered_several_times() -> None:
    assert all(len(RENDERED.get(var, [])) > 1 for var in SHARED)


INTEGER_RENDERED = sorted(v for v, ks in RENDERED.items() if all(k.filter == "int" for k in ks))


@pytest.mark.parametrize("var", INTEGER_RENDERED)
def test_the_alt_tree_sets_every_rendered_integer_knob_to_another_value(var: str) -> None:
    all_defaults = {k: v for role in ROLES for k, v in defaults(role).items()}
    assert var in ALT, f"tests/render/alt_values.yml does not set {var}"
    assert ALT[var] != all_defaults.get(var), f"the alt value of {var} is its default"


@pytest.mark.parametrize("var", INTEGER_RENDERED)
def test_the_rendered_constant_is_this_trees_value(var: str, rendered_root: Path) -> None:
    values = role_values("alt" if rendered_root.name == "alt" else "default")
    for knob in RENDERED[var]:
        constant = getattr(importlib.import_module(knob.module), knob.name)
        assert constant == int(values[var])  # type: ignore[call-overload]
        role = next(r for r in ROLES if var in defaults(r))
        found = minima(role)
        if found is not None:
            assert constant >= found[var]
