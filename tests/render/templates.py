"""What the render harness knows about the roles' app templates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
APP_ROLES = {
    "orchestrator": "__orchestrator_templates",
    "orchestrator_workers": "__orchestrator_workers_templates",
}
# the roles whose defaults the app templates read (settings.py: temporal's orchestrator_temporal_*)
VALUE_ROLES = (*APP_ROLES, "temporal")
BLOCK_START = "# --- rendered constants"
BLOCK_END = "# --- end of rendered constants"
# NAME = {{ variable | filter }}  (one knob per line, filter among the safe ones)
KNOB = re.compile(
    r"^(?P<name>[A-Z][A-Z0-9_]*) = \{\{ (?P<var>[a-z_][a-z0-9_]*) \| (?P<filter>[a-z_]+) \}\}"
    r"(?:  # .*)?$"  # the value alone: a unit conversion belongs below the block
)
SAFE_FILTERS = {"int", "bool", "float", "to_json"}


@dataclass(frozen=True)
class Knob:
    module: str  # dotted module name in the rendered package
    name: str
    var: str
    filter: str


def template_dir(role: str) -> Path:
    return REPO / "roles" / role / "templates" / "shield_orchestrator"


def listed_templates(role: str) -> list[str]:
    data = yaml.safe_load((REPO / "roles" / role / "vars" / "main.yml").read_text())
    return list(data[APP_ROLES[role]])


def templates_on_disk(role: str) -> list[str]:
    base = template_dir(role)
    return sorted(str(p.relative_to(base))[: -len(".j2")] for p in base.rglob("*.py.j2"))


def knobs() -> list[Knob]:
    found = []
    for role in APP_ROLES:
        for rel in templates_on_disk(role):
            module = "shield_orchestrator." + rel[: -len(".py")].replace("/", ".")
            for line in (template_dir(role) / f"{rel}.j2").read_text().splitlines():
                m = KNOB.match(line)
                if m:
                    found.append(Knob(module, m["name"], m["var"], m["filter"]))
    return found


def role_values(variant: str) -> dict[str, object]:
    """The values a tree was rendered with: role defaults, overridden by alt_values for 'alt',
    and the roles' private vars that a template's knob renders."""
    values: dict[str, object] = {}
    for role in VALUE_ROLES:
        values.update(yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text()))
    if variant == "alt":
        values.update(yaml.safe_load((REPO / "tests" / "render" / "alt_values.yml").read_text()))
    # a default may name a role's private vars (e.g. orchestrator_tls_enabled ->
    # __orchestrator_tls_auto): they are visible to the templar, as in the play
    private: dict[str, object] = {}
    for role in VALUE_ROLES:
        role_vars = REPO / "roles" / role / "vars" / "main.yml"
        if role_vars.exists():
            private.update(yaml.safe_load(role_vars.read_text()) or {})
    context = {**{k: _trusted(v) for k, v in {**private, **values}.items()}, "groups": {}}
    resolved = {name: _resolve(value, context) for name, value in values.items()}
    # a knob may render a private var derived from public ones (e.g. Temporal's TLS file paths)
    for var in {knob.var for knob in knobs()} - resolved.keys():
        if var in private:
            resolved[var] = _resolve(private[var], context)
    return resolved


def _trusted(value: object) -> object:
    """A string of the roles' own files, trusted as a template (as the play trusts them), so
    that a default naming another templated variable resolves it in turn."""
    if isinstance(value, str) and "{{" in value:
        from ansible.template import trust_as_template

        return trust_as_template(value)
    return value


def _resolve(value: object, values: dict[str, object]) -> object:
    """A templated default as the render play resolves it (Ansible's templar, no facts)."""
    if not (isinstance(value, str) and "{{" in value):
        return value
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    templar = Templar(loader=DataLoader(), variables={**values, "ansible_facts": {}})
    return templar.template(trust_as_template(value))
