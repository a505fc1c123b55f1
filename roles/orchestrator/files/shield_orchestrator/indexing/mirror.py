"""The git calls behind a plan: list a commit's tree, read its attributes and blob heads.

Every call is ``subprocess.run`` with an argv list (no shell) on a repository directory,
bare mirror or work tree alike. Reads only: the repository is never written (attributes are
read through a throw-away bare repository that borrows the objects, see
:func:`read_attributes`). The decisions themselves are in :mod:`.plan`.

    plan_commit(repo, rev, previous, policy)
        git rev-parse --verify <rev>^{commit}           -> commit sha
        git ls-tree -r -z --full-tree -l <sha>           -> entries
        git check-attr --cached -z --stdin ...           only if the tree has a .gitattributes
        git cat-file --batch                             first 8 KiB of blobs not indexed before
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from shield_orchestrator.errors import ShieldError
from shield_orchestrator.indexing.plan import (
    ATTRIBUTES,
    BINARY_PROBE_BYTES,
    Plan,
    PlanPolicy,
    TreeEntry,
    build_plan,
    candidates,
    content_probe,
    needs_head,
    parse_check_attr,
    parse_ls_tree,
    skip_by_attributes,
)

GIT_TIMEOUT_S = 300.0  # one git command; ls-tree of a 100k-file tree takes well under a second


class GitError(ShieldError):
    """A git command failed; the message names the command (never its environment)."""


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    argv = ["git", "-C", str(repo), *args]
    try:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, check=False, timeout=GIT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {args[0]} timed out after {GIT_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip()[-500:]
        raise GitError(f"git {args[0]} exited with {done.returncode}: {tail}")
    return done.stdout


def _checked_rev(rev: str) -> str:
    if not rev or rev.startswith("-") or any(c.isspace() or c == "\0" for c in rev):
        raise ValueError(f"revision {rev!r} is not a branch, tag or commit name")
    return rev


def resolve_commit(repo: Path, rev: str) -> str:
    """The full sha of the commit ``rev`` names (a branch, tag or sha)."""
    out = _git(repo, "rev-parse", "--verify", "--quiet", f"{_checked_rev(rev)}^{{commit}}")
    return out.decode("ascii").strip()


def list_tree(repo: Path, commit: str) -> list[TreeEntry]:
    """Every file of the commit's tree, recursively, with sizes (``ls-tree -r -z -l``)."""
    return parse_ls_tree(
        _git(repo, "ls-tree", "-r", "-z", "--full-tree", "-l", _checked_rev(commit))
    )


def read_attributes(repo: Path, commit: str, paths: Iterable[str]) -> dict[str, dict[str, str]]:
    """The :data:`.plan.ATTRIBUTES` of ``paths`` as the commit's ``.gitattributes`` set them.

    git 2.39 (Debian 12) has no ``check-attr --source``, and a bare mirror has no index to
    read ``.gitattributes`` from: read the tree into the index of a throw-away bare
    repository that borrows the mirror's objects (``objects/info/alternates``), then ask
    ``check-attr --cached`` there. The mirror itself is not written.
    """
    wanted = list(paths)
    if not wanted:
        return {}
    objects, info_attributes = (
        Path(line) if Path(line).is_absolute() else repo / line
        for line in _git(
            repo, "rev-parse", "--git-path", "objects", "--git-path", "info/attributes"
        )
        .decode()
        .splitlines()
    )
    with tempfile.TemporaryDirectory(prefix="shield-attr-") as tmp:
        scratch = Path(tmp)
        _git(scratch, "init", "--quiet", "--bare")
        (scratch / "objects" / "info" / "alternates").write_text(f"{objects.resolve()}\n")
        if info_attributes.is_file():  # the repository's info/attributes apply as well
            (scratch / "info").mkdir(exist_ok=True)
            (scratch / "info" / "attributes").write_bytes(info_attributes.read_bytes())
        _git(scratch, "read-tree", _checked_rev(commit))
        stdin = b"".join(p.encode("utf-8") + b"\0" for p in wanted)
        raw = _git(scratch, "check-attr", "--cached", "-z", "--stdin", *ATTRIBUTES, stdin=stdin)
    return parse_check_attr(raw)


def read_heads(
    repo: Path,
    shas: Iterable[str],
    limit: int = BINARY_PROBE_BYTES,
    probe: Callable[[bytes], bytes] = bytes,
) -> dict[str, bytes]:
    """The first ``limit`` bytes of each blob (``probe`` of them: plan_commit keeps only
    :func:`.plan.content_probe`, 44 bytes a blob), through one ``git cat-file --batch``.

    One sha is written, its answer read, then the next: memory stays at one blob plus what
    ``probe`` keeps of each, whatever the number of blobs (callers only ask for blobs under
    ``max_file_bytes``).
    """
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    heads: dict[str, bytes] = {}
    argv = ["git", "-C", str(repo), "cat-file", "--batch"]
    pipe, devnull = subprocess.PIPE, subprocess.DEVNULL
    with subprocess.Popen(argv, stdin=pipe, stdout=pipe, stderr=devnull) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            for sha in wanted:
                proc.stdin.write(sha.encode("ascii") + b"\n")
                proc.stdin.flush()
                header = proc.stdout.readline().split()
                if len(header) != 3:
                    raise GitError(f"git cat-file: no object {sha} ({b' '.join(header)!r})")
                size = int(header[2])
                body = proc.stdout.read(size + 1)  # the content and its trailing newline
                heads[sha] = probe(body[: min(size, limit)])
        finally:
            proc.stdin.close()
            proc.wait(timeout=GIT_TIMEOUT_S)
    return heads


def plan_commit(repo: Path, rev: str, previous: Mapping[str, str], policy: PlanPolicy) -> Plan:
    """The plan of indexing ``rev`` of ``repo`` given the previous manifest (path -> sha)."""
    commit = resolve_commit(repo, rev)
    entries = list_tree(repo, commit)
    keep, _ = candidates(entries, policy)
    has_attributes = any(e.path.rsplit("/", 1)[-1] == ".gitattributes" for e in entries)
    attributes = read_attributes(repo, commit, (e.path for e in keep)) if has_attributes else {}
    known_text = set(previous.values())
    unread = (
        e.sha
        for e in keep
        if needs_head(e, known_text) and skip_by_attributes(attributes.get(e.path, {})) is None
    )
    heads = read_heads(repo, unread, probe=content_probe)
    return build_plan(commit, entries, previous, policy, attributes=attributes, heads=heads)
