"""The indexing plan against real git repositories built in tmp_path (indexing/mirror.py).

Each test builds an "origin" work tree with ``git init``/``git commit`` and plans from a bare
``git clone --mirror`` of it, as the indexer will: the plan compares trees (``ls-tree``), so
it stays right after a force-push that removed the previously indexed commit altogether.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from shield_orchestrator.indexing.mirror import (
    GitError,
    plan_commit,
    read_heads,
    resolve_commit,
)
from shield_orchestrator.indexing.plan import (
    LFS_POINTER_PREFIX,
    Changes,
    PlanPolicy,
    Rename,
    SkipReason,
)

pytestmark = pytest.mark.integration

# Hermetic git: no user or system configuration, fixed identity and dates.
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


class Origin:
    """A work tree to commit into, and its bare mirror to plan from."""

    def __init__(self, root: Path) -> None:
        self.work = root / "origin"
        self.mirror = root / "mirror.git"
        self.work.mkdir()
        self.git("init", "--quiet", "--initial-branch=main")

    def git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd or self.work,
            env=GIT_ENV,
            capture_output=True,
            check=True,
            text=True,
        )
        return done.stdout.strip()

    def write(self, path: str, content: str | bytes) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        target.write_bytes(content)

    def remove(self, path: str) -> None:
        self.git("rm", "--quiet", path)

    def commit(self, message: str = "c") -> str:
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def sync_mirror(self) -> Path:
        """Clone the mirror once, then fetch into it (forced: history rewrites included)."""
        if not self.mirror.exists():
            self.git("clone", "--quiet", "--mirror", str(self.work), str(self.mirror))
        else:
            self.git("fetch", "--quiet", "--prune", "origin", cwd=self.mirror)
        return self.mirror


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    return Origin(tmp_path)


POLICY = PlanPolicy(max_file_bytes=1000)


def test_add_modify_delete_rename(origin: Origin) -> None:
    origin.write("a.py", "def a():\n    return 1\n")
    origin.write("b.py", "def b():\n    return 2\n")
    origin.write("c.py", "def c():\n    return 3\n")
    origin.write("docs/readme.md", "# read me\n")
    first = origin.commit()
    plan1 = plan_commit(origin.sync_mirror(), "main", {}, POLICY)
    assert plan1.commit == first
    assert plan1.changes == Changes(added=("a.py", "b.py", "c.py", "docs/readme.md"))
    assert plan1.skipped == ()

    origin.write("a.py", "def a():\n    return 10\n")
    origin.remove("b.py")
    (origin.work / "pkg").mkdir()
    origin.git("mv", "c.py", "pkg/c.py")
    second = origin.commit()
    plan2 = plan_commit(origin.sync_mirror(), "main", plan1.manifest, POLICY)
    assert plan2.commit == second
    assert plan2.changes == Changes(
        modified=("a.py",),
        removed=("b.py",),
        renamed=(Rename("c.py", "pkg/c.py", plan1.manifest["c.py"]),),
        unchanged=1,
    )
    assert set(plan2.manifest) == {"a.py", "pkg/c.py", "docs/readme.md"}

    # Nothing changed: an empty plan.
    plan3 = plan_commit(origin.sync_mirror(), "main", plan2.manifest, POLICY)
    assert plan3.changes == Changes(unchanged=3)
    assert plan3.changes.is_empty


def test_identical_files_and_same_basenames(origin: Origin) -> None:
    same = "VALUE = 42\n"
    origin.write("one/const.py", same)
    origin.write("two/const.py", same)
    origin.write("a/__init__.py", "from .x import X\n")
    origin.write("b/__init__.py", "from .y import Y\n")
    origin.commit()
    plan1 = plan_commit(origin.sync_mirror(), "main", {}, POLICY)
    assert sorted(plan1.manifest) == [
        "a/__init__.py",
        "b/__init__.py",
        "one/const.py",
        "two/const.py",
    ]
    assert plan1.manifest["one/const.py"] == plan1.manifest["two/const.py"]
    assert plan1.manifest["a/__init__.py"] != plan1.manifest["b/__init__.py"]

    # One copy goes: a removal (the other path keeps the blob), not a rename.
    origin.remove("one/const.py")
    origin.commit()
    plan2 = plan_commit(origin.sync_mirror(), "main", plan1.manifest, POLICY)
    assert plan2.changes == Changes(removed=("one/const.py",), unchanged=3)

    # The same content arrives at a third path: an addition (a copy).
    origin.write("three/const.py", same)
    origin.commit()
    plan3 = plan_commit(origin.sync_mirror(), "main", plan2.manifest, POLICY)
    assert plan3.changes == Changes(added=("three/const.py",), unchanged=3)


def test_force_push_plans_from_trees_not_commit_ranges(origin: Origin) -> None:
    origin.write("x.py", "X = 1\n")
    origin.write("keep.py", "K = 1\n")
    base = origin.commit("base")
    origin.write("x.py", "X = 2\n")
    origin.write("y.py", "Y = 2\n")
    indexed = origin.commit("indexed, then rewritten away")
    mirror = origin.sync_mirror()
    plan1 = plan_commit(mirror, "main", {}, POLICY)
    assert plan1.commit == indexed

    # History rewritten: main goes back to base and gets another commit; the indexed commit
    # is pruned from the mirror, so no commit range from it exists any more.
    origin.git("reset", "--quiet", "--hard", base)
    origin.write("x.py", "X = 3\n")
    origin.write("z.py", "Z = 3\n")
    rewritten = origin.commit("rewritten")
    origin.sync_mirror()
    origin.git("reflog", "expire", "--expire=now", "--all", cwd=mirror)
    origin.git("gc", "--quiet", "--prune=now", cwd=mirror)
    gone = subprocess.run(
        ["git", "-C", str(mirror), "cat-file", "-e", f"{indexed}^{{commit}}"],
        env=GIT_ENV,
        capture_output=True,
        check=False,
    )
    assert gone.returncode != 0, "the indexed commit should be gone from the mirror"

    plan2 = plan_commit(mirror, "main", plan1.manifest, POLICY)
    assert plan2.commit == rewritten
    assert plan2.changes == Changes(
        added=("z.py",), modified=("x.py",), removed=("y.py",), unchanged=1
    )


def test_every_skip_rule_on_a_real_tree(origin: Origin) -> None:
    origin.write("src/app.py", "def main():\n    pass\n")
    origin.write(
        ".gitattributes",
        "gen/** linguist-generated\nthird/** linguist-vendored=true\n*.dat binary\n"
        "gen/keep.py -linguist-generated\n",
    )
    origin.write("gen/parser.py", "# generated\n")
    origin.write("gen/keep.py", "KEEP = 1\n")
    origin.write("third/lib.js", "export const x = 1;\n")
    origin.write("data/blob.dat", "plain text, but marked binary\n")
    origin.write("img/logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    origin.write("assets/model.bin", LFS_POINTER_PREFIX + b"\noid sha256:" + b"1" * 64 + b"\n")
    origin.write("src/huge.py", "x = 1\n" * 200)  # 1,200 bytes > max_file_bytes (1,000)
    origin.write(".env", "API_KEY=not-a-real-key\n")
    origin.write("deploy/tls.key", "-----BEGIN PRIVATE KEY-----\n")
    origin.write("dist/bundle.js", "var a;\n")
    origin.write("empty.py", "")
    os.symlink("/etc/passwd", origin.work / "passwd-link")
    first = origin.commit()
    # A submodule entry (gitlink), without fetching any other repository.
    origin.git("update-index", "--add", "--cacheinfo", f"160000,{first},third_party/sub")
    origin.git("commit", "--quiet", "-m", "gitlink")

    policy = PlanPolicy(max_file_bytes=1000, exclude=("dist/",))
    mirror = origin.sync_mirror()
    plan = plan_commit(mirror, "main", {}, policy)
    assert {s.path: s.reason for s in plan.skipped} == {
        "gen/parser.py": SkipReason.GENERATED,
        "third/lib.js": SkipReason.VENDORED,
        "data/blob.dat": SkipReason.BINARY,
        "img/logo.png": SkipReason.BINARY,
        "assets/model.bin": SkipReason.LFS_POINTER,
        "src/huge.py": SkipReason.OVER_MAX_FILE_BYTES,
        ".env": SkipReason.SECRET,
        "deploy/tls.key": SkipReason.SECRET,
        "dist/bundle.js": SkipReason.EXCLUDED,
        "empty.py": SkipReason.EMPTY,
        "passwd-link": SkipReason.SYMLINK,
        "third_party/sub": SkipReason.SUBMODULE,
    }
    assert sorted(plan.manifest) == [".gitattributes", "gen/keep.py", "src/app.py"]
    assert plan.changes.added == (".gitattributes", "gen/keep.py", "src/app.py")
    # Planning reads the mirror only: no index (nor anything else) was written into it.
    assert not (mirror / "index").exists()


def test_blobs_indexed_before_are_not_read_again(origin: Origin) -> None:
    """The plan reads heads only of new blobs: a blob in the manifest is known to be text."""
    origin.write("a.bin", b"\x00binary\x00")
    origin.commit()
    mirror = origin.sync_mirror()
    sha = origin.git("rev-parse", "HEAD:a.bin")
    assert plan_commit(mirror, "main", {}, POLICY).skipped[0].reason == SkipReason.BINARY
    # Pretend an earlier run indexed that blob: its content is not looked at again.
    plan = plan_commit(mirror, "main", {"old.bin": sha}, POLICY)
    assert plan.changes == Changes(renamed=(Rename("old.bin", "a.bin", sha),))


def test_read_heads_keeps_the_first_bytes_of_each_blob(origin: Origin) -> None:
    origin.write("big.txt", "y" * 20_000)
    origin.write("small.txt", "s\n")
    origin.commit()
    mirror = origin.sync_mirror()
    big, small = (origin.git("rev-parse", f"HEAD:{p}") for p in ("big.txt", "small.txt"))
    heads = read_heads(mirror, [big, small, small], limit=100)
    assert heads == {big: b"y" * 100, small: b"s\n"}
    assert read_heads(mirror, []) == {}
    with pytest.raises(GitError, match="no object"):
        read_heads(mirror, ["0" * 40])


def test_bad_revisions(origin: Origin) -> None:
    origin.write("a.py", "A = 1\n")
    origin.commit()
    mirror = origin.sync_mirror()
    with pytest.raises(GitError, match="rev-parse exited"):
        resolve_commit(mirror, "no-such-branch")
    with pytest.raises(ValueError, match="not a branch, tag or commit name"):
        resolve_commit(mirror, "--output=/tmp/x")
    with pytest.raises(ValueError, match="not a branch, tag or commit name"):
        plan_commit(mirror, "main branch", {}, POLICY)
