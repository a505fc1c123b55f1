"""The shield units' IP firewall (IPAddressDeny=any + IPAddressAllow=) renders from the inventory.

The four unit templates are rendered by Ansible itself (ansible.builtin.template) for four
inventory hosts, each standing for an inventory: the roles' defaults and vars are those of the
real roles (merged into one probe role, so that each host's inventory values override the
defaults as they do in a deployment). A unit's allow-list holds the loopback, the addresses it
dials (Redis, PostgreSQL; the workers: the engine's endpoint; the API: Temporal; the indexers:
Temporal and the git networks) and (the API, Temporal) its callers; a dialed host given by
name turns the firewall of the app units off (IPAddressAllow= takes addresses only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.render.templates import REPO

ROLES = ("orchestrator", "orchestrator_workers", "orchestrator_indexer", "temporal")
UNITS = {
    "api": "orchestrator/templates/shield-orchestrator-api.service.j2",
    "worker": "orchestrator_workers/templates/shield-orchestrator-worker@.service.j2",
    "indexer": "orchestrator_indexer/templates/shield-orchestrator-indexer@.service.j2",
    "temporal": "temporal/templates/shield-temporal.service.j2",
}
PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
# inventory host -> its inventory values (what group_vars/host_vars would say)
HOSTS: dict[str, dict[str, Any]] = {
    # a single host on the loopback (the sandbox, molecule default)
    "single": {},
    # the production shape: Redis on another machine, the API and Temporal on the LAN
    "lan": {
        "orchestrator_redis_host": "192.168.77.48",
        "orchestrator_api_bind_host": "0.0.0.0",
        "orchestrator_engine": "lightrag",
        "orchestrator_ollama_endpoint": "http://10.1.2.3:11434",
        "temporal_bind_address": "192.168.77.5",
    },
    # the operator narrows the API's callers and the git servers, and adds an address
    "narrowed": {
        "orchestrator_postgres_host": "fd00::5",
        "orchestrator_api_bind_host": "192.168.77.5",
        "orchestrator_api_allowed_networks": ["192.168.77.0/24"],
        "orchestrator_indexer_git_allowed_networks": ["192.168.20.7"],
        "orchestrator_ip_allow_extra": ["10.9.9.9"],
        "orchestrator_engine": "lightrag_server",
        "orchestrator_lightrag_server_url": "http://[fd00::9]:9621/base",
    },
    # the cluster scenario's shape: data services named by host name
    "named": {"orchestrator_redis_host": "data1", "orchestrator_postgres_host": "data1"},
}


def _probe_role(roles: Path) -> None:
    """One role holding the four roles' defaults and vars (later roles win a shared name)."""
    defaults: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    for role in ROLES:
        for kind, into in (("defaults", defaults), ("vars", variables)):
            path = REPO / "roles" / role / kind / "main.yml"
            into.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    variables["__temporal_version"] = "0.0.0"  # read from requirements/ through role_path
    for kind, data in (("defaults", defaults), ("vars", variables)):
        (roles / "probe" / kind).mkdir(parents=True)
        (roles / "probe" / kind / "main.yml").write_text(yaml.safe_dump(data), encoding="utf-8")
    (roles / "probe" / "tasks").mkdir()
    tasks = [
        {
            "name": "Render the units",
            "ansible.builtin.template": {
                "src": str(REPO / "roles") + "/{{ item.value }}",
                "dest": "{{ probe_out }}/{{ inventory_hostname }}.{{ item.key }}",
                "mode": "0644",
            },
            "loop": "{{ probe_units | dict2items }}",
        }
    ]
    (roles / "probe" / "tasks" / "main.yml").write_text(yaml.safe_dump(tasks), encoding="utf-8")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("ip_firewall")
    _probe_role(work / "roles")
    inventory = {
        "all": {
            "hosts": {n: {"ansible_connection": "local", **v} for n, v in HOSTS.items()},
            "children": {
                group: {"hosts": {name: None for name in HOSTS}}
                for group in ("orchestrator_api", "orchestrator_workers", "indexer", "temporal")
            },
            "vars": {"ansible_python_interpreter": sys.executable},
        }
    }
    (work / "hosts.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    play = [{"hosts": "all", "gather_facts": False, "roles": ["probe"]}]
    (work / "play.yml").write_text(yaml.safe_dump(play), encoding="utf-8")
    out = work / "out"
    out.mkdir()
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(work / "roles"),
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(work / "hosts.yml"),
            str(work / "play.yml"),
            "-e",
            yaml.safe_dump({"probe_out": str(out), "probe_units": UNITS}, default_flow_style=True),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=170,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return out


def _firewall(out: Path, host: str, unit: str) -> dict[str, list[str]]:
    lines = (out / f"{host}.{unit}").read_text(encoding="utf-8").splitlines()
    found: dict[str, list[str]] = {}
    for line in lines:
        key, _, value = line.partition("=")
        if key in ("IPAddressDeny", "IPAddressAllow", "MemoryDenyWriteExecute"):
            found.setdefault(key, []).append(value)
    return found


EXPECTED: dict[tuple[str, str], list[str] | None] = {
    ("single", "api"): ["localhost"],
    ("single", "worker"): ["localhost"],
    ("single", "indexer"): ["localhost", *PRIVATE],
    ("single", "temporal"): ["localhost"],
    ("lan", "api"): ["localhost", "192.168.77.48", "192.168.77.5", *PRIVATE],  # + Temporal
    ("lan", "worker"): ["localhost", "192.168.77.48", "10.1.2.3"],
    ("lan", "indexer"): ["localhost", "192.168.77.48", "192.168.77.5", *PRIVATE],
    ("lan", "temporal"): ["localhost", "192.168.77.5", *PRIVATE],
    ("narrowed", "api"): ["localhost", "fd00::5", "192.168.77.5", "192.168.77.0/24", "10.9.9.9"],
    ("narrowed", "worker"): ["localhost", "fd00::5", "fd00::9", "10.9.9.9"],
    ("narrowed", "indexer"): ["localhost", "fd00::5", "192.168.20.7", "10.9.9.9"],
    ("narrowed", "temporal"): ["localhost"],
    ("named", "api"): None,
    ("named", "worker"): None,
    ("named", "indexer"): None,
    ("named", "temporal"): ["localhost"],
}


@pytest.mark.parametrize(("host", "unit"), sorted(EXPECTED))
def test_allow_list_renders_from_the_inventory(rendered: Path, host: str, unit: str) -> None:
    found = _firewall(rendered, host, unit)
    expected = EXPECTED[(host, unit)]
    if expected is None:
        assert "IPAddressDeny" not in found
        assert "IPAddressAllow" not in found
    else:
        assert found["IPAddressDeny"] == ["any"]
        assert len(found["IPAddressAllow"]) == 1
        assert sorted(found["IPAddressAllow"][0].split()) == sorted(expected)


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_memory_deny_write_execute_on_every_unit(rendered: Path, unit: str) -> None:
    assert _firewall(rendered, "single", unit)["MemoryDenyWriteExecute"] == ["yes"]


@pytest.mark.parametrize(("host", "listen"), [("single", "127.0.0.1"), ("lan", "0.0.0.0")])
def test_dev_server_listens_on_the_loopback_or_every_address_behind_its_firewall(
    rendered: Path, host: str, listen: str
) -> None:
    """The dev server's internal services are dialled at 127.0.0.1 whatever --ip says (CLI
    1.9.1): off the loopback it listens on the wildcard, and its IP firewall names the callers."""
    unit = (rendered / f"{host}.temporal").read_text(encoding="utf-8")
    assert f"  --ip {listen} \\" in unit.splitlines(), unit
    assert _firewall(rendered, host, "temporal")["IPAddressDeny"] == ["any"]
