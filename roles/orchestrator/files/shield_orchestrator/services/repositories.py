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

The lifecycle of a registration::

    POST /repos          register (the same triple again: the existing row; max_file_bytes,
                         max_files and schedule given again replace the stored ones)
      schedule "15m"     a Temporal Schedule repo-index-schedule:{repo}:{branch} (period >=
                         MIN_SCHEDULE_S, overlap SKIP) whose start only triggers the index
                         (indexing/workflow.py, forward=True): it folds into a running run
    POST .../index       refused while the repository backs off (429, Retry-After) or is
                         quarantined (409) unless force=true (indexing/health.py)
    DELETE /repos/{id}   the schedule goes (Temporal), a running run refuses (409); one pool
                         job of delete_document entries for every document of the branch (its
                         manifest and pending deletions) is created, then the registration and
                         the indexer's rows of the branch are removed in one transaction:
                         202 with the job id

If that deletion job fails (an entry dead-lettered), the registration is already gone: the
job's failures name the documents left in the graph (GET /jobs/{id}/failures) and
POST /jobs/{id}/retry-failed sends them again, as for any job. If the job cannot be created
(Redis down, the queue full), nothing is removed and DELETE can be sent again.

SQL: named queries of database/queries.sql.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shield_orchestrator.database.queries import query
from shield_orchestrator.errors import ConfigError, ShieldError
from shield_orchestrator.indexing import health, runs
from shield_orchestrator.indexing.client import TemporalTarget, connect
from shield_orchestrator.indexing.workflow import (
    WORKFLOW_NAME,
    IndexRequest,
    RepoSpec,
    workflow_id,
)
from shield_orchestrator.services.job_registry import JobRegistry, NewJob
from shield_orchestrator.services.keyset import CursorFormat
from shield_orchestrator.services.messages import DELETE_DOCUMENT

if TYPE_CHECKING:
    from temporalio.client import Client

TEMPORAL_TIMEOUT_S = 10.0  # one connect or signal-with-start; beyond it the API answers 503

MIN_SCHEDULE_S = 60  # the shortest refresh period of a Temporal Schedule
MAX_SCHEDULE_S = 30 * 86_400  # 30 days
_PERIOD = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
REMOVAL_SOURCE_TYPE = "repository_removal"
COMMAND_FIELDS = ("command", "command_timeout_s", "command_mode")  # replaced when given again

# user@host:path (scp-like ssh); a user name is no credential, a password cannot be written here
_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)[^\s]+$")
CREDENTIALS_HINT = (
    "register the URL without them and set credential_ref to the name of an environment "
    "variable of the indexers that holds them"
)


class RepositoryBusy(ShieldError):  # noqa: N818 (409: DELETE while a run is in progress)
    """The repository's index run is in progress."""


class RepositoryNotFound(ShieldError):  # noqa: N818 (like JobNotFound: 404)
    """No registered repository with this id."""


class TemporalUnavailable(ShieldError):  # noqa: N818 (503, the reason in the message)
    """Temporal could not be reached or refused the request."""


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


def parse_period(text: str) -> int:
    """Seconds of a period such as ``15m``, ``1h``, ``1h30m``, ``2d`` (units d, h, m, s);
    ValueError naming the rule otherwise."""
    match = _PERIOD.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a period: write e.g. 15m, 1h, 1h30m or 1d")
    d, h, m, sec = (int(g or 0) for g in match.groups())
    seconds = ((d * 24 + h) * 60 + m) * 60 + sec
    if not MIN_SCHEDULE_S <= seconds <= MAX_SCHEDULE_S:
        raise ValueError(f"{text!r} is {seconds} s: a schedule runs every 1m (60 s) to 30d at most")
    return seconds


def schedule_id(repo: str, branch: str) -> str:
    return f"repo-index-schedule:{repo}:{branch}"


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
    schedule_s: int | None = None  # the refresh period (None: no schedule)
    command: tuple[str, ...] = ()  # the operator's command (indexing/runner.py); () none
    command_timeout_s: int = 600
    command_mode: str = "after"  # after | instead (of the built-in steps)


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
    schedule_s: int | None = None
    command: tuple[str, ...] = ()
    command_timeout_s: int = 600
    command_mode: str = "after"

    @property
    def workflow_id(self) -> str:
        return workflow_id(self.repo_id, self.branch)

    @property
    def schedule_id(self) -> str:
        return schedule_id(self.repo_id, self.branch)

    def spec(self) -> RepoSpec:
        return RepoSpec(self.repo_id, self.url, self.branch, self.workspace,
                        list(self.include), list(self.exclude), self.max_file_bytes,
                        max_files=self.max_files, credential_ref=self.credential_ref,
                        command=list(self.command), command_timeout_s=self.command_timeout_s,
                        command_mode=self.command_mode)  # fmt: skip


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
    # never_indexed | running | indexed | completed_with_errors | failed | quarantined
    state: str
    indexed_commit: str | None
    indexed_at: dt.datetime | None
    consecutive_failures: int
    last_error: str | None
    indexed_files: int  # files in the manifest
    last_run: LastRun | None = None
    runs: int = 0
    next_eligible_at: dt.datetime | None = None  # a non-forced run before it is refused
    quarantined_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Removal:
    """DELETE /repos/{id}: the deletion job of the documents (None: the branch had none)."""

    job_id: str | None
    files: int  # (path, blob sha)s whose documents the job deletes
    documents: int


