"""The activities of the repository-indexing workflow (names as the sibling system's).

Each takes and returns ids and counts (:mod:`.workflow`'s dataclasses); the plan and the
file lists are in PostgreSQL (:mod:`.runs`), the repository in the host's mirror cache
(:mod:`.mirrors`). Every wait calls :meth:`IndexingActivities.beat` at least every
``heartbeat_every_s`` (git calls, the plan's thread, the job creation and job status loops),
so a dead worker is noticed after the workflow's heartbeat timeout, not its start-to-close
timeout. File documents are ordinary ingestion jobs of the pool, created through
:class:`~shield_orchestrator.services.job_registry.JobRegistry` (same retries, dead-letter
stream, progress and events), one per changed file, with an idempotency key per run and
path so that a retried ``persist_kg`` finds the jobs it created. The documents of removed and
changed files leave the graph first (``cleanup_stale_kg_nodes``): one pool job of
``delete_document`` entries (services/messages.py), one entry per file, executed by the
workspace's owning process like any chunk, waited for before ``persist_kg`` starts.

``check_indexing_needed`` refuses a non-forced run of a repository that backs off or is
quarantined (:mod:`.health`) before any git call, and resets the failures when the head is
already indexed; ``record_failure`` stores a failed run's reason and the next backoff;
``trigger_index`` is a scheduled start's signal-with-start (workflow.py's module doc).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from redis.asyncio import Redis
from temporalio import activity

from shield_orchestrator.indexing import health, runs
from shield_orchestrator.indexing.chunker import DEFAULT_MAX_TOKENS, approx_tokens, chunk_code
from shield_orchestrator.indexing.mirror import plan_commit
from shield_orchestrator.indexing.mirrors import MirrorCache, run_git
from shield_orchestrator.indexing.plan import PlanPolicy
from shield_orchestrator.indexing.runs import deletion_entries
from shield_orchestrator.indexing.workflow import (
    CheckResult,
    CleanupResult,
    PersistResult,
    PlanInput,
    PlanResult,
    RepoSpec,
)
from shield_orchestrator.indexing.workflow import trigger_index as start_or_signal
from shield_orchestrator.services.job_failures import list_failures
from shield_orchestrator.services.job_registry import (
    JobRegistry,
    NewChunk,
    NewJob,
    QueueFull,
    chunk_id,
)
from shield_orchestrator.services.job_status import fetch_job
from shield_orchestrator.services.messages import DELETE_DOCUMENT

T = TypeVar("T")
SOURCE_TYPE = "repository_file"
__all__ = ["IndexerConfig", "IndexingActivities", "deletion_entries", "file_chunks"]


@dataclass(frozen=True, slots=True)
class IndexerConfig:
    cache_dir: Path  # the mirrors (one bare repository per indexed repository)
    max_queue_pending: int = 100_000  # as the API's: QueueFull above it, waited out here
    idempotency_ttl_s: int = 86_400  # 1 day: a retried persist_kg finds its jobs
    heartbeat_every_s: float = 5.0  # well under the workflow's HEARTBEAT_TIMEOUT (30 s)
    job_poll_s: float = 0.5  # job status reads while waiting for the pool
    queue_full_wait_s: float = 2.0
    max_chunk_tokens: int = DEFAULT_MAX_TOKENS


def prose_chunks(path: str, text: str, max_tokens: int) -> list[str]:
    """A file the chunker does not know, cut at line boundaries into pieces of about
    ``max_tokens`` tokens, each led by ``<path> | part N`` (the engine chunks further)."""
    budget = max_tokens * 4  # approx_tokens: about 4 bytes a token
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        if current and size + len(line) > budget:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        pieces.append("".join(current))
    pieces = [p for p in pieces if p.strip()]
    return [f"{path} | part {n}\n{p}" for n, p in enumerate(pieces, 1)]


def file_chunks(spec: RepoSpec, path: str, sha: str, text: str, max_tokens: int) -> list[NewChunk]:
    """The chunks of one file: by symbol for code (chunker.py), by size for prose."""
    uri = f"repo:{spec.repo}/{path}"
    base = {"repo": spec.repo, "branch": spec.branch, "path": path, "blob_sha": sha}
    code = chunk_code(path, text, max_tokens=max_tokens, count_tokens=approx_tokens)
    if code is None:
        return [NewChunk(t, uri, base) for t in prose_chunks(path, text, max_tokens)]
    return [
        NewChunk(
            c.text,
            uri,
            {
                **base,
                "symbol": c.symbol,
                "kind": c.kind,
                "start_line": c.start_line,
                "end_line": c.end_line,
            },
        )
        for c in code
    ]


class IndexingActivities:
    """The activities, bound to one process's Redis, PostgreSQL pool and mirror cache."""

    def __init__(self, redis: Redis, db: Any, config: IndexerConfig) -> None:
        self.redis = redis
        self.db = db
        self.config = config
        self.mirrors = MirrorCache(config.cache_dir, config.heartbeat_every_s)
        self.registry = JobRegistry(
            redis, db,
            max_queue_pending=config.max_queue_pending,
            idempotency_ttl_s=config.idempotency_ttl_s,
        )  # fmt: skip

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.check_indexing_needed, self.clone_repo, self.parse_repo,
            self.cleanup_stale_kg_nodes, self.persist_kg, self.persist_metadata,
            self.cleanup_repo, self.record_failure, self.trigger_index,
        ]  # fmt: skip

    @staticmethod
    def beat(*details: Any) -> None:
        """The heartbeat (a no-op outside an activity), and the cancellation check.

        The SDK cancels an activity (worker shutdown past its grace, heartbeat timeout, a
        cancelled workflow) with one ``Task.cancel()``; a library awaited at that moment may
        swallow the CancelledError (seen here: persist_kg kept polling after its cancel, and
        the worker's shutdown waited for it). So every beat also checks the SDK's flag.
        """
        if activity.in_activity():
            activity.heartbeat(*details)
            if activity.is_cancelled():
                raise asyncio.CancelledError("activity cancelled")

    async def _beating(self, work: Awaitable[T]) -> T:
        """Await ``work``, heartbeating every ``heartbeat_every_s`` until it is done."""
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=self.config.heartbeat_every_s)
                self.beat()
            return task.result()
        finally:
            task.cancel()

    @activity.defn(name="check_indexing_needed")
    async def check_indexing_needed(self, spec: RepoSpec, force: bool) -> CheckResult:
        """The remote head (``ls-remote``) against the indexed commit: equal means done.

        Not forced: a repository that backs off or is quarantined is refused first (no git
        call, nothing counted); an indexed head is a success (the failures reset)."""
        if not force:
            current = await health.read(self.db, spec.repo, spec.branch)
            if health.refusal(current) is not None:
                indexed = await runs.indexed_commit(self.db, spec.repo, spec.branch)
                return CheckResult(False, "", indexed, refused=current.state)
        head = await self.mirrors.remote_head(spec.url, spec.branch, self.beat, spec.credential_ref)
        indexed = await runs.indexed_commit(self.db, spec.repo, spec.branch)
        needed = force or head != indexed
        if not needed:
            await health.record_success(self.db, spec.repo, spec.branch)
        return CheckResult(needed, head, indexed)

    @activity.defn(name="clone_repo")
    async def clone_repo(self, spec: RepoSpec) -> str:
        """Fetch the mirror (clone it the first time on this host); the branch's commit."""
        mirror = await self.mirrors.fetch(spec.repo, spec.url, self.beat, spec.credential_ref)
        out = await run_git("-C", str(mirror), "rev-parse", "--verify", "--quiet",
                            f"refs/heads/{spec.branch}^{{commit}}", beat=self.beat,
                            beat_s=self.config.heartbeat_every_s)  # fmt: skip
        return out.strip()

    @activity.defn(name="parse_repo")
    async def parse_repo(self, task: PlanInput) -> PlanResult:
        """Plan the commit against the manifest (mirror.plan_commit in a thread); store it."""
        spec = task.spec
        mirror = await self.mirrors.ensure(spec.repo, spec.url, task.commit, self.beat,
                                           spec.credential_ref)  # fmt: skip
        base = await runs.indexed_commit(self.db, spec.repo, spec.branch)
        previous = await runs.manifest(self.db, spec.repo, spec.branch)
        policy = PlanPolicy(spec.max_file_bytes, tuple(spec.include), tuple(spec.exclude),
                            max_files=spec.max_files)  # fmt: skip
        plan = await self._beating(
            asyncio.to_thread(plan_commit, mirror, task.commit, previous, policy)
        )
        await runs.record_plan(
            self.db, task.run_id, repo=spec.repo, branch=spec.branch, workspace=spec.workspace,
            base_commit=base, plan=plan, previous=previous,
        )  # fmt: skip
        ch = plan.changes
        return PlanResult(
            task.run_id, plan.commit, base, len(ch.added), len(ch.modified), len(ch.removed),
            len(ch.renamed), ch.unchanged, len(plan.skipped),
        )  # fmt: skip

    @activity.defn(name="cleanup_stale_kg_nodes")
    async def cleanup_stale_kg_nodes(self, run_id: str) -> CleanupResult:
        """The documents of modified, removed and renamed-away files (and earlier runs'
        leftovers) out of the graph: one deletion job through the pool, waited for; the
        deletions whose entries completed are marked deleted, the others stay pending."""
        await runs.record_deletions(self.db, run_id)
        run = await runs.run(self.db, run_id)
        pending = await runs.pending_deletions(self.db, run.repo, run.branch)
        entries, owner = deletion_entries(run.repo, pending)
        failed: set[int] = set()
        if entries:
            # The same pending set gives the same key: a retried activity finds its job.
            names = "\n".join(f"{d.path}\0{d.blob_sha}" for d in pending)
            digest = hashlib.sha256(names.encode()).hexdigest()[:16]
            new = NewJob(entries, SOURCE_TYPE, run.workspace, kind=DELETE_DOCUMENT,
                         idempotency_key=f"repo-index:{run_id}:delete:{digest}")  # fmt: skip
            job_id = await self._create(new)
            if await self._wait_job(job_id) != "completed":
                numbers = {f.chunk_id for f in await list_failures(self.redis, self.db, job_id)}
                failed = {owner[n - 1] for n in range(1, len(entries) + 1)
                          if chunk_id(n) in numbers}  # fmt: skip
        done = [d for n, d in enumerate(pending) if n not in failed]
        await runs.mark_deleted(self.db, run.repo, run.branch, done)
        return CleanupResult(len(done), len(pending) - len(done))

    @activity.defn(name="persist_kg")
    async def persist_kg(self, spec: RepoSpec, run_id: str) -> PersistResult:
        """One ingestion job per changed file, then wait until every job is terminal."""
        run = await runs.run(self.db, run_id)
        files = [f for f in await runs.run_files(self.db, run_id)
                 if f.change in runs.INGESTED_CHANGES]  # fmt: skip
        mirror = await self.mirrors.ensure(spec.repo, spec.url, run.commit, self.beat,
                                           spec.credential_ref)  # fmt: skip
        jobs: dict[str, str] = {f.path: f.job_id for f in files if f.job_id}
        for n, f in enumerate(files):
            if f.job_id or f.state in runs.TERMINAL_FILE_STATES or f.blob_sha is None:
                continue
            self.beat(n)
            text = await run_git("-C", str(mirror), "cat-file", "blob", f.blob_sha,
                                 beat=self.beat, beat_s=self.config.heartbeat_every_s)  # fmt: skip
            chunks = file_chunks(spec, f.path, f.blob_sha, text, self.config.max_chunk_tokens)
            if not chunks:
                await runs.set_file_job(self.db, run_id, f.path, None, "empty")
                continue
            new = NewJob(chunks, SOURCE_TYPE, run.workspace,
                         idempotency_key=f"repo-index:{run_id}:{f.path}")  # fmt: skip
            jobs[f.path] = await self._create(new)
            await runs.set_file_job(self.db, run_id, f.path, jobs[f.path], "queued")
        states = await self._wait_terminal(run_id, jobs)
        completed = sum(1 for s in states.values() if s == "completed")
        return PersistResult(len(jobs), completed, len(jobs) - completed)

    async def _create(self, new: NewJob) -> str:
        while True:
            try:
                return (await self.registry.create(new)).job_id
            except QueueFull:  # the pool is behind: wait, heartbeating, then try again
                self.beat()
                await asyncio.sleep(self.config.queue_full_wait_s)

    async def _wait_job(self, job_id: str) -> str:
        """The job's terminal status, read as persist_kg reads it, heartbeating meanwhile."""
        while True:
            view = await fetch_job(self.redis, self.db, job_id)
            if view is not None and view.status.is_terminal:
                return view.status.value
            self.beat()
            await asyncio.sleep(self.config.job_poll_s)

    async def _wait_terminal(self, run_id: str, jobs: dict[str, str]) -> dict[str, str]:
        """path -> terminal job status, recorded in the run's files as each job ends."""
        states: dict[str, str] = {}
        while len(states) < len(jobs):
            for path, job_id in jobs.items():
                if path in states:
                    continue
                view = await fetch_job(self.redis, self.db, job_id)
                if view is not None and view.status.is_terminal:
                    states[path] = view.status.value
                    await runs.set_file_state(self.db, run_id, path, states[path])
            self.beat(len(states))
            if len(states) < len(jobs):
                await asyncio.sleep(self.config.job_poll_s)
        return states

    @activity.defn(name="persist_metadata")
    async def persist_metadata(self, run_id: str) -> str:
        """Manifest and indexed commit (compare-and-set) in one transaction: the outcome."""
        return await runs.publish(self.db, run_id)

    @activity.defn(name="cleanup_repo")
    async def cleanup_repo(self, spec: RepoSpec, run_id: str) -> None:
        """``git gc --auto`` on the mirror; a run that did not publish is marked failed."""
        await runs.fail_run(self.db, run_id, "the run ended before persist_metadata")
        await self.mirrors.gc(spec.repo, spec.url, self.beat)

    @activity.defn(name="record_failure")
    async def record_failure(self, spec: RepoSpec, run_id: str | None, error: str) -> None:
        """A failed run: its reason on the run (when it was planned) and on the repository,
        one more consecutive failure (backoff, then quarantine: :mod:`.health`)."""
        if run_id is not None:
            await runs.fail_run(self.db, run_id, error)
        await health.record_failure(self.db, spec.repo, spec.branch, error)

    @activity.defn(name="trigger_index")
    async def trigger_index(self, spec: RepoSpec) -> None:
        """A scheduled start: signal-with-start of the repository's own workflow on this
        worker's task queue (folded into a running run like any trigger)."""
        await start_or_signal(activity.client(), spec, task_queue=activity.info().task_queue)
