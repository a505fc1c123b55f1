"""The temporal and orchestrator_indexer roles refuse bad input in preflight, naming the fix.

Runs playbooks/preflight.yml (what site.yml runs first) against localhost with the local
connection, in every group including `temporal` and `indexer`: the play only gathers facts,
asserts and probes one TCP port (an existing cluster's frontend), so nothing on this machine
changes. Each case overrides variables with -e and checks the failure message names the
variable, its value and the fix; the defaults (the development server on loopback) pass.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from secrets import token_hex

import pytest
import yaml

from tests.repo.test_preflight import run_preflight

GROUPS = ("redis", "postgresql", "orchestrator_api", "orchestrator_workers", "temporal", "indexer")
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
SECRETS = {
    "redis_password": token_hex(20),
    "redis_app_password": token_hex(20),
    "postgresql_password": token_hex(20),
    "orchestrator_api_keys": [token_hex(20)],
}


def write_inventory(path: Path, groups: dict[str, list[str]]) -> Path:
    children = {g: {"hosts": {h: LOCAL for h in hosts}} for g, hosts in groups.items()}
    path.write_text(yaml.safe_dump({"all": {"children": children, "vars": SECRETS}}))
    return path


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """localhost in every group, Temporal included."""
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    return write_inventory(path, {g: ["localhost"] for g in GROUPS})


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_defaults_pass(inventory: Path) -> None:
    """The development server on loopback, one indexer on the same host: nothing to refuse."""
    result = run_preflight(inventory, {})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "changed=0" in result.stdout, result.stdout[-2000:]


CLOSED = closed_port()
CASES: dict[str, tuple[dict[str, object], list[str]]] = {
    "unmanaged_without_address": (
        {"temporal_manage": False},
        [
            "temporal_manage is false",
            "orchestrator_temporal_address is empty",
            "temporal_manage: true",
        ],
    ),
    "unmanaged_not_answering": (
        {"temporal_manage": False, "orchestrator_temporal_address": f"127.0.0.1:{CLOSED}"},
        [f"orchestrator_temporal_address=127.0.0.1:{CLOSED} does not answer", "Fix the address"],
    ),
    "address_without_port": (
        {"temporal_manage": False, "orchestrator_temporal_address": "temporal.example.org"},
        ['orchestrator_temporal_address="temporal.example.org"', "host:port"],
    ),
    "port_out_of_range": (
        {"temporal_port": 70000},
        ["temporal_port=70000", "must be a port 1-65535"],
    ),
    "port_not_an_integer": (
        {"temporal_metrics_port": "metrics"},
        ['temporal_metrics_port="metrics"', "must be a port 1-65535"],
    ),
    "ports_clash": (
        {"temporal_http_port": 7233},
        ["temporal_http_port=7233", "used by no other of temporal_port"],
    ),
    "bind_address_not_ipv4": (
        {"temporal_bind_address": "temporal.example.org"},
        ['temporal_bind_address="temporal.example.org"', "an IPv4 address"],
    ),
    "off_loopback_without_the_ip_firewall": (
        {"temporal_bind_address": "192.168.77.5", "temporal_ip_firewall": False},
        [
            'temporal_bind_address="192.168.77.5" is not a loopback address',
            "temporal_ip_firewall=false",
        ],
    ),
    "off_loopback_open_to_any": (
        {"temporal_bind_address": "192.168.77.5", "temporal_allowed_networks": ["any"]},
        ['temporal_allowed_networks=["any"]', "not any, 0.0.0.0/0 or ::/0"],
    ),
    "tls_asked_of_the_dev_server": (
        {"orchestrator_temporal_tls_ca": "-----BEGIN CERTIFICATE-----"},
        ["temporal_manage is true, but orchestrator_temporal_tls_* is set", "neither TLS"],
    ),
    "tls_cert_without_key": (
        {
            "temporal_manage": False,
            "orchestrator_temporal_address": f"127.0.0.1:{CLOSED}",
            "orchestrator_temporal_tls_cert": "-----BEGIN CERTIFICATE-----",
        },
        ["orchestrator_temporal_tls_key is empty", "mutual TLS needs both"],
    ),
    "bad_namespace": (
        {"orchestrator_temporal_namespace": "shield indexing"},
        ['orchestrator_temporal_namespace="shield indexing"', "letters, digits"],
    ),
    "indexer_processes_zero": (
        {"orchestrator_indexer_processes": 0},
        ["orchestrator_indexer_processes=0", "integer >= 1"],
    ),
    "indexer_cache_dir_relative": (
        {"orchestrator_indexer_cache_dir": "mirrors"},
        ['orchestrator_indexer_cache_dir="mirrors"', "absolute path"],
    ),
    "indexer_cache_cap_negative": (
        {"orchestrator_indexer_cache_max_mb": -1},
        ["orchestrator_indexer_cache_max_mb=-1", "integer >= 0"],
    ),
}


@pytest.fixture(scope="module")
def results(inventory: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case's run, three at a time (each is an ansible-playbook start-up)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {c: pool.submit(run_preflight, inventory, e) for c, (e, _) in CASES.items()}
        return {case: f.result() for case, f in futures.items()}


def assert_refused(result: subprocess.CompletedProcess[str], expected: list[str]) -> None:
    out = result.stdout + result.stderr
    assert result.returncode != 0, f"preflight passed\n{out[-2000:]}"
    flat = " ".join(out.split())
    missing = [e for e in expected if " ".join(e.split()) not in flat]
    assert not missing, f"message lacks {missing}\n{out[-3000:]}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_in_preflight_naming_the_fix(
    results: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    assert_refused(results[case], CASES[case][1])


Layout = Callable[[Path], Path]


def no_temporal_host(tmp: Path) -> Path:
    return write_inventory(tmp / "hosts.yml", {g: ["localhost"] for g in GROUPS if g != "temporal"})


def temporal_elsewhere(tmp: Path) -> Path:
    groups = {g: ["localhost"] for g in GROUPS}
    groups["temporal"] = ["temporal-host"]  # local connection too: never a remote machine
    return write_inventory(tmp / "hosts.yml", groups)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        (no_temporal_host, ["temporal group is empty", "temporal_manage: false"]),
        (
            temporal_elsewhere,
            [
                "orchestrator_temporal_address=127.0.0.1:7233 is a loopback address",
                "localhost is not a host of the temporal group (temporal-host)",
                "temporal_bind_address",
            ],
        ),
    ],
    ids=["managed_without_a_temporal_host", "loopback_address_on_another_host"],
)
def test_indexers_must_reach_the_dev_server(
    tmp_path: Path, layout: Layout, expected: list[str]
) -> None:
    assert_refused(run_preflight(layout(tmp_path), {}), expected)
