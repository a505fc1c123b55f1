"""The harness itself: a host boots from the cached image with systemd as PID 1, a hardened
unit written into it starts, and the container is removed afterwards whatever happened.

Run by `make harness-selftest` (after `make hosts-image`); marked `molecule` like every test
that needs real systemd hosts, so `make pytest` leaves it out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.molecule

ROOT = Path(__file__).resolve().parents[2]
LABEL = "io.shield-orchestrator.harness=selftest"
BOOT_TIMEOUT_S = 60
UNIT = """\
[Unit]
Description=harness self-test unit

[Service]
ExecStart=/bin/sh -c 'echo started > /run/selftest/state; exec sleep infinity'
RuntimeDirectory=selftest
NoNewPrivileges=yes
ProtectSystem=strict
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""


@pytest.fixture(scope="session")
def harness_env() -> dict[str, str]:
    """The environment harness/env.sh exports (CONTAINERS_CONF, image tags, ...)."""
    out = subprocess.run(
        ["bash", "-c", ". harness/env.sh && env -0"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    env = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    return {**os.environ, **env}


def podman(env: dict[str, str], *args: str, check: bool = True) -> str:
    result = subprocess.run(
        ["podman", *args], env=env, check=False, capture_output=True, text=True, timeout=120
    )
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args[:3])} failed: {result.stderr.strip()}", pytrace=False)
    return result.stdout.strip()


@pytest.fixture
def boot_host(harness_env: dict[str, str]) -> Iterator[Callable[[str], str]]:
    """Factory: boot_host(image_var) starts a host and returns its name; all are removed."""
    started: list[str] = []

    def boot(image_var: str) -> str:
        image = harness_env[image_var]
        exists = subprocess.run(["podman", "image", "exists", image], env=harness_env, check=False)
        if exists.returncode != 0:
            pytest.fail(f"image {image} is missing: run `make hosts-image`", pytrace=False)
        name = f"shield-selftest-{uuid.uuid4().hex[:8]}"
        started.append(name)
        podman(
            harness_env,
            "run",
            "-d",
            "--pull=never",
            "--name",
            name,
            "--hostname",
            name,
            "--label",
            LABEL,
            "--systemd=always",
            "--privileged",
            image,
        )
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        state = ""
        while time.monotonic() < deadline:
            state = podman(harness_env, "exec", name, "systemctl", "is-system-running", check=False)
            if state in ("running", "degraded"):
                return name
            time.sleep(0.3)
        pytest.fail(
            f"{name} did not boot within {BOOT_TIMEOUT_S} s (state {state!r})", pytrace=False
        )

    yield boot
    for name in started:
        podman(harness_env, "rm", "-f", "-t", "5", name)


@pytest.mark.parametrize("image_var", ["SHIELD_IMAGE_DEBIAN12", "SHIELD_IMAGE_DEBIAN13"])
def test_host_boots_and_starts_a_hardened_unit(
    boot_host: Callable[[str], str], harness_env: dict[str, str], image_var: str
) -> None:
    name = boot_host(image_var)
    assert podman(harness_env, "exec", name, "cat", "/proc/1/comm") == "systemd"
    subprocess.run(
        [
            "podman",
            "exec",
            "-i",
            name,
            "sh",
            "-c",
            "cat > /etc/systemd/system/shield-selftest.service",
        ],
        input=UNIT,
        env=harness_env,
        check=True,
        text=True,
        timeout=30,
    )
    podman(harness_env, "exec", name, "systemctl", "daemon-reload")
    podman(harness_env, "exec", name, "systemctl", "enable", "--now", "shield-selftest.service")
    state = podman(
        harness_env, "exec", name, "systemctl", "is-active", "shield-selftest", check=False
    )
    journal = podman(harness_env, "exec", name, "journalctl", "-u", "shield-selftest", "--no-pager")
    assert state == "active", f"shield-selftest is {state}:\n{journal}"
    assert podman(harness_env, "exec", name, "cat", "/run/selftest/state") == "started"
    show = podman(
        harness_env,
        "exec",
        name,
        "systemctl",
        "show",
        "shield-selftest",
        "-p",
        "NoNewPrivileges,ProtectSystem,PrivateTmp",
    )
    assert sorted(show.splitlines()) == [
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectSystem=strict",
    ]


def test_hosts_are_removed_after_the_test(harness_env: dict[str, str]) -> None:
    """The factory above cleaned up: no self-test container is left (runs after the boots)."""
    assert podman(harness_env, "ps", "-aq", "--filter", f"label={LABEL}") == ""


COPIED = "/etc/shield-selftest.txt"  # a path on the booted test host
PLAYBOOK = """\
- name: The harness's connection runs each module through one podman exec
  hosts: all
  gather_facts: false
  tasks:
    - name: A module
      ansible.builtin.command: cat /proc/1/comm
      register: comm
      changed_when: false
    - name: A module through become, as the roles run theirs
      ansible.builtin.command: id -u
      become: true
      register: uid
      changed_when: false
    - name: A file transfer (the parent connection's copy into the mounted root)
      ansible.builtin.copy:
        content: "shield\\n"
        dest: "{{ copied }}"
        mode: "0600"
    - name: The results
      ansible.builtin.debug:
        msg: "comm={{ comm.stdout }} uid={{ uid.stdout }}"
"""


def test_podman_pipelined_runs_each_module_in_one_exec(
    boot_host: Callable[[str], str], harness_env: dict[str, str], tmp_path: Path
) -> None:
    """harness/plugins/connection/podman_pipelined.py, the connection of the sandbox and of every
    scenario: a module is sent on standard input to one `podman exec --interactive` (no temporary
    directory made, chmodded and removed around it), become works, files still arrive."""
    name = boot_host("SHIELD_IMAGE_DEBIAN12")
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(PLAYBOOK)
    env = {**harness_env, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-vvv",
            "-i",
            f"{name},",
            "-c",
            "podman_pipelined",
            "-e",
            "ansible_python_interpreter=/usr/bin/python3",
            "-e",
            f"copied={COPIED}",
            "--limit",
            name,
            str(playbook),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "comm=systemd uid=0" in run.stdout
    assert podman(harness_env, "exec", name, "cat", COPIED) == "shield"
    execs = [line for line in run.stdout.splitlines() if "RUN [" in line and "b'exec'" in line]
    assert execs, "no podman exec was logged: did -vvv change its format?"
    per_task = run.stdout.split("TASK [")[1:]
    command_tasks = [t for t in per_task if t.startswith(("A module]", "A module through become"))]
    assert len(command_tasks) == 2
    for task in command_tasks:
        runs = [line for line in task.splitlines() if "RUN [" in line and "b'exec'" in line]
        assert len(runs) == 1, f"one podman exec per module, not {len(runs)}:\n" + "\n".join(runs)
        assert "b'--interactive'" in runs[0], runs[0]
    tmp_dirs = [
        line for task in command_tasks for line in task.splitlines() if "ansible-tmp-" in line
    ]
    assert not tmp_dirs, "a pipelined module needs no remote temporary directory:\n" + "\n".join(
        tmp_dirs
    )
