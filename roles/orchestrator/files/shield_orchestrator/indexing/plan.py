"""The indexing plan: pure decisions over a git tree and the previous manifest. No I/O.

A repository at a commit is a set of ``(path, blob sha)`` tuples (``git ls-tree -r -l -z``).
The manifest of the last run maps each indexed path to its blob sha. A run compares the two
trees, never a commit range, so a force-push or a rebase plans correctly::

    entries (ls-tree) --skip_by_entry--> skipped | candidates
    candidates --skip_by_attributes (.gitattributes)--> skipped | candidates
    candidates --skip_by_content (first 8 KiB, new blobs only)--> skipped | indexable
    indexable --over max_files (path order)--> skipped | indexable
    diff_manifests(previous, indexable) -> added, modified, removed, renamed

A rename is the same blob under a new path whose old path is gone; when one blob leaves
several paths and arrives at several others, the paths are paired in sorted order and the
rest are removed or added. A copy (old path still there) is an addition. A file that was
indexed and is now skipped (a rule or a glob changed, or it grew past the cap) is removed.

The file cap keeps the first ``max_files`` indexable paths in path order (the same files at
every run of the same tree); the rest are skipped as ``over_max_files`` and the run ends
``completed_with_errors`` naming the cap (runs.publish). Memory stays at the tree's listing
plus a few bytes per new blob (:func:`content_probe`), never the files' contents.

Skipped files are listed with a :class:`SkipReason` (its value is what operators see, in
``GET /repos/{id}`` and in metrics labels). :mod:`shield_orchestrator.indexing.mirror` runs
the git commands that feed these functions.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"  # a gitlink: the entry is a commit of another repository
BINARY_PROBE_BYTES = 8192  # git's own heuristic: a NUL in the first 8 KiB means binary
LFS_POINTER_MAX_BYTES = 1024  # git-lfs pointer files are about 130 bytes
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"

# Files whose name says they hold credentials: never indexed, whatever the globs say.
SECRET_PATTERNS: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".pypirc",
    ".npmrc",
    ".htpasswd",
    ".git-credentials",
)

# Attributes read from .gitattributes (git check-attr): linguist's own plus git's binary ones.
ATTRIBUTES: tuple[str, ...] = ("linguist-generated", "linguist-vendored", "binary", "diff", "text")


class SkipReason(StrEnum):
    """Why a file of the tree is not indexed. The values are the strings operators see."""

    SYMLINK = "symlink"  # mode 120000: never followed
    SUBMODULE = "submodule"  # mode 160000: counted, not recursed
    PATH_NOT_UTF8 = "path_not_utf8"
    SECRET = "secret"  # noqa: S105 (a reason, no password): .env*, keys (SECRET_PATTERNS)
    EXCLUDED = "excluded"  # matches an exclude glob
    NOT_INCLUDED = "not_included"  # include globs given and none matches
    GENERATED = "generated"  # .gitattributes linguist-generated
    VENDORED = "vendored"  # .gitattributes linguist-vendored
    BINARY = "binary"  # .gitattributes binary/-diff/-text, or a NUL in the first 8 KiB
    OVER_MAX_FILE_BYTES = "over_max_file_bytes"
    EMPTY = "empty"
    LFS_POINTER = "lfs_pointer"  # the blob is a git-lfs pointer, not the file
    OVER_MAX_FILES = "over_max_files"  # beyond the first max_files indexable paths


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One line of ``git ls-tree -r -l -z``."""

    path: str
    mode: str  # "100644", "100755", "120000" (symlink), "160000" (submodule)
    kind: str  # "blob" or "commit" (submodule)
    sha: str
    size: int | None  # None for a submodule ("-")
    path_ok: bool = True  # False when the path is not valid UTF-8 (decoded with replacement)


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    """The per-repository rules. Globs are gitignore-like (see :func:`glob_regex`)."""

    max_file_bytes: int = 1_048_576  # 1 MiB; larger files are skipped
    include: tuple[str, ...] = ()  # empty: every path
    exclude: tuple[str, ...] = ()
    secret_patterns: tuple[str, ...] = SECRET_PATTERNS
    max_files: int = 100_000  # indexable files of one commit; more are over_max_files

    def __post_init__(self) -> None:
        if self.max_file_bytes <= 0:
            raise ValueError(f"max_file_bytes has value {self.max_file_bytes!r}: must be > 0")
        if self.max_files <= 0:
            raise ValueError(f"max_files has value {self.max_files!r}: must be > 0")


@dataclass(frozen=True, slots=True)
class Skipped:
    path: str
    reason: SkipReason
    sha: str


@dataclass(frozen=True, slots=True)
class Rename:
    old_path: str
    new_path: str
    sha: str


