"""Least privilege for the deploy itself: every play becomes root, so Ansible can log in as an
unprivileged deploy user with sudo (README.md "The deploy user").

- every play in playbooks/*.yml says ``become: true``, except playbooks/render.yml, which runs
  on the controller and says ``become: false`` (`make render` needs no sudo);
- every task that runs on the controller (``delegate_to: localhost``) says ``become: false``;
- the production inventory logs in as a named user that is not root;
- the preflight refuses a host whose tasks do not run as root after become, naming the fix:
  playbooks/preflight.yml runs on localhost (local connection, nothing changes) with become to
  ``nobody`` through ``su`` (root needs no password for it), so the facts say uid 65534.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.repo.test_preflight import inventory, run_preflight

__all__ = ["inventory"]  # the module-scoped fixture, shared with test_preflight.py

REPO = Path(__file__).resolve().parents[2]
CONTROLLER_PLAYS = {"render.yml"}


def _plays() -> list[tuple[str, dict[str, Any]]]:
    plays = []
    for path in sorted((REPO / "playbooks").glob("*.yml")):
        for play in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if "import_playbook" not in play and "ansible.builtin.import_playbook" not in play:
                plays.append((path.name, play))
    return plays


@pytest.mark.parametrize(
    ("playbook", "play"), _plays(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_play_becomes_root_except_the_controllers(
    playbook: str, play: dict[str, Any]
) -> None:
    want = playbook not in CONTROLLER_PLAYS
    assert play.get("become") is want, (
        f"{playbook}: play {play.get('name')!r} has become: {play.get('become')!r}; "
        f"set `become: {str(want).lower()}` on the play"
    )


def _tasks(items: list[dict[str, Any]] | None) -> Iterator[dict[str, Any]]:
    for item in items or []:
        yield item
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            if isinstance(item.get(key), list):
                yield from _tasks(item[key])


def test_every_task_on_the_controller_does_not_become() -> None:
    files = sorted(REPO.glob("roles/*/tasks/*.yml")) + sorted(REPO.glob("roles/*/handlers/*.yml"))
    files += sorted((REPO / "playbooks").glob("*.yml"))
    delegated = []
    for path in files:
        for task in _tasks(yaml.safe_load(path.read_text(encoding="utf-8"))):
            if task.get("delegate_to") in ("localhost", "127.0.0.1"):
                delegated.append((path.relative_to(REPO), task.get("name"), task.get("become")))
    assert delegated, "no task runs on the controller: the walk found nothing"
    wrong = [(str(p), n) for p, n, become in delegated if become is not False]
    assert wrong == [], f"tasks delegated to localhost without `become: false`: {wrong}"


def test_production_logs_in_as_a_deploy_user() -> None:
    main = REPO / "inventories" / "production" / "group_vars" / "all" / "main.yml"
    user = yaml.safe_load(main.read_text(encoding="utf-8")).get("ansible_user")
    assert isinstance(user, str), f"{main.relative_to(REPO)}: no ansible_user"
    assert user, f"{main.relative_to(REPO)}: ansible_user is empty"
    assert user != "root", f"{main.relative_to(REPO)}: ansible_user is root"


def test_preflight_refuses_tasks_that_do_not_run_as_root(inventory: Path) -> None:
    result = run_preflight(
        inventory,
        {
            "ansible_become_method": "su",
            "ansible_become_user": "nobody",
            "ansible_become_flags": "-s /bin/sh",  # nobody's shell is nologin
            "ansible_python_interpreter": "/usr/bin/python3",  # one that nobody may run
        },
    )
    out = " ".join(result.stdout.split())
    assert result.returncode != 0, out[-2000:]
    assert "the tasks run as nobody (uid 65534), not root" in out, out[-3000:]
    assert "sudoers line" in out, out[-3000:]
    assert "ansible_become_user" in out, out[-3000:]
