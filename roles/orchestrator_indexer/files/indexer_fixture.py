"""Make the indexer fixture a bare git repository with one fixed commit (validation).

    python3 indexer_fixture.py --src DIR --repo PATH.git --branch main --owner shield --group shield

``--src`` holds the fixture's files (roles/orchestrator_indexer/files/fixture, copied to the
host). Its tree is committed with fixed author, committer, dates and message, so the commit id
depends on the files alone: every indexer host and every run computes the same one. The branch
moves (and the run reports a change) only when the repository is new or the files changed.

The repository is bare (no work tree whose ownership git would also question) and owned by
the indexers' user: git refuses a repository another user owns ("dubious ownership") unless
``safe.directory`` names it. This script's own git calls run as root and pass
``safe.directory`` for the repository on their command line; no git configuration of the host
is read or written (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL=/dev/null``).

Prints one JSON line: ``{"commit": ..., "changed": ...}``; exit 1 with a message on a git error.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import subprocess
import sys
import tempfile
from pathlib import Path

IDENTITY = "Shield orchestrator"
EMAIL = "indexer-fixture@shield-orchestrator.invalid"
DATE = "1704067200 +0000"  # 2024-01-01T00:00:00Z: a fixed date gives a fixed commit id
MESSAGE = "Indexer fixture (roles/orchestrator_indexer/files/fixture)\n"


def git_env(index_file: Path | None = None) -> dict[str, str]:
    """No GIT_* variable of the caller, no system or global configuration, a fixed identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME=IDENTITY,
        GIT_AUTHOR_EMAIL=EMAIL,
        GIT_AUTHOR_DATE=DATE,
        GIT_COMMITTER_NAME=IDENTITY,
        GIT_COMMITTER_EMAIL=EMAIL,
        GIT_COMMITTER_DATE=DATE,
    )
    if index_file is not None:
        env["GIT_INDEX_FILE"] = str(index_file)
    return env


def git(repo: Path, *args: str, env: dict[str, str] | None = None, stdin: str = "") -> str:
    """One git command on the bare repository; its stdout without the trailing newline."""
    argv = ["git", "-c", f"safe.directory={repo}", f"--git-dir={repo}", *args]
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=env or git_env(), check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}"
        )
    return done.stdout.strip()


def commit_tree(src: Path, repo: Path) -> str:
    """The fixed commit of ``src``'s files (their blobs and trees are written into ``repo``)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = git_env(Path(tmp) / "index")
        # the play copies every file with mode 0644: each enters the tree as 100644
        git(repo, f"--work-tree={src}", "add", "--all", ".", env=env)
        tree = git(repo, "write-tree", env=env)
    return git(repo, "commit-tree", tree, stdin=MESSAGE)


def chown_tree(root: Path, uid: int, gid: int) -> bool:
    """Give ``root`` and everything under it to uid:gid; whether anything changed."""
    changed = False
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.lchown(path, uid, gid)
            changed = True
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True)
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--branch", required=True)
    parser.add_argument("--owner", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args()
    uid, gid = pwd.getpwnam(args.owner).pw_uid, grp.getgrnam(args.group).gr_gid
    repo: Path = args.repo
    ref = f"refs/heads/{args.branch}"
    try:
        created = not (repo / "HEAD").is_file()
        if created:
            repo.mkdir(mode=0o750, parents=False, exist_ok=True)
            git(repo, "init", "--quiet", "--bare")
            git(repo, "symbolic-ref", "HEAD", ref)
        commit = commit_tree(args.src, repo)
        current = git(repo, "for-each-ref", "--format=%(objectname)", ref)
        moved = current != commit
        if moved:
            git(repo, "update-ref", ref, commit)
    except RuntimeError as exc:
        print(json.dumps({"error": str(exc), "repo": str(repo)}))
        return 1
    owned = chown_tree(repo, uid, gid)
    print(json.dumps({"commit": commit, "changed": created or moved or owned}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