@dataclass(frozen=True, slots=True)
class Changes:
    """The difference between two manifests (path -> blob sha); every tuple sorted."""

    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    renamed: tuple[Rename, ...] = ()
    unchanged: int = 0

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.modified or self.removed or self.renamed)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run does: the new manifest, the changes against the old one, what is skipped."""

    commit: str
    manifest: Mapping[str, str]  # path -> blob sha of every indexable file at ``commit``
    changes: Changes
    skipped: tuple[Skipped, ...] = field(default=())

    def skipped_by_reason(self) -> dict[SkipReason, int]:
        return dict(Counter(s.reason for s in self.skipped))


# --- parsing git's output --------------------------------------------------------------------


def parse_ls_tree(raw: bytes) -> list[TreeEntry]:
    """Entries of ``git ls-tree -r -l -z`` (``<mode> <type> <sha> <size>\\t<path>\\0``)."""
    entries = []
    for record in raw.split(b"\0"):
        if not record:
            continue
        meta, sep, raw_path = record.partition(b"\t")
        fields = meta.split()
        if not sep or len(fields) != 4:
            raise ValueError(f"unexpected git ls-tree record: {record[:200]!r}")
        mode, kind, sha, size = (f.decode("ascii") for f in fields)
        try:
            path, path_ok = raw_path.decode("utf-8"), True
        except UnicodeDecodeError:
            path, path_ok = raw_path.decode("utf-8", "replace"), False
        entries.append(
            TreeEntry(path, mode, kind, sha, None if size == "-" else int(size), path_ok)
        )
    return entries


def parse_check_attr(raw: bytes) -> dict[str, dict[str, str]]:
    """``git check-attr -z`` output (``<path>\\0<attr>\\0<value>\\0``...) -> path -> attr -> value.

    Values are ``set``, ``unset``, ``unspecified`` or the attribute's value; unspecified
    attributes are left out.
    """
    fields = raw.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    if len(fields) % 3:
        raise ValueError(f"unexpected git check-attr output ({len(fields)} fields)")
    result: dict[str, dict[str, str]] = defaultdict(dict)
    for i in range(0, len(fields), 3):
        path, attr, value = (f.decode("utf-8", "replace") for f in fields[i : i + 3])
        if value != "unspecified":
            result[path][attr] = value
    return dict(result)


# --- globs -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A gitignore-like glob as a regex over repository paths (``a/b/c.py``).

    ``*`` and ``?`` stay within one path segment, ``**`` crosses segments. A pattern without
    a slash (other than a trailing one) matches at any depth (``*.pem``, ``node_modules/``);
    one with a slash is anchored at the root (``docs/*.md``, ``/setup.py``). A pattern that
    matches a directory matches every file under it.
    """
    body = pattern.strip().rstrip("/")
    if not body:
        raise ValueError(f"empty glob {pattern!r}")
    anchored = "/" in body
    body = body.lstrip("/")
    out = []
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"{prefix}{''.join(out)}(?:/.*)?", re.DOTALL)


def matches_any(path: str, patterns: Iterable[str]) -> bool:
    return any(glob_regex(p).fullmatch(path) for p in patterns)


# --- the decisions ---------------------------------------------------------------------------


def skip_by_entry(entry: TreeEntry, policy: PlanPolicy) -> SkipReason | None:
    """What the tree listing alone decides: mode, path, globs, size. First rule wins."""
    if entry.mode == MODE_SYMLINK:
        return SkipReason.SYMLINK
    if entry.mode == MODE_SUBMODULE or entry.kind == "commit":
        return SkipReason.SUBMODULE
    if entry.kind != "blob":
        raise ValueError(f"unexpected tree entry {entry.kind} {entry.mode} {entry.path!r}")
    if not entry.path_ok:
        return SkipReason.PATH_NOT_UTF8
    # Secrets before the globs: an include glob never lets a key in.
    if matches_any(entry.path, policy.secret_patterns):
        return SkipReason.SECRET
    if matches_any(entry.path, policy.exclude):
        return SkipReason.EXCLUDED
    if policy.include and not matches_any(entry.path, policy.include):
        return SkipReason.NOT_INCLUDED
    if entry.size is not None and entry.size > policy.max_file_bytes:
        return SkipReason.OVER_MAX_FILE_BYTES
    if entry.size == 0:
        return SkipReason.EMPTY
    return None


def _truthy(value: str | None) -> bool:
    return value is not None and value not in ("unset", "false")


def skip_by_attributes(attributes: Mapping[str, str]) -> SkipReason | None:
    """What ``.gitattributes`` decides for one path (attr -> value, unspecified left out).

    ``linguist-generated``/``linguist-vendored`` set or ``=true`` skip the file (``-`` or
    ``=false`` keep it). ``binary`` set, or ``-diff``/``-text``, mark it binary as git does.
    """
    if _truthy(attributes.get("linguist-generated")):
        return SkipReason.GENERATED
    if _truthy(attributes.get("linguist-vendored")):
        return SkipReason.VENDORED
    if (
        attributes.get("binary") == "set"
        or attributes.get("diff") == "unset"
        or attributes.get("text") == "unset"
    ):
        return SkipReason.BINARY
    return None