def _repository(row: Any) -> Repository:
    return Repository(
        str(row["repo_id"]), row["url"], row["branch"], row["workspace"],
        tuple(row["include"]), tuple(row["exclude"]), int(row["max_file_bytes"]),
        int(row["max_files"]), row["credential_ref"], row["created_at"], row["schedule_s"],
        tuple(row["command"]), int(row["command_timeout_s"]), row["command_mode"],
    )  # fmt: skip


async def register(
    db: Any, new: NewRepository, given: frozenset[str] = frozenset()
) -> tuple[Repository, bool]:
    """The registration of ``new`` and whether it was created now (False: it existed; its
    ``max_file_bytes``, ``max_files``, ``schedule_s`` and the COMMAND_FIELDS named in ``given``
    are replaced)."""
    row = await db.fetchrow(
        query("insert_repository"), str(uuid.uuid4()), new.url, new.branch, new.workspace,
        list(new.include), list(new.exclude), new.max_file_bytes, new.max_files,
        new.credential_ref, new.schedule_s, list(new.command), new.command_timeout_s,
        new.command_mode,
    )  # fmt: skip
    if row is not None:
        return _repository(row), True
    row = await db.fetchrow(query("select_repository_by_key"), new.url, new.branch, new.workspace)
    if row is None:  # removed between the two statements: register again
        return await register(db, new, given)
    if given & {"max_file_bytes", "max_files", "schedule_s", *COMMAND_FIELDS}:
        row = await db.fetchrow(
            query("update_repository_options"), row["repo_id"],
            new.max_file_bytes if "max_file_bytes" in given else None,
            new.max_files if "max_files" in given else None,
            new.schedule_s if "schedule_s" in given else None,
            list(new.command) if "command" in given else None,
            new.command_timeout_s if "command_timeout_s" in given else None,
            new.command_mode if "command_mode" in given else None,
        )  # fmt: skip
    return _repository(row), False


async def get(db: Any, repo_id: str) -> Repository:
    row = await db.fetchrow(query("select_repository"), repo_id)
    if row is None:
        raise RepositoryNotFound(f"no repository {repo_id} (never registered, or removed)")
    return _repository(row)


_CURSOR = CursorFormat(
    "GET /repos", "r", "w", "this cursor belongs to a query with another workspace filter"
)


async def list_page(
    db: Any, workspace: str | None, limit: int, cursor: str | None = None
) -> tuple[list[Repository], str | None]:
    """Registered repositories, oldest first, a page at a time (keyset on created_at, id;
    a bad cursor: services/keyset.py's BadCursor)."""
    after, after_id = _CURSOR.decode(cursor, workspace) if cursor else (None, None)
    rows = await db.fetch(query("list_repositories"), workspace, after, after_id, limit + 1)
    repos = [_repository(r) for r in rows[:limit]]
    more = len(rows) > limit
    if not more:
        return repos, None
    return repos, _CURSOR.encode(repos[-1].created_at, repos[-1].repo_id, workspace)


async def remove(db: Any, registry: JobRegistry, repo: Repository) -> Removal:
    """Take the branch's documents out of the graph and unregister (see the module doc).

    The caller has stopped what could add documents (the schedule, a running run). One job
    of ``delete_document`` entries (indexing/runs.deletion_entries: one or more per file)
    goes to the workspace's owner through the pool; its idempotency key is the document set's
    digest, so a DELETE sent again before the rows went finds the same job.
    """
    if (await index_state(db, repo)).state == "running":
        raise RepositoryBusy(
            f"repository {repo.repo_id}: an index run is in progress; DELETE again when "
            "GET /repos/{id} no longer says running"
        )
    documents = await runs.repository_documents(db, repo.repo_id, repo.branch)
    entries, _ = runs.deletion_entries(repo.repo_id, documents)
    job_id = None
    if entries:
        names = "\n".join(f"{d.path}\0{d.blob_sha}" for d in documents)
        digest = hashlib.sha256(names.encode()).hexdigest()[:16]
        new = NewJob(entries, REMOVAL_SOURCE_TYPE, repo.workspace, kind=DELETE_DOCUMENT,
                     idempotency_key=f"repo-remove:{repo.repo_id}:{digest}")  # fmt: skip
        job_id = (await registry.create(new)).job_id
    async with db.acquire() as conn, conn.transaction():
        if await conn.fetchval(query("delete_repository"), repo.repo_id) is None:
            raise RepositoryNotFound(f"no repository {repo.repo_id} (never registered, or removed)")
        await conn.execute(query("forget_repository_index"), repo.repo_id, repo.branch)
    return Removal(job_id, len(documents), sum(len(d.doc_ids) for d in documents))


