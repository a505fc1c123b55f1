"""Tag-scoped redeploys: ``site.yml -t workers`` with another pool size (issue 8), and
``site.yml -t api`` with another API limit under load (issue 18).

The file's name sorts it after test_default.py, so it runs on the deployment the other checks
saw, and it leaves the host redeployed with the new values (destroy follows). It runs the
playbook operators run, from the controller, with molecule's own ansible configuration and
inventory (the verifier's environment carries ANSIBLE_CONFIG).

``-t workers``:
1. ``--check --diff``: the diff shows the new ``POOL_SIZE`` line, and nothing changes on the
   host (the deployed module and every process id are as before);
2. the real run: ``worker_pool.py`` is re-rendered with the new value, every worker instance is
   restarted (new main PID), the API keeps its PID, and the shared modules are untouched.

``-t api`` (the API's code and configuration): a client loop on the API host (LOAD_SCRIPT:
GET /health and an authenticated GET /jobs, each on a new connection, at LOAD_RATE per second)
runs from before the playbook to after it; the changed module is applied by a reload
(handlers/main.yml), not a restart: 0 failed requests, the unit's main PID unchanged, every
API process replaced, as many as before, and the new limit in effect; no task of the worker
pool's or the indexers' roles ran, and every worker and indexer instance kept its main PID.
"""

from __future__ import annotations

import json
import time

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_workers")
APP = "/opt/shield-orchestrator/app/shield_orchestrator"  # orchestrator_base_dir's default
POOL_MODULE = f"{APP}/workers/worker_pool.py"
SHARED_MODULE = f"{APP}/settings.py"
NEW_POOL_SIZE = 6  # the role's default is 4 (roles/orchestrator_workers/defaults/main.yml)
NEW_MAX_BODY_BYTES = 65536  # orchestrator_api_max_body_bytes; the role's default is 10 MiB
INDEXER_UNIT = "shield-orchestrator-indexer@"
DEPLOY_PLAY = "Shield orchestrator app, API, worker pool and indexers"  # playbooks/orchestrator.yml
LOAD_UNIT = "shield-verify-load"
LOAD_DIR = "/var/tmp"  # on the test host, beside the side effects' job files
LOAD_PROGRAM = f"{LOAD_DIR}/shield-verify-load.py"
LOAD_RESULT = f"{LOAD_DIR}/shield-verify-load.json"
LOAD_STOP = f"{LOAD_DIR}/shield-verify-load.stop"
LOAD_RATE = 40  # requests/s (open loop)
# Runs on the API host under systemd-run (python3 of the image, stdlib only): argv: the
# EnvironmentFile (the key is read there, never on argv), the result file, the stop file.
LOAD_SCRIPT = r"""
import http.client, json, os, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
env = dict(l.split("=", 1) for l in open(sys.argv[1]).read().splitlines() if "=" in l)
key = env["SHIELD_API_KEYS"].strip("'\"").split(",")[0].strip()
result, lock = {"sent": 0, "ok": 0, "failures": []}, threading.Lock()
def one(i):
    path, headers = ("/health", {}) if i % 2 else ("/jobs?limit=1", {"X-API-Key": key})
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[4]), timeout=30)
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        problem = None if response.status == 200 else f"{path}: HTTP {response.status}"
    except Exception as exc:
        problem = f"{path}: {exc!r}"
    with lock:
        if problem:
            result["failures"].append(problem)
        else:
            result["ok"] += 1
with ThreadPoolExecutor(max_workers=64) as pool:
    start = time.monotonic()
    while not os.path.exists(sys.argv[3]):
        pool.submit(one, result["sent"])
        result["sent"] += 1
        time.sleep(max(0.0, start + result["sent"] / float(sys.argv[5]) - time.monotonic()))
json.dump(result, open(sys.argv[2], "w"))
"""


def _site_workers(*extra: str) -> str:
    """``ansible-playbook playbooks/site.yml -t workers`` against this scenario; its output."""
    return _site("-t", "workers", "-e", f"orchestrator_workers_pool_size={NEW_POOL_SIZE}", *extra)


def _site(*args: str) -> str:
    """``ansible-playbook playbooks/site.yml ARGS`` against this scenario; its output."""
    return tc.playbook("site.yml", *args)


def _pids(h) -> dict[str, str]:
    units = [tc.API_UNIT, *tc.worker_instances(h)]
    return {u: tc.unit_properties(h, u, ["MainPID"])["MainPID"] for u in units}


def test_site_workers_redeploys_only_the_pool(host):
    before = _pids(host)
    assert len(before) >= 2, f"no worker instance loaded: {before}"
    assert "0" not in before.values(), f"a unit has no main process: {before}"
    pool_before = host.file(POOL_MODULE).content_string
    shared_before = host.file(SHARED_MODULE).sha256sum
    assert f"POOL_SIZE = {NEW_POOL_SIZE}" not in pool_before

    shown = _site_workers("--check", "--diff")
    assert f"+POOL_SIZE = {NEW_POOL_SIZE}" in shown, "--check --diff did not show the new value"
    assert host.file(POOL_MODULE).content_string == pool_before, "--check changed the module"
    assert _pids(host) == before, "--check restarted a unit"

    _site_workers()
    after = _pids(host)
    assert f"POOL_SIZE = {NEW_POOL_SIZE}  #" in host.file(POOL_MODULE).content_string
    assert host.file(SHARED_MODULE).sha256sum == shared_before, "a shared module was rewritten"
    assert after[tc.API_UNIT] == before[tc.API_UNIT], "the API restarted on a -t workers run"
    for unit in before.keys() - {tc.API_UNIT}:
        assert after[unit] not in ("0", before[unit]), f"{unit} was not restarted: {after[unit]}"
        tc.assert_active_enabled(host, unit)