def skip_by_content(head: bytes, size: int | None) -> SkipReason | None:
    """What the first bytes of a blob decide: an LFS pointer, or binary (a NUL in 8 KiB)."""
    if (size is None or size <= LFS_POINTER_MAX_BYTES) and head.startswith(LFS_POINTER_PREFIX):
        return SkipReason.LFS_POINTER
    if b"\0" in head[:BINARY_PROBE_BYTES]:
        return SkipReason.BINARY
    return None


def content_probe(head: bytes) -> bytes:
    """What :func:`skip_by_content` needs of a blob's head, in at most 44 bytes: its first
    bytes (the LFS prefix) and a NUL when the head holds one. ``skip_by_content`` gives the
    same answer for the probe as for the head, so a plan keeps probes, not 8 KiB heads."""
    probe = head[: len(LFS_POINTER_PREFIX)]
    if b"\0" not in probe and b"\0" in head[:BINARY_PROBE_BYTES]:
        probe += b"\0"
    return probe


def cap_files(manifest: Mapping[str, str], max_files: int) -> tuple[dict[str, str], list[Skipped]]:
    """The first ``max_files`` paths of ``manifest`` in path order, and the rest as skipped."""
    paths = sorted(manifest)
    kept = {p: manifest[p] for p in paths[:max_files]}
    over = [Skipped(p, SkipReason.OVER_MAX_FILES, manifest[p]) for p in paths[max_files:]]
    return kept, over


def diff_manifests(previous: Mapping[str, str], current: Mapping[str, str]) -> Changes:
    """Added, modified, removed and renamed paths between two ``path -> blob sha`` maps."""
    modified = sorted(p for p, sha in current.items() if p in previous and previous[p] != sha)
    gone: dict[str, list[str]] = defaultdict(list)
    for path, sha in previous.items():
        if path not in current:
            gone[sha].append(path)
    arrived: dict[str, list[str]] = defaultdict(list)
    for path, sha in current.items():
        if path not in previous:
            arrived[sha].append(path)
    added: list[str] = []
    removed: list[str] = []
    renamed: list[Rename] = []
    for sha in gone.keys() | arrived.keys():
        old, new = sorted(gone.get(sha, ())), sorted(arrived.get(sha, ()))
        pairs = min(len(old), len(new))
        renamed.extend(Rename(o, n, sha) for o, n in zip(old[:pairs], new[:pairs], strict=True))
        removed.extend(old[pairs:])
        added.extend(new[pairs:])
    unchanged = sum(1 for p, sha in current.items() if previous.get(p) == sha)
    return Changes(
        added=tuple(sorted(added)),
        modified=tuple(modified),
        removed=tuple(sorted(removed)),
        renamed=tuple(sorted(renamed, key=lambda r: (r.new_path, r.old_path))),
        unchanged=unchanged,
    )


def candidates(
    entries: Iterable[TreeEntry], policy: PlanPolicy
) -> tuple[list[TreeEntry], list[Skipped]]:
    """Split the tree by :func:`skip_by_entry`: (entries still to check, skipped)."""
    keep: list[TreeEntry] = []
    skipped: list[Skipped] = []
    for entry in entries:
        reason = skip_by_entry(entry, policy)
        if reason is None:
            keep.append(entry)
        else:
            skipped.append(Skipped(entry.path, reason, entry.sha))
    return keep, skipped


def build_plan(
    commit: str,
    entries: Iterable[TreeEntry],
    previous: Mapping[str, str],
    policy: PlanPolicy,
    *,
    attributes: Mapping[str, Mapping[str, str]],
    heads: Mapping[str, bytes],
) -> Plan:
    """The whole plan from the tree, the previous manifest, .gitattributes and blob heads.

    ``attributes`` maps a path to its set attributes (absent: none). ``heads`` maps a blob
    sha to its first bytes; a candidate whose blob has no head was indexed before (same sha,
    so same content) and is taken as text: only new blobs need reading (:func:`needs_head`).
    """
    keep, skipped = candidates(entries, policy)
    manifest: dict[str, str] = {}
    for entry in keep:
        reason = skip_by_attributes(attributes.get(entry.path, {}))
        if reason is None and entry.sha in heads:
            reason = skip_by_content(heads[entry.sha], entry.size)
        if reason is None:
            manifest[entry.path] = entry.sha
        else:
            skipped.append(Skipped(entry.path, reason, entry.sha))
    manifest, over = cap_files(manifest, policy.max_files)
    skipped += over
    return Plan(
        commit=commit,
        manifest=manifest,
        changes=diff_manifests(previous, manifest),
        skipped=tuple(sorted(skipped, key=lambda s: s.path)),
    )


def needs_head(entry: TreeEntry, known_text: frozenset[str] | set[str]) -> bool:
    """Whether the plan must read the blob's first bytes (a blob not indexed before)."""
    return entry.sha not in known_text
