"""The IP firewall's variables in preflight (IPAddressDeny=any + IPAddressAllow= of the units).

The same play as tests/repo/test_preflight.py (playbooks/preflight.yml on localhost, nothing
changes), with localhost in every group (the API, workers, indexers and Temporal): an allow-list
entry that is not an address, a prefix or one of systemd's names fails naming the variable, as
does a dialed host given by name while orchestrator_ip_firewall is on; by default a name turns
the firewall off and passes.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from secrets import token_hex

import pytest
import yaml

from tests.repo.test_preflight import assert_refused, run_preflight

GROUPS = ("redis", "postgresql", "orchestrator_api", "orchestrator_workers", "temporal", "indexer")
NO_NAMES = "IPAddressAllow= takes no host names"
# a dialed name would turn TLS on (its CA checks are not what this file tests)
NO_TLS: dict[str, object] = {"orchestrator_tls_enabled": False}


@pytest.fixture(scope="module")
def every_group(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    host = {
        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    }
    secrets = {
        "redis_password": token_hex(20),
        "redis_app_password": token_hex(20),
        "postgresql_password": token_hex(20),
        "orchestrator_api_keys": [token_hex(20)],
    }
    groups = {g: {"hosts": host} for g in GROUPS}
    path.write_text(yaml.safe_dump({"all": {"children": groups, "vars": secrets}}))
    return path


PASS: dict[str, dict[str, object]] = {
    "defaults": {},
    "name_turns_the_firewall_off": {**NO_TLS, "orchestrator_redis_host": "redis.lan"},
    "addresses_and_prefixes": {
        "orchestrator_api_allowed_networks": ["192.168.77.0/24", "fd00::/8", "link-local"],
        "orchestrator_ip_allow_extra": ["10.9.9.9"],
        "temporal_allowed_networks": ["any"],
    },
}
FAIL: dict[str, tuple[dict[str, object], list[str]]] = {
    "api_network_is_a_name": (
        {"orchestrator_api_allowed_networks": ["lan.example"]},
        ["orchestrator_api_allowed_networks=", "lan.example", NO_NAMES],
    ),
    "extra_not_a_list": (
        {"orchestrator_ip_allow_extra": "10.0.0.1"},
        ["orchestrator_ip_allow_extra=", "must be lists of IP addresses or prefixes"],
    ),
    "git_network_is_a_name": (
        {"orchestrator_indexer_git_allowed_networks": ["git.example.org"]},
        ["orchestrator_indexer_git_allowed_networks=", "git.example.org"],
    ),
    "firewall_on_and_redis_by_name": (
        {**NO_TLS, "orchestrator_ip_firewall": True, "orchestrator_redis_host": "redis.lan"},
        [
            "orchestrator_ip_firewall is on",
            "orchestrator_redis_host names redis.lan by host name",
            "orchestrator_ip_firewall: false",
        ],
    ),
    "firewall_on_and_the_engine_by_name": (
        {
            "orchestrator_ip_firewall": True,
            "orchestrator_engine": "lightrag_server",
            "orchestrator_lightrag_server_url": "http://rag.lan:9621",
        },
        ["orchestrator_lightrag_server_url names rag.lan by host name"],
    ),
    "temporal_network_is_a_name": (
        {"temporal_allowed_networks": ["indexers.lan"]},
        ["temporal_allowed_networks=", "indexers.lan", NO_NAMES],
    ),
}


@pytest.fixture(scope="module")
def results(every_group: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    cases = {**PASS, **{case: extra for case, (extra, _) in FAIL.items()}}
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {c: pool.submit(run_preflight, every_group, e) for c, e in cases.items()}
        return {case: f.result() for case, f in futures.items()}


@pytest.mark.parametrize("case", sorted(PASS))
def test_good_lists_pass(results: dict[str, subprocess.CompletedProcess[str]], case: str) -> None:
    result = results[case]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.parametrize("case", sorted(FAIL))
def test_bad_lists_fail_naming_the_variable(
    results: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    _, expected = FAIL[case]
    assert_refused(results[case], case, expected)