def _instance_pids(h, template: str) -> dict[str, str]:
    """Main PID of every loaded instance of a template unit (``template``: ``name@``)."""
    out = h.check_output(f"systemctl list-units --all --plain --no-legend '{template}*.service'")
    units = sorted(line.split()[0] for line in out.splitlines() if line.strip())
    return {u: tc.unit_properties(h, u, ["MainPID"])["MainPID"] for u in units}


def _workers_and_indexers() -> dict[str, str]:
    """Main PID of every worker and indexer instance of the scenario, keyed host/unit."""
    pids = {}
    for group, template in (("orchestrator_workers", tc.WORKER_UNIT), ("indexer", INDEXER_UNIT)):
        for name in tc.hosts_in(group):
            found = _instance_pids(tc.host(name), template)
            assert found, f"{name}: no {template}N.service instance is loaded"
            pids |= {f"{name}/{unit}": pid for unit, pid in found.items()}
    return pids


def _play_lines(output: str, play: str) -> list[str]:
    """The lines ansible-playbook printed for the play named ``play`` (up to the next play)."""
    lines, inside = [], False
    for line in output.splitlines():
        if line.startswith("PLAY ["):
            inside = line.startswith(f"PLAY [{play}]")
        elif inside:
            lines.append(line)
    return lines


def _api_children(h) -> set[str]:
    """The API's serving processes: the main process's children running spawn_main."""
    main = tc.unit_properties(h, tc.API_UNIT, ["MainPID"])["MainPID"]
    return set(h.check_output(f"pgrep -P {main} -f spawn_main").split())


def test_site_api_reloads_the_api_alone_without_losing_a_request(host):
    api = tc.host(tc.hosts_in("orchestrator_api")[0])
    others_before = _workers_and_indexers()
    assert "0" not in others_before.values(), f"a unit has no main process: {others_before}"
    main_before = tc.unit_properties(api, tc.API_UNIT, ["MainPID"])["MainPID"]
    children_before = _api_children(api)
    assert main_before != "0"
    assert children_before
    env_file = tc.unit_properties(api, tc.API_UNIT, ["EnvironmentFiles"])["EnvironmentFiles"]
    api.run(f"rm -f {LOAD_RESULT} {LOAD_STOP}; systemctl reset-failed {LOAD_UNIT}")
    api.check_output(f"cat > {LOAD_PROGRAM} <<'EOF'\n{LOAD_SCRIPT}\nEOF")
    api.check_output(
        f"systemd-run --unit={LOAD_UNIT} --collect python3 {LOAD_PROGRAM} "
        f"{env_file.split()[0]} {LOAD_RESULT} {LOAD_STOP} {tc.API_PORT} {LOAD_RATE}"
    )
    try:
        time.sleep(2)
        active = api.run(f"systemctl is-active {LOAD_UNIT}").stdout.strip()
        assert active == "active", tc.journal(api, LOAD_UNIT)
        new_limit = f"orchestrator_api_max_body_bytes={NEW_MAX_BODY_BYTES}"
        shown = _site("-t", "api", "-e", new_limit)
        time.sleep(2)
    finally:
        api.run(f"touch {LOAD_STOP}")
        deadline = time.monotonic() + 60
        while api.run(f"systemctl is-active {LOAD_UNIT}").stdout.strip() == "active":
            assert time.monotonic() < deadline, tc.journal(api, LOAD_UNIT)
            time.sleep(1)
    assert "RUNNING HANDLER [orchestrator : Reload shield-orchestrator API]" in shown
    assert "RUNNING HANDLER [orchestrator : Restart shield-orchestrator API]" not in shown
    others = [  # what the deploying play ran of those roles beyond their argument specs
        line  # (tagged always; so are the checks of every role in the preflight play before it)
        for line in _play_lines(shown, DEPLOY_PLAY)
        if line.startswith(("TASK [orchestrator_workers :", "TASK [orchestrator_indexer :",
                            "RUNNING HANDLER [orchestrator_workers :",
                            "RUNNING HANDLER [orchestrator_indexer :"))
        and "Validating arguments against arg spec" not in line
    ]  # fmt: skip
    assert any(line.startswith("TASK [orchestrator :") for line in _play_lines(shown, DEPLOY_PLAY))
    assert others == [], f"-t api ran tasks of the pool's or the indexers' roles: {others}"
    assert _workers_and_indexers() == others_before, "-t api restarted a worker or an indexer"
    load = json.loads(api.file(LOAD_RESULT).content_string)
    assert load["failures"] == [], load["failures"][:10]
    assert load["ok"] == load["sent"] > LOAD_RATE * 10, load
    assert tc.unit_properties(api, tc.API_UNIT, ["MainPID"])["MainPID"] == main_before
    children_after = _api_children(api)
    assert len(children_after) == len(children_before), children_after
    assert not children_after & children_before, "an API process was not replaced"
    key = tc.api_key(tc.environment_file(api))
    too_big = {"chunks": [{"text": "x" * NEW_MAX_BODY_BYTES}]}
    status, answer = tc.http(api, "POST", "/lightrag/ingest-async", key, too_big)
    assert status == 413, answer
    assert str(NEW_MAX_BODY_BYTES) in json.dumps(answer)
    tc.assert_active_enabled(api, tc.API_UNIT)
