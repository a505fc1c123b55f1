"""Bring a role's meta/argument_specs.yml and README.md variable table up to date with defaults.

    .venv/bin/python -m tests.repo.role_docs orchestrator_workers

New variables get a spec entry (type from the default, description from the comment on or
above the line); existing entries keep their hand-written description, choices and no_log.
The README table between the markers is regenerated. test_roles_argument_specs.py checks the
result.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- variables:begin -->", "<!-- variables:end -->"
TYPES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


def _comments(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip()
            pending = [] if text.startswith("---") else [*pending, text] if text else pending
            continue
        m = re.match(r"^([a-z_][a-z0-9_]*):.*?(?:\s+#\s*(.*))?$", line)
        if m:
            parts = [p for p in (m.group(2), " ".join(pending)) if p]
            out[m.group(1)] = " ".join(parts) or m.group(1).replace("_", " ")
            pending = []
        elif not line.strip():
            pending = []
    return out


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, s: str) -> yaml.ScalarNode:
    quote = s == "" or any(c in s for c in ":{}#'\"[]") or s.lower() in ("no", "yes", "on", "off")
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"' if quote else None)


_Dumper.add_representer(str, _str)


def sync_spec(role: str) -> dict[str, Any]:
    base = REPO / "roles" / role
    defaults = yaml.safe_load((base / "defaults" / "main.yml").read_text()) or {}
    spec_path = base / "meta" / "argument_specs.yml"
    spec = yaml.safe_load(spec_path.read_text()) if spec_path.exists() else None
    main = (spec or {}).get("argument_specs", {}).get("main", {"short_description": role})
    old = main.get("options", {})
    notes = _comments(base / "defaults" / "main.yml")
    options: dict[str, Any] = {}
    for name, value in defaults.items():
        opt = dict(old.get(name, {}))
        templated = isinstance(value, str) and "{{" in value
        opt["type"] = opt.get("type") if templated and "type" in opt else TYPES[type(value)]
        opt["default"] = value
        opt.setdefault("description", notes.get(name, name))
        if opt["type"] == "list":
            opt.setdefault("elements", "str")
        if any(w in name for w in ("password", "api_key")):
            opt["no_log"] = True
        options[name] = opt
    main["options"] = options
    text = yaml.dump({"argument_specs": {"main": main}}, Dumper=_Dumper, sort_keys=False, width=140)
    spec_path.write_text("---\n" + text, encoding="utf-8")
    return options


def table(options: dict[str, Any]) -> str:
    rows = ["| variable | default | description |", "|---|---|---|"]
    for name, opt in options.items():
        d = opt.get("default")
        if opt.get("no_log") and isinstance(d, str) and d and "{{" not in d:
            shown = "(secret)"
        elif isinstance(d, str):
            shown = f"`{d}`" if d else '`""`'
        else:
            shown = (
                "`"
                + yaml.safe_dump(d, default_flow_style=True).strip().removesuffix("...").strip()
                + "`"
            )
        desc = opt["description"]
        desc = " ".join(desc) if isinstance(desc, list) else str(desc)
        rows.append(
            f"| `{name}` | {shown.replace('|', '&#124;')} | {desc.replace('|', '&#124;')} |"
        )
    return "\n".join(rows)


def sync_readme(role: str, options: dict[str, Any]) -> None:
    path = REPO / "roles" / role / "README.md"
    text = path.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{table(options)}\n{END}"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    for role_name in sys.argv[1:]:
        sync_readme(role_name, sync_spec(role_name))
        print(f"synced roles/{role_name}/meta/argument_specs.yml and README.md")
