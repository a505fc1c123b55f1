"""The indexer validation's fixture repository (roles/orchestrator_indexer, real git).

files/indexer_fixture.py makes files/fixture a bare repository with one fixed commit: the same
files give the same commit id in any new repository (every indexer host builds its own, and the
validation waits for that id), a second run changes nothing, a changed file moves the branch,
and the repository ends up owned by the given user. vars/main.yml lists exactly the fixture's
files (the play copies that list).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "orchestrator_indexer"
SCRIPT = ROLE / "files" / "indexer_fixture.py"
FIXTURE = ROLE / "files" / "fixture"


def build(src: Path, repo: Path) -> dict[str, object]:
    owner = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--src", str(src), "--repo", str(repo),
         "--branch", "main", "--owner", owner, "--group", group],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out: dict[str, object] = json.loads(done.stdout)
    return out


def git(repo: Path, *args: str) -> str:
    argv = ["git", "-c", f"safe.directory={repo}", f"--git-dir={repo}", *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def copy_fixture(dest: Path) -> Path:
    shutil.copytree(FIXTURE, dest)
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # as the play copies them
    return dest


def test_vars_list_every_fixture_file() -> None:
    listed = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())[
        "__orchestrator_indexer_fixture_files"
    ]
    on_disk = sorted(str(p.relative_to(FIXTURE)) for p in FIXTURE.rglob("*") if p.is_file())
    assert sorted(listed) == on_disk


def test_fixed_commit_idempotent_and_moved_by_a_change(tmp_path: Path) -> None:
    src = copy_fixture(tmp_path / "src")
    first = build(src, tmp_path / "a.git")
    assert first["changed"] is True
    again = build(src, tmp_path / "a.git")
    assert again == {"commit": first["commit"], "changed": False}
    # another host: a new repository from another copy gives the same commit id
    other = build(copy_fixture(tmp_path / "src2"), tmp_path / "b.git")
    assert other["commit"] == first["commit"]

    repo = tmp_path / "a.git"
    assert git(repo, "rev-parse", "refs/heads/main").strip() == first["commit"]
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    lines = git(repo, "ls-tree", "-r", "main").splitlines()  # <mode> blob <sha>\t<path>
    tree = [f"{line.split()[0]} {line.split(chr(9))[1]}" for line in lines]
    listed = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())[
        "__orchestrator_indexer_fixture_files"
    ]
    assert sorted(tree) == sorted(f"100644 {f}" for f in listed)
    assert all(p.stat().st_uid == os.getuid() for p in [repo, *repo.rglob("*")])

    (src / "docs" / "logbook.md").write_text("The logbook moved.\n")
    moved = build(src, repo)
    assert moved["changed"] is True
    assert moved["commit"] != first["commit"]
    assert git(repo, "rev-list", "--count", "main").strip() == "1"  # one commit, no history
    assert build(src, repo) == {"commit": moved["commit"], "changed": False}


def test_the_owner_clones_it(tmp_path: Path) -> None:
    repo = tmp_path / "f.git"
    commit = build(copy_fixture(tmp_path / "src"), repo)["commit"]
    clone = tmp_path / "mirror.git"
    subprocess.run(["git", "clone", "--quiet", "--mirror", str(repo), str(clone)], check=True)
    assert git(clone, "rev-parse", "main").strip() == commit