async def index_state(db: Any, repo: Repository) -> IndexState:
    """What the indexer's tables say about the repository's branch."""
    key = (repo.repo_id, repo.branch)
    async with db.acquire() as conn:
        state = await conn.fetchrow(query("select_repository_state"), *key)
        last = await conn.fetchrow(query("select_last_run"), *key)
        now = await health.read(conn, *key)
        run_error = await conn.fetchrow(query("select_last_run_error"), *key)
        counts = await conn.fetch(query("count_run_files"), last["run_id"]) if last else []
    last_error = _latest_error(now, run_error)
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
    if last_run is not None and last_run.status == "planned":
        summary = "running"
    elif now.quarantined_at is not None:
        summary = "quarantined"
    elif now.consecutive_failures:  # the last run failed (maybe before planning: no run row)
        summary = "failed"
    elif last_run is None:
        summary = "indexed" if indexed_commit else "never_indexed"
    else:
        summary = "indexed" if last_run.status == "completed" else last_run.status
    return IndexState(
        summary, indexed_commit, state[1] if indexed_commit else None, now.consecutive_failures,
        last_error, int(state[2]) if state is not None else 0, last_run,
        int(last["runs"]) if last else 0, now.next_eligible_at, now.quarantined_at,
    )  # fmt: skip


def _latest_error(now: health.Health, run_error: Any) -> str | None:
    """The newer of the repository's last failure and the last run's error (a run that
    completed with errors has one too: e.g. the file cap)."""
    if run_error is None:
        return now.last_error
    if now.last_error is None or now.last_failure_at is None:
        return str(run_error["error"])
    finished = run_error["finished_at"]
    return (
        str(run_error["error"]) if finished and finished > now.last_failure_at else now.last_error
    )


@dataclass(frozen=True, slots=True)
class Triggered:
    workflow_id: str
    run_id: str  # the Temporal execution (the running one when the trigger was folded into it)


@dataclass
class TemporalGateway:
    """A Temporal client made on first use (never at startup), kept once connected.

    ``target``: TemporalTarget.from_settings, the same the indexers read (api/app.py)."""

    target: TemporalTarget
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
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(connect(self.target), self.timeout_s)
                except (RuntimeError, OSError, TimeoutError, ConfigError) as exc:
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

    async def _call(self, work: Any) -> Any:
        """Await one Temporal call, its failures as :class:`TemporalUnavailable`."""
        from temporalio.service import RPCError

        try:
            return await asyncio.wait_for(work, self.timeout_s)
        except (RPCError, RuntimeError, OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from exc

    async def ensure_schedule(self, repo: Repository) -> None:
        """Create or update the repository's Temporal Schedule (every ``schedule_s``, overlap
        SKIP); its action triggers the index (indexing/workflow.py ``forward``)."""
        from temporalio.client import (
            Schedule,
            ScheduleActionStartWorkflow,
            ScheduleAlreadyRunningError,
            ScheduleIntervalSpec,
            ScheduleOverlapPolicy,
            SchedulePolicy,
            ScheduleSpec,
            ScheduleUpdate,
        )

        assert repo.schedule_s is not None
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                WORKFLOW_NAME,
                IndexRequest(repo.spec(), trigger="schedule", forward=True),
                id=repo.schedule_id,  # Temporal appends the scheduled time
                task_queue=self.target.task_queue,
            ),
            spec=ScheduleSpec(
                intervals=[ScheduleIntervalSpec(every=dt.timedelta(seconds=repo.schedule_s))]
            ),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        client = await self.client()
        try:
            await self._call(client.create_schedule(repo.schedule_id, schedule))
        except ScheduleAlreadyRunningError:
            handle = client.get_schedule_handle(repo.schedule_id)
            await self._call(handle.update(lambda _: ScheduleUpdate(schedule=schedule)))

    async def delete_schedule(self, repo: Repository) -> None:
        """Delete the repository's schedule (none: nothing to do)."""
        from temporalio.service import RPCError, RPCStatusCode

        handle = (await self.client()).get_schedule_handle(repo.schedule_id)
        try:
            await self._call(handle.delete())
        except TemporalUnavailable as exc:
            cause = exc.__cause__
            if not (isinstance(cause, RPCError) and cause.status == RPCStatusCode.NOT_FOUND):
                raise
