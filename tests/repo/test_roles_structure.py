"""Guards on the roles' shape: templates used, handlers guarded, tags, no controller deploys.

- Every deployment template (roles/*/templates/*.j2 outside shield_orchestrator/, which the
  render harness checks) is used by a task, and every template a task names exists.
- Handlers carry a capitalised name and `listen:`; service handlers skip check mode, and the
  app roles' handlers skip `__shield_render_only` (playbooks/render.yml runs on the controller).
- No role has a meta dependency: `include_role: tasks_from: render_app.yml` would pull it in and
  deploy onto the controller (it once did: the orchestrator role ran on the render machine).
- Every task of the pool role carries the tag `workers` through tasks/main.yml, so
  `site.yml -t workers` reaches the pool and only the pool.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())
APP_ROLES = ["orchestrator", "orchestrator_workers"]


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _task_sources(role: str) -> set[str]:
    found: set[str] = set()
    for path in (REPO / "roles" / role / "tasks").glob("*.yml"):
        found |= set(re.findall(r"src:\s*\"?([A-Za-z0-9_.@/-]+\.j2)\"?", path.read_text()))
    return found


def _deploy_templates(role: str) -> set[str]:
    base = REPO / "roles" / role / "templates"
    return {
        str(p.relative_to(base))
        for p in base.rglob("*.j2")
        if "shield_orchestrator" not in p.relative_to(base).parts
    }


@pytest.mark.parametrize("role", ROLES)
def test_every_template_is_used_and_exists(role: str) -> None:
    on_disk, used = _deploy_templates(role), _task_sources(role)
    assert not on_disk - used, f"roles/{role}/templates: unused {sorted(on_disk - used)}"
    assert not used - on_disk, f"roles/{role}/tasks name missing templates {sorted(used - on_disk)}"


@pytest.mark.parametrize("role", ROLES)
def test_handlers_are_named_listened_and_guarded(role: str) -> None:
    handlers = _yaml(REPO / "roles" / role / "handlers" / "main.yml")
    assert handlers, f"roles/{role}/handlers/main.yml is empty"
    for h in handlers:
        name = h["name"]
        assert name[0].isupper(), f"{role}: handler {name!r} must start with a capital"
        assert h.get("listen"), f"{role}: handler {name!r} needs listen:"
        when = (
            " ".join(h.get("when") or [])
            if isinstance(h.get("when"), list)
            else str(h.get("when", ""))
        )
        if "ansible.builtin.systemd_service" in h:
            assert "ansible_check_mode" in when, f"{role}: {name!r} must skip check mode"
        if role in APP_ROLES:
            assert "__shield_render_only" in when, (
                f"{role}: {name!r} must skip __shield_render_only"
            )


@pytest.mark.parametrize("role", ROLES)
def test_no_role_dependencies(role: str) -> None:
    meta = _yaml(REPO / "roles" / role / "meta" / "main.yml")
    assert not meta.get("dependencies"), (
        f"roles/{role}/meta/main.yml: a dependency is also run by include_role tasks_from "
        "(playbooks/render.yml would deploy on the controller); list the roles in the play"
    )


@pytest.mark.parametrize("role", ROLES)
def test_main_reads_preflight_install_configure_run(role: str) -> None:
    main = (REPO / "roles" / role / "tasks" / "main.yml").read_text()
    steps = [s for s in ("preflight.yml", "install.yml", "configure.yml", "run.yml") if s in main]
    assert steps[0] == "preflight.yml", f"{role}: steps {steps}"
    assert steps[-1] == "run.yml", f"{role}: steps {steps}"
    assert steps == sorted(steps, key=main.index), f"{role}: steps out of order {steps}"


def _imports(role: str) -> list[dict[str, Any]]:
    tasks = _yaml(REPO / "roles" / role / "tasks" / "main.yml")
    out = []
    for t in tasks:
        out.extend(t.get("block", [t]))
    return out


def test_every_pool_task_is_tagged_workers() -> None:
    for imp in _imports("orchestrator_workers"):
        assert "workers" in imp.get("tags", []), (
            f"orchestrator_workers: {imp['name']} lacks tag workers"
        )


@pytest.mark.parametrize("role", ROLES)
def test_step_tags_follow_the_convention(role: str) -> None:
    for imp in _imports(role):
        step = imp["ansible.builtin.import_tasks"].removesuffix(".yml")
        tags = imp.get("tags", [])
        assert f"{role}_{step}" in tags or step == "preflight", (
            f"{role}: {step} lacks tag {role}_{step}"
        )
        if step == "preflight":
            assert "preflight" in tags, f"{role}: preflight lacks tag preflight"


def test_render_harness_handlers_stay_guarded() -> None:
    render = (REPO / "playbooks" / "render.yml").read_text()
    assert "__shield_render_only: true" in render
