"""Tag-scoped redeploy (issue 8): ``site.yml -t workers`` with another pool size.

The file's name sorts it after test_default.py, so it runs on the deployment the other checks
saw, and it leaves the host redeployed with the new pool size (destroy follows). It runs the
playbook operators run, from the controller, with molecule's own ansible configuration and
inventory (the verifier's environment carries ANSIBLE_CONFIG):

1. ``--check --diff``: the diff shows the new ``POOL_SIZE`` line, and nothing changes on the
   host (the deployed module and every process id are as before);
2. the real run: ``worker_pool.py`` is re-rendered with the new value, every worker instance is
   restarted (new main PID), the API keeps its PID, and the shared modules are untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_workers")
APP = "/opt/shield-orchestrator/app/shield_orchestrator"  # orchestrator_base_dir's default
POOL_MODULE = f"{APP}/workers/worker_pool.py"
SHARED_MODULE = f"{APP}/settings.py"
NEW_POOL_SIZE = 6  # the role's default is 4 (roles/orchestrator_workers/defaults/main.yml)


def _site_workers(*extra: str) -> str:
    """``ansible-playbook playbooks/site.yml -t workers`` against this scenario; its output."""
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    playbook = Path(sys.executable).with_name("ansible-playbook")
    cmd = [
        str(playbook),
        str(project / "playbooks" / "site.yml"),
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        "-t",
        "workers",
        "-e",
        f"orchestrator_workers_pool_size={NEW_POOL_SIZE}",
        *extra,
    ]
    run = subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stdout[-6000:]}"
    return run.stdout


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
