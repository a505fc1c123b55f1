"""The test hosts' connection is named the same everywhere it is chosen.

harness/plugins/connection/podman_pipelined.py (containers.podman's podman connection,
pipelined: tests/harness/test_harness.py runs it against a booted host) is picked by the sandbox
inventory and by every molecule scenario, and found through ansible.cfg and harness/env.sh.
"""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "harness" / "plugins" / "connection"


def _plugin_name() -> str:
    (plugin,) = PLUGIN_DIR.glob("*.py")
    tree = ast.parse(plugin.read_text())
    docs = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "DOCUMENTATION" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert len(docs) == 1, "the plugin has one DOCUMENTATION string"
    name = yaml.safe_load(docs[0])["name"]
    assert name == plugin.stem, f"DOCUMENTATION names {name!r}, the file is {plugin.name}"
    transports = [
        node.value.value
        for cls in tree.body
        if isinstance(cls, ast.ClassDef) and cls.name == "Connection"
        for node in cls.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "transport" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert transports == [name]
    return str(name)


def test_every_scenario_connects_through_the_harness_plugin() -> None:
    name = _plugin_name()
    scenarios = sorted((REPO / "molecule").glob("*/molecule.yml"))
    assert scenarios
    for path in scenarios:
        config = yaml.safe_load(path.read_text())
        connection = config["provisioner"].get("connection_options", {}).get("ansible_connection")
        assert connection == name, f"{path.relative_to(REPO)}: ansible_connection {connection!r}"


def test_the_sandbox_inventory_connects_through_the_harness_plugin() -> None:
    inventory = yaml.safe_load((REPO / "inventories" / "sandbox" / "hosts.yml").read_text())
    assert inventory["all"]["vars"]["ansible_connection"] == _plugin_name()


def test_ansible_cfg_and_env_sh_find_the_plugin() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "ansible.cfg")
    assert (REPO / cfg["defaults"]["connection_plugins"]).resolve() == PLUGIN_DIR
    env_sh = (REPO / "harness" / "env.sh").read_text()
    assert 'export ANSIBLE_CONNECTION_PLUGINS="$HARNESS_DIR/plugins/connection"' in env_sh
