"""The units' sandboxing on the all-in-one host (issue 20): exposure scores, W^X, IP firewall.

Every unit scores within its goal in ``systemd-analyze security`` (measured on Debian 12 and 13
systemd host: API, workers, indexers, Temporal and Redis 0.9-1.1, PostgreSQL's cluster 1.5; goal
2.0 for each), the shield and Temporal units refuse writable executable memory
(MemoryDenyWriteExecute: the in-process LightRAG engines, Milvus Lite, asyncpg, tree-sitter
and Temporal's Go binary run under it), and their IP firewall (IPAddressDeny=any plus the
allow-list the roles render from the inventory) is in force: a process in a worker's cgroup
reaches the loopback and nothing else.
"""

from __future__ import annotations

import json
import shlex

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")

TEMPORAL_UNIT = "shield-temporal.service"
INDEXER_UNIT = "shield-orchestrator-indexer@"
# the goal of each unit's overall exposure (0 safest, 10 least); the issue's own goal for
# PostgreSQL's unit is 5, its drop-in (roles/postgresql) brings it to 1.5
GOAL = 2.0
LOOPBACK_ALLOW = "127.0.0.0/8 ::1/128"  # systemctl show's spelling of IPAddressAllow=localhost
DENY_ANY = "0.0.0.0/0 ::/0"  # ... and of IPAddressDeny=any
GIT_NETWORKS = " 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7"  # the indexers' default


def _instances(host, pattern: str) -> list[str]:
    out = host.check_output(f"systemctl list-units --plain --no-legend {shlex.quote(pattern)}")
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def _shield_units(host) -> list[str]:
    return [
        tc.API_UNIT + ".service",
        *tc.worker_instances(host),
        *_instances(host, INDEXER_UNIT + "*.service"),
        TEMPORAL_UNIT,
    ]


def _exposure(host, unit: str) -> float:
    out = host.check_output(f"systemd-analyze security --no-pager {shlex.quote(unit)}")
    last = out.strip().splitlines()[-1]
    assert "Overall exposure level" in last, out[-500:]
    return float(last.split(":")[1].split()[0])


def test_every_unit_scores_within_its_goal(host):
    data = [*_instances(host, "postgresql@*.service"), "redis-server.service"]
    units = [*_shield_units(host), *data]
    assert len(units) >= 6, units
    scores = {unit: _exposure(host, unit) for unit in units}
    assert all(score <= GOAL for score in scores.values()), scores


def test_shield_units_refuse_writable_executable_memory_and_run(host):
    for unit in _shield_units(host):
        props = tc.unit_properties(host, unit, ["MemoryDenyWriteExecute", "ActiveState"])
        assert props == {"MemoryDenyWriteExecute": "yes", "ActiveState": "active"}, (
            unit,
            props,
            tc.journal(host, unit, 40),
        )


def test_shield_units_ip_firewall_follows_the_inventory(host):
    """Single host, everything on the loopback: each unit's allow-list is the loopback alone,
    the indexers' also the git servers' networks (orchestrator_indexer_git_allowed_networks)."""
    for unit in _shield_units(host):
        props = tc.unit_properties(host, unit, ["IPAddressDeny", "IPAddressAllow"])
        want = LOOPBACK_ALLOW + (GIT_NETWORKS if unit.startswith(INDEXER_UNIT) else "")
        assert set(props["IPAddressDeny"].split()) == set(DENY_ANY.split()), (unit, props)
        assert set(props["IPAddressAllow"].split()) == set(want.split()), (unit, props)


def test_systemd_analyze_sees_w_xor_x_and_the_allow_list(host):
    """systemd-analyze security --json=short: MemoryDenyWriteExecute set, and an IP address
    allow list defined (systemd rates a localhost-only list 0.1, a missing one 0.2)."""
    for unit in _shield_units(host):
        out = host.check_output(f"systemd-analyze security --json=short --no-pager {unit}")
        checks = {entry["json_field"]: entry for entry in json.loads(out)}
        wx = checks["MemoryDenyWriteExecute"]
        assert wx["set"] is True, (unit, wx)
        ip = checks["IPAddressDeny"]
        assert "defines IP address allow list" in ip["description"], (unit, ip)


def test_ip_firewall_is_enforced_in_a_workers_cgroup(host):
    """A process put into a worker's cgroup connects to a listener on the loopback, and not to
    the same listener at the host's own non-loopback address (cgroup BPF drops the packets),
    which a process outside that cgroup reaches."""
    [worker, *_] = tc.worker_instances(host)
    cgroup = tc.unit_properties(host, worker, ["ControlGroup"])["ControlGroup"]
    # the cgroup v2 tree: /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid)
    root = host.check_output(
        "for d in /sys/fs/cgroup/unified /sys/fs/cgroup; do "
        "[ -d $d ] && [ $(stat -f -c %T $d) = cgroup2fs ] && { echo $d; break; }; done"
    ).strip()
    assert root, "no cgroup2 mount on the host"
    address = host.check_output("hostname -I").split()[0]
    assert not address.startswith("127."), address
    listener = "shield-test-fw-listener"
    host.run(f"systemctl stop {listener}.service")
    host.check_output(
        f"systemd-run --unit={listener} -p RuntimeMaxSec=120 "
        "python3 -c 'import socket,time; s=socket.socket(); "
        's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 18919)); '
        "s.listen(8); [s.accept() for _ in range(8)]'"
    )
    host.check_output(
        "for i in $(seq 100); do ss -ltnH 'sport = :18919' | grep -q . && exit 0; sleep 0.1; done;"
        " exit 1"
    )
    probe = (
        "import socket, sys\n"
        "try:\n"
        "    socket.create_connection((sys.argv[1], 18919), timeout=3).close()\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__)\n"
    )
    try:
        results = {}
        for target in ("127.0.0.1", address):
            script = (
                f"echo $$ > {shlex.quote(root + cgroup)}/cgroup.procs && "
                f"exec python3 -c {shlex.quote(probe)} {shlex.quote(target)}"
            )
            results[target] = host.check_output(f"sh -c {shlex.quote(script)}")
        # the control: outside the worker's cgroup the same address answers
        outside = host.check_output(f"python3 -c {shlex.quote(probe)} {shlex.quote(address)}")
    finally:
        host.run(f"systemctl stop {listener}.service")
    assert outside == "connected", outside
    assert results["127.0.0.1"] == "connected", results
    assert results[address].startswith("refused"), results
