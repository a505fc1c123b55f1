"""The default inventory is the local sandbox; production addresses stay in production files.

- `ansible-inventory --list` with the repository's ansible.cfg (no -i) resolves to the sandbox
  hosts only, every one reached through the podman connection (a local container), so no
  command run without an explicit `-i inventories/production` can reach a real server.
- The production network (the /24 of every address in inventories/production) appears
  nowhere but inventories/production and the documentation (*.md), so no test, role default
  or script can send traffic there. The addresses are read from the production files, so this
  test names none itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IPV4 = re.compile(r"\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.\d{1,3}\b")


def _production_networks() -> set[str]:
    """The /24 prefixes ("a.b.c.") of every IPv4 address in the production inventory."""
    nets = set()
    for path in (REPO / "inventories" / "production").rglob("*"):
        if path.is_file() and path.suffix in {".yml", ".yaml", ".example", ""}:
            for a, b, c in IPV4.findall(path.read_text(encoding="utf-8", errors="replace")):
                if a not in {"0", "127"}:  # wildcard and loopback are nobody's network
                    nets.add(f"{a}.{b}.{c}.")
    return nets


PRODUCTION_NETS = _production_networks()
PRODUCTION_NET = re.compile("|".join(re.escape(n) + r"\d{1,3}\b" for n in sorted(PRODUCTION_NETS)))
SKIP_DIRS = {".git", ".venv", "build", ".ansible", "__pycache__", ".ruff_cache", ".mypy_cache"}
TEXT_SUFFIXES = {
    ".py",
    ".yml",
    ".yaml",
    ".j2",
    ".cfg",
    ".sh",
    ".mk",
    ".toml",
    ".txt",
    ".sql",
    ".in",
    ".json",
    "",
}


def test_the_production_inventory_names_its_network() -> None:
    assert PRODUCTION_NETS, "no address found in inventories/production"


def test_default_inventory_is_the_sandbox() -> None:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    env.pop("ANSIBLE_INVENTORY", None)
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "--list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    inv = json.loads(out)
    hostvars = inv["_meta"]["hostvars"]
    assert hostvars, "the default inventory has no host"
    assert set(hostvars) == {"shield-sandbox"}, f"default inventory hosts: {sorted(hostvars)}"
    for host, hv in hostvars.items():
        assert hv.get("ansible_connection") == "podman_pipelined", (host, hv)
        assert not PRODUCTION_NET.search(json.dumps(hv)), f"{host} carries a production address"
        assert hv.get("orchestrator_deployment_environment") == "sandbox", host


def _files() -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(REPO):
        dirnames[:] = [
            d
            for d in dirnames
            if d not in SKIP_DIRS
            and not (Path(dirpath) / d).match("collections/ansible_collections/containers")
        ]
        out.extend(Path(dirpath) / f for f in filenames)
    return out


def test_production_addresses_stay_in_production_files() -> None:
    offenders = []
    for path in _files():
        rel = path.relative_to(REPO)
        if rel.parts[:2] == ("inventories", "production") or path.suffix == ".md":
            continue
        if path.suffix not in TEXT_SUFFIXES or "containers" in rel.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if PRODUCTION_NET.search(line):
                offenders.append(f"{rel}:{n}")
    assert not offenders, f"{sorted(PRODUCTION_NETS)} outside inventories/production: {offenders}"
