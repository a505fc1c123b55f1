"""Each role's meta/argument_specs.yml describes exactly the variables of its defaults/main.yml.

The defaults file is the operators' reference and the argument spec is what Ansible validates at
role start: a knob added to one and not the other fails here, naming the file to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())
TYPES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _defaults(role: str) -> dict[str, Any]:
    return dict(_load(REPO / "roles" / role / "defaults" / "main.yml") or {})


def _options(role: str) -> dict[str, dict[str, Any]]:
    spec = _load(REPO / "roles" / role / "meta" / "argument_specs.yml")
    return dict(spec["argument_specs"]["main"]["options"])


@pytest.mark.parametrize("role", ROLES)
def test_spec_lists_exactly_the_defaults(role: str) -> None:
    defaults, options = set(_defaults(role)), set(_options(role))
    missing, extra = sorted(defaults - options), sorted(options - defaults)
    assert not missing, (
        f"roles/{role}/meta/argument_specs.yml lacks {missing} (in defaults/main.yml)"
    )
    assert not extra, (
        f"roles/{role}/meta/argument_specs.yml has {extra}, absent from defaults/main.yml"
    )


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_and_types_match(role: str) -> None:
    defaults, options = _defaults(role), _options(role)
    wrong = []
    for name, value in defaults.items():
        opt = options.get(name, {})
        if opt.get("default") != value:
            wrong.append(f"{name}: spec default {opt.get('default')!r} != defaults {value!r}")
        templated = isinstance(value, str) and "{{" in value
        if not templated and opt.get("type") != "raw" and opt.get("type") != TYPES[type(value)]:
            wrong.append(
                f"{name}: spec type {opt.get('type')!r} but the default is a {TYPES[type(value)]}"
            )
    assert not wrong, f"roles/{role}/meta/argument_specs.yml: " + "; ".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_every_option_is_described(role: str) -> None:
    bare = [n for n, o in _options(role).items() if len(str(o.get("description", ""))) < 8]
    assert not bare, f"roles/{role}/meta/argument_specs.yml: describe {bare}"


@pytest.mark.parametrize("role", ROLES)
def test_secrets_are_no_log(role: str) -> None:
    leaky = [
        n
        for n, o in _options(role).items()
        if any(w in n for w in ("password", "api_key")) and not o.get("no_log")
    ]
    assert not leaky, f"roles/{role}/meta/argument_specs.yml: set no_log: true on {leaky}"


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role: str) -> None:
    prefix: str | tuple[str, ...] = {"postgresql": "postgresql_", "redis": "redis_"}.get(
        role, "orchestrator_"
    )
    if role in ("orchestrator_workers", "orchestrator_indexer"):
        prefix = role + "_"
    if role == "orchestrator_indexer":  # and the deployment's list the play registers (issue 17)
        prefix = ("orchestrator_indexer_", "orchestrator_repositories")
    if role == "temporal":  # its own knobs, and where the indexers (clients) connect
        prefix = ("temporal_", "orchestrator_temporal_")
    odd = [n for n in _defaults(role) if not n.startswith(prefix)]
    assert not odd, f"roles/{role}/defaults/main.yml: public variables start with {prefix}: {odd}"


@pytest.mark.parametrize("role", ROLES)
def test_readme_lists_every_variable(role: str) -> None:
    readme = (REPO / "roles" / role / "README.md").read_text(encoding="utf-8")
    missing = [n for n in _defaults(role) if f"`{n}`" not in readme]
    assert not missing, f"roles/{role}/README.md does not list {missing}"
