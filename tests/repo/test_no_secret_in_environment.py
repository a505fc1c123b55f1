"""No task hands a secret to a command through ``environment:`` (issue 20).

ansible-core prints a task's environment at -vvv even with ``no_log``; secrets go on stdin, into
a root-only file, or into the services' EnvironmentFile instead. This walks every task of every
role and playbook (blocks included) and fails naming the task whose environment templates a
secret variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SECRET = re.compile(r"password|passwd|secret|api_keys?\b|token|vault_", re.IGNORECASE)


def _tasks(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from _tasks(node.get(key))


def _task_files() -> list[Path]:
    files = sorted(REPO.glob("roles/*/tasks/*.yml")) + sorted(REPO.glob("roles/*/handlers/*.yml"))
    return files + sorted(REPO.glob("playbooks/*.yml")) + sorted(REPO.glob("molecule/*/*.yml"))


def test_the_walk_sees_the_tasks() -> None:
    names = [
        t.get("name", "") for f in _task_files() for t in _tasks(yaml.safe_load(f.read_text()))
    ]
    assert "Check that the app role logs in with its password" in names  # inside a block


def test_no_task_environment_carries_a_secret() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {task.get('name', '?')!r} sets {key}={value!r}"
        for path in _task_files()
        for task in _tasks(yaml.safe_load(path.read_text()))
        if isinstance(task.get("environment"), dict)
        for key, value in task["environment"].items()
        if SECRET.search(str(key)) or SECRET.search(str(value))
    ]
    assert offenders == [], "secrets in a task's environment (-vvv prints it): " + "; ".join(
        offenders
    )
