"""Temporal's development server and the repository indexers on the all-in-one host.

shield-temporal.service is up, hardened, on loopback with every pinned port, answers SERVING
with the namespace registered, and never calls home; every shield-orchestrator-indexer@N is
up, hardened, stops within the graceful shutdown + margin, and polls the task queue (its
MainPID is a poller identity of both the workflow and the activity queue).
"""

from __future__ import annotations

import json
import shlex

import tests_common as tc

testinfra_hosts = tc.hosts_in("indexer")

TEMPORAL_UNIT = "shield-temporal.service"
INDEXER_UNIT = "shield-orchestrator-indexer@"
CLI = "/opt/shield-temporal/venv/bin/temporal"
ADDRESS = "127.0.0.1:7233"
NAMESPACE = "shield"
TASK_QUEUE = "repo-indexing"
PORTS = {"frontend": 7233, "http": 7243, "metrics": 7235}
CACHE_DIR = "/var/cache/shield-orchestrator/mirrors"


def indexer_instances(h) -> list[str]:
    out = h.check_output(f"systemctl list-units --plain --no-legend '{INDEXER_UNIT}*.service'")
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def temporal(h, *args: str) -> str:
    cmd = shlex.join([CLI, *args, "--address", ADDRESS])
    result = h.run(cmd)
    if result.rc != 0:
        tc.fail_with_journal(h, TEMPORAL_UNIT, f"`{cmd}` failed: {result.stderr[-500:]}")
    return str(result.stdout)


def test_temporal_active_hardened_and_quiet(host):
    tc.assert_active_enabled(host, TEMPORAL_UNIT)
    want = {**tc.HARDENING, "DynamicUser": "yes", "PrivateUsers": "yes"}
    props = tc.unit_properties(host, TEMPORAL_UNIT, [*want, "Environment", "ExecStart"])
    wrong = {k: props.get(k) for k, v in want.items() if props.get(k) != v}
    assert not wrong, f"{TEMPORAL_UNIT}: hardening not applied, got {wrong}"
    assert "TEMPORAL_VERSION_CHECK_DISABLED=1" in props["Environment"], props["Environment"]
    start = props["ExecStart"]
    for flag in ("frontend.enableServerVersionCheck=false", "--headless", "journal_mode=wal"):
        assert flag in start, f"{TEMPORAL_UNIT} runs without {flag}: {start}"


def test_temporal_listens_on_loopback_only(host):
    for name, port in PORTS.items():
        addrs = tc.listening_addresses(host, port)
        assert addrs, f"temporal {name}: nothing listens on port {port}"
        assert addrs <= tc.LOOPBACK, f"temporal {name} listens on {sorted(addrs)}"
    assert not tc.listening_addresses(host, 8233), "the Web UI listens although headless"


def test_temporal_serving_with_the_namespace(host):
    assert "SERVING" in temporal(host, "operator", "cluster", "health")
    described = json.loads(
        temporal(host, "operator", "namespace", "describe", "-n", NAMESPACE, "-o", "json")
    )
    assert described["namespaceInfo"]["state"] == "NAMESPACE_STATE_REGISTERED", described


def test_indexers_active_hardened_and_drain_on_stop(host):
    instances = indexer_instances(host)
    assert instances, f"no {INDEXER_UNIT}N.service instance is loaded"
    for unit in instances:
        tc.assert_active_enabled(host, unit)
        props = tc.unit_properties(host, unit, [*tc.HARDENING, "TimeoutStopUSec", "KillMode"])
        wrong = {k: props.get(k) for k, v in tc.HARDENING.items() if props.get(k) != v}
        assert not wrong, f"{unit}: hardening not applied, got {wrong}"
        # graceful shutdown 60 s + margin 15 s (the role's defaults)
        assert props["TimeoutStopUSec"] == "1min 15s", props
        assert props["KillMode"] == "mixed", props


def test_every_indexer_polls_the_task_queue(host):
    hostname = host.check_output("hostname").strip()
    args = ["task-queue", "describe", "--task-queue", TASK_QUEUE, "-n", NAMESPACE, "-o", "json"]
    described = json.loads(temporal(host, *args))
    pollers = {(p["taskQueueType"], p["identity"]) for p in described.get("pollers") or []}
    for unit in indexer_instances(host):
        pid = tc.unit_properties(host, unit, ["MainPID"])["MainPID"]
        for kind in ("workflow", "activity"):
            if (kind, f"{pid}@{hostname}") not in pollers:
                tc.fail_with_journal(
                    host, unit, f"{pid}@{hostname} does not poll the {kind} queue: {pollers}"
                )


def test_mirror_cache_and_its_trim(host):
    cache = host.file(CACHE_DIR)
    assert cache.is_directory, CACHE_DIR
    assert (cache.user, cache.mode) == ("shield", 0o750), (cache.user, oct(cache.mode))
    assert host.package("git").is_installed
    timer = "shield-orchestrator-indexer-cache-trim.timer"
    props = tc.unit_properties(host, timer, ["ActiveState", "SubState", "UnitFileState"])
    assert (props["ActiveState"], props["UnitFileState"]) == ("active", "enabled"), props
    # the trim service runs and succeeds on the (small) cache
    result = host.run("systemctl start shield-orchestrator-indexer-cache-trim.service")
    assert result.rc == 0, tc.journal(host, "shield-orchestrator-indexer-cache-trim.service")
