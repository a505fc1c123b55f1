"""The render harness (playbooks/render.yml) rejects a template that renders to invalid Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.render.templates import REPO


def _render(roles_path: Path, dest: Path) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ, ANSIBLE_ROLES_PATH=str(roles_path), ANSIBLE_CONFIG=str(REPO / "ansible.cfg")
    )
    playbook = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run(
        [str(playbook), str(REPO / "playbooks" / "render.yml"), "-e", f"render_root={dest}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=170,
        check=False,
    )


def test_a_template_that_renders_to_invalid_python_fails_the_render(tmp_path: Path) -> None:
    roles = tmp_path / "roles"
    shutil.copytree(REPO / "roles" / "orchestrator", roles / "orchestrator")
    shutil.copytree(REPO / "roles" / "orchestrator_workers", roles / "orchestrator_workers")
    shutil.copytree(REPO / "roles" / "temporal", roles / "temporal")  # orchestrator_temporal_*
    broken = roles / "orchestrator" / "templates" / "shield_orchestrator" / "broken.py.j2"
    broken.write_text("LIMIT = {{ orchestrator_redis_port | int }}\ndef oops(:\n    pass\n")
    vars_file = roles / "orchestrator" / "vars" / "main.yml"
    data = yaml.safe_load(vars_file.read_text())
    data["__orchestrator_templates"].append("broken.py")
    vars_file.write_text(yaml.safe_dump(data))

    result = _render(roles, tmp_path / "out")

    assert result.returncode != 0
    assert "broken.py" in result.stdout
    assert "failed to validate" in result.stdout
    assert not (tmp_path / "out" / "shield_orchestrator" / "broken.py").exists()


def test_the_unmodified_roles_render(tmp_path: Path) -> None:
    result = _render(REPO / "roles", tmp_path / "out")
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "out" / "shield_orchestrator" / "workers" / "worker_pool.py").is_file()
