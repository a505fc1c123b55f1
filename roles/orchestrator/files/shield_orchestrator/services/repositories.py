"""Registered repositories (issue 16): the ``repositories`` table, their indexing state, and
the trigger of their indexing workflow on Temporal (POST/GET/DELETE /repos, api/routes/repos.py).

A registration is ``(url, branch, workspace)`` plus include/exclude globs, limits and a
credential *reference* (the name of an environment variable of the indexers, never a value);
registering the same triple again returns the existing row. What a repository's runs did is
read from the indexer's own tables (repo_index_state, repo_index_runs, repo_run_files, keyed by
``repo_id::text``); nothing is copied.

Temporal is reached lazily (:class:`TemporalGateway`): the API starts and serves ingestion while
Temporal is down; an index request then fails with :class:`TemporalUnavailable` (503) naming
the reason. The trigger is the workflow's own signal-with-start (indexing/workflow.py
``trigger_index``): one execution per ``repo-index:{repo}:{branch}``, a trigger during a run is
folded into one follow-up run and answers with the running execution's ids.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shield_orchestrator.errors import ShieldError
from shield_orchestrator.indexing.workflow import TASK_QUEUE, RepoSpec, workflow_id

if TYPE_CHECKING:
    from temporalio.client import Client

DEFAULT_TEMPORAL_ADDRESS = "127.0.0.1:7233"  # indexing/worker.py DEFAULT_TEMPORAL
DEFAULT_TEMPORAL_NAMESPACE = "default"
TEMPORAL_TIMEOUT_S = 10.0  # one connect or signal-with-start; beyond it the API answers 503

# user@host:path (scp-like ssh); a user name is no credential, a password cannot be written here
_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)[^\s]+$")
CREDENTIALS_HINT = (
    "register the URL without them and set credential_ref to the name of an environment "
    "variable of the indexers that holds them"
)


class RepositoryNotFound(ShieldError):  # noqa: N818 (like JobNotFound: 404)
    """No registered repository with this id."""


class TemporalUnavailable(ShieldError):  # noqa: N818 (503, the reason in the message)
    """Temporal could not be reached or refused the request."""


class BadRepoCursor(ShieldError):  # noqa: N818
    """A cursor that GET /repos did not make (or made for another filter)."""


def check_repo_url(url: str) -> str:
    """``url`` when it is https, ssh (``ssh://`` or ``user@host:path``) or an absolute local
    path without credentials; ValueError (never echoing the URL) otherwise."""
    if url.startswith("/"):
        if "\x00" in url:
            raise ValueError("a local path cannot hold a NUL character")
        return url
    if _SCP.match(url):
        return url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if parts.password is not None or (scheme == "https" and parts.username is not None):
        raise ValueError(f"the URL holds credentials; {CREDENTIALS_HINT}")
    if scheme not in ("https", "ssh"):
        if not scheme or "://" not in url:
            raise ValueError("a local path must be absolute (start with /)")
        raise ValueError(
            f"unsupported URL scheme {scheme!r}: use https://, ssh:// (or user@host:path) "
            "or an absolute local path"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"the URL has a query or fragment (tokens are credentials); "
                         f"{CREDENTIALS_HINT}")  # fmt: skip
    if not parts.hostname:
        raise ValueError(f"the {scheme} URL names no host")
    return url


@dataclass(frozen=True, slots=True)
class NewRepository:
    url: str
    branch: str
    workspace: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_file_bytes: int = 1_048_576
    max_files: int = 100_000
    credential_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Repository:
    repo_id: str
    url: str
    branch: str
    workspace: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    max_file_bytes: int
    max_files: int
    credential_ref: str | None
    created_at: dt.datetime

    @property
    def workflow_id(self) -> str:
        return workflow_id(self.repo_id, self.branch)

    def spec(self) -> RepoSpec:
        return RepoSpec(self.repo_id, self.url, self.branch, self.workspace,
                        list(self.include), list(self.exclude), self.max_file_bytes,
                        credential_ref=self.credential_ref)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LastRun:
    run_id: str
    status: str  # planned (running) | completed | completed_with_errors | failed
    base_commit: str | None
    commit: str
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    unchanged: int
    changes: dict[str, int]  # added/modified/removed/renamed -> files
    files: dict[str, int]  # the changed files' states: completed, failed, pending, ...
    skipped: dict[str, int]  # skip reason -> files


@dataclass(frozen=True, slots=True)
class IndexState:
    state: str  # never_indexed | running | indexed | completed_with_errors | failed
    indexed_commit: str | None
    indexed_at: dt.datetime | None
    consecutive_failures: int
    last_error: str | None
    indexed_files: int  # files in the manifest
    last_run: LastRun | None = None
    runs: int = 0


_INSERT = """
INSERT INTO repositories (repo_id, url, branch, workspace, include, exclude, max_file_bytes,
                          max_files, credential_ref)
VALUES ($1::uuid, $2, $3, $4, $5::text[], $6::text[], $7, $8, $9)
ON CONFLICT (url, branch, workspace) DO NOTHING
RETURNING repo_id, url, branch, workspace, include, exclude, max_file_bytes, max_files,
          credential_ref, created_at"""
_BY_KEY = """
SELECT repo_id, url, branch, workspace, include, exclude, max_file_bytes, max_files,
       credential_ref, created_at
FROM repositories WHERE url = $1 AND branch = $2 AND workspace = $3"""
_BY_ID = """
SELECT repo_id, url, branch, workspace, include, exclude, max_file_bytes, max_files,
       credential_ref, created_at
FROM repositories WHERE repo_id = $1::uuid"""
_LIST = """
SELECT repo_id, url, branch, workspace, include, exclude, max_file_bytes, max_files,
       credential_ref, created_at
FROM repositories
WHERE ($1::text IS NULL OR workspace = $1)
  AND ($2::timestamptz IS NULL OR (created_at, repo_id) > ($2, $3::uuid))
ORDER BY created_at, repo_id
LIMIT $4"""
_DELETE = "DELETE FROM repositories WHERE repo_id = $1::uuid RETURNING repo_id"
_STATE = """
SELECT s.indexed_commit, s.updated_at,
       (SELECT count(*) FROM repo_files f WHERE f.repo = s.repo AND f.branch = s.branch)
FROM repo_index_state s WHERE s.repo = $1 AND s.branch = $2"""
_LAST_RUN = """
SELECT run_id, status, base_commit, commit, error, created_at, finished_at, unchanged, skipped,
       (SELECT count(*) FROM repo_index_runs r2 WHERE r2.repo = $1 AND r2.branch = $2) AS runs
FROM repo_index_runs WHERE repo = $1 AND branch = $2
ORDER BY created_at DESC, run_id DESC LIMIT 1"""
_FAILURES = """
SELECT count(*) FROM repo_index_runs
WHERE repo = $1 AND branch = $2 AND status = 'failed'
  AND created_at > coalesce((SELECT max(created_at) FROM repo_index_runs
                             WHERE repo = $1 AND branch = $2
                               AND status IN ('completed', 'completed_with_errors')),
                            '-infinity'::timestamptz)"""
_LAST_ERROR = """
SELECT error FROM repo_index_runs
WHERE repo = $1 AND branch = $2 AND error IS NOT NULL
ORDER BY created_at DESC LIMIT 1"""
_RUN_FILES = """
SELECT 'change' AS kind, change AS name, count(*) AS n FROM repo_run_files
WHERE run_id = $1::uuid GROUP BY change
UNION ALL
SELECT 'state', state, count(*) FROM repo_run_files WHERE run_id = $1::uuid GROUP BY state"""


def _repository(row: Any) -> Repository:
    return Repository(
        str(row["repo_id"]), row["url"], row["branch"], row["workspace"],
        tuple(row["include"]), tuple(row["exclude"]), int(row["max_file_bytes"]),
        int(row["max_files"]), row["credential_ref"], row["created_at"],
    )  # fmt: skip


async def register(db: Any, new: NewRepository) -> tuple[Repository, bool]:
    """The registration of ``new`` and whether it was created now (False: it existed)."""
    row = await db.fetchrow(
        _INSERT, str(uuid.uuid4()), new.url, new.branch, new.workspace, list(new.include),
        list(new.exclude), new.max_file_bytes, new.max_files, new.credential_ref,
    )  # fmt: skip
    if row is not None:
        return _repository(row), True
    row = await db.fetchrow(_BY_KEY, new.url, new.branch, new.workspace)
    if row is None:  # removed between the two statements: register again
        return await register(db, new)
    return _repository(row), False


async def get(db: Any, repo_id: str) -> Repository:
    row = await db.fetchrow(_BY_ID, repo_id)
    if row is None:
        raise RepositoryNotFound(f"no repository {repo_id} (never registered, or removed)")
    return _repository(row)


def _encode_cursor(repo: Repository, workspace: str | None) -> str:
    raw = {"c": repo.created_at.isoformat(), "r": repo.repo_id, "w": workspace}
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str, workspace: str | None) -> tuple[dt.datetime, str]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        created = dt.datetime.fromisoformat(raw["c"])
        repo_id = str(uuid.UUID(raw["r"]))
        filtered = raw["w"]
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise BadRepoCursor("not a cursor of GET /repos") from exc
    if created.tzinfo is None or filtered != workspace:
        raise BadRepoCursor("this cursor belongs to a query with another workspace filter")
    return created, repo_id


async def list_page(
    db: Any, workspace: str | None, limit: int, cursor: str | None = None
) -> tuple[list[Repository], str | None]:
    """Registered repositories, oldest first, a page at a time (keyset on created_at, id)."""
    after, after_id = _decode_cursor(cursor, workspace) if cursor else (None, None)
    rows = await db.fetch(_LIST, workspace, after, after_id, limit + 1)
    repos = [_repository(r) for r in rows[:limit]]
    more = len(rows) > limit
    return repos, _encode_cursor(repos[-1], workspace) if more else None


async def remove(db: Any, repo_id: str) -> None:
    """Unregister; the indexer's manifest and runs stay (they name the documents in the graph)."""
    if await db.fetchval(_DELETE, repo_id) is None:
        raise RepositoryNotFound(f"no repository {repo_id} (never registered, or removed)")


async def index_state(db: Any, repo: Repository) -> IndexState:
    """What the indexer's tables say about the repository's branch."""
    key = (repo.repo_id, repo.branch)
    async with db.acquire() as conn:
        state = await conn.fetchrow(_STATE, *key)
        last = await conn.fetchrow(_LAST_RUN, *key)
        failures = int(await conn.fetchval(_FAILURES, *key))
        last_error = await conn.fetchval(_LAST_ERROR, *key)
        counts = await conn.fetch(_RUN_FILES, last["run_id"]) if last is not None else []
    indexed_commit = state[0] if state is not None else None
    last_run = None
    if last is not None:
        changes = {r["name"]: int(r["n"]) for r in counts if r["kind"] == "change"}
        files = {r["name"]: int(r["n"]) for r in counts if r["kind"] == "state"}
        skipped = {str(k): int(v) for k, v in json.loads(last["skipped"]).items()}
        last_run = LastRun(
            str(last["run_id"]), last["status"], last["base_commit"], last["commit"],
            last["error"], last["created_at"], last["finished_at"], int(last["unchanged"]),
            changes, files, skipped,
        )  # fmt: skip
    if last_run is None:
        summary = "indexed" if indexed_commit else "never_indexed"
    elif last_run.status == "planned":
        summary = "running"
    else:
        summary = "indexed" if last_run.status == "completed" else last_run.status
    return IndexState(
        summary, indexed_commit, state[1] if indexed_commit else None, failures, last_error,
        int(state[2]) if state is not None else 0, last_run, int(last["runs"]) if last else 0,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class TemporalTarget:
    """Where the indexing workflows run: the indexers' address, namespace and task queue."""

    address: str = DEFAULT_TEMPORAL_ADDRESS
    namespace: str = DEFAULT_TEMPORAL_NAMESPACE
    task_queue: str = TASK_QUEUE


@dataclass(frozen=True, slots=True)
class Triggered:
    workflow_id: str
    run_id: str  # the Temporal execution (the running one when the trigger was folded into it)


@dataclass
class TemporalGateway:
    """A Temporal client made on first use (never at startup), kept once connected."""

    target: TemporalTarget = field(default_factory=TemporalTarget)
    timeout_s: float = TEMPORAL_TIMEOUT_S
    _client: Client | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _unavailable(self, exc: BaseException) -> TemporalUnavailable:
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {self.timeout_s:g} s"
        return TemporalUnavailable(
            f"temporal unavailable at {self.target.address} (namespace "
            f"{self.target.namespace!r}): {reason}; chunk ingestion is not affected"
        )

    async def client(self) -> Client:
        from temporalio.client import Client

        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        Client.connect(self.target.address, namespace=self.target.namespace),
                        self.timeout_s,
                    )
                except (RuntimeError, OSError, TimeoutError) as exc:
                    raise self._unavailable(exc) from exc
            return self._client

    async def trigger(self, repo: Repository, *, force: bool) -> Triggered:
        """Signal-with-start of the repository's workflow (see indexing/workflow.py)."""
        from temporalio.service import RPCError

        from shield_orchestrator.indexing.workflow import trigger_index

        client = await self.client()
        try:
            handle = await asyncio.wait_for(
                trigger_index(client, repo.spec(), force=force, task_queue=self.target.task_queue),
                self.timeout_s,
            )
        except (RPCError, RuntimeError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from exc
        return Triggered(handle.id, handle.result_run_id or "")
