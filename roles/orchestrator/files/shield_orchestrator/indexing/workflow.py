"""The repository-indexing workflow on Temporal: one run per (repo, branch) at a time.

Workflow id ``repo-index:{repo}:{branch}``. A trigger is a signal-with-start
(:func:`trigger_index`): it starts the workflow, or signals the running one, which then loops
once more after its current run. However many triggers arrive during a run, they fold into
one follow-up; two concurrent triggers give one run plus at most one follow-up. A run::

    check_indexing_needed   ls-remote head vs the indexed commit (force: always needed)
    clone_repo              fetch the cached mirror (clone it once) -> the branch's commit
    parse_repo              plan_commit against the manifest -> run row + changed files (PG)
    cleanup_stale_kg_nodes  documents of modified/removed/renamed-away files out of the graph:
                            one pool job of delete_document entries, waited for
    persist_kg              one ingestion job per changed file, then wait until all terminal
    persist_metadata        manifest + indexed commit by compare-and-set, in one transaction
    cleanup_repo            (finally) gc the mirror, mark an unfinished run failed
    record_failure          (on a failed activity) the run's reason, one more consecutive
                            failure: backoff, then quarantine (indexing/health.py)

A non-forced run of a repository that backs off or is quarantined does not start: the check
answers ``refused`` (no git call) and the run's outcome is ``backing_off`` or ``quarantined``.
A failed run records its reason and leaves the graph, the manifest and the indexed commit as
they were (nothing is published before persist_metadata); the workflow then fails with it.

A Temporal Schedule (services/repositories.py, ``repo-index-schedule:{repo}:{branch}``) cannot
start this id itself: a scheduled start gets the schedule's id plus a timestamp. Its action is
this workflow with ``forward=True``, which only calls ``trigger_index`` (the activity does the
signal-with-start of ``repo-index:{repo}:{branch}`` below) and ends: a scheduled refresh folds
into a running run like any trigger, never a second concurrent run.

Deletion comes before ingestion (the issue's order: old documents leave the graph first, so
LightRAG's content dedup never takes a re-ingested chunk for a copy of its old self). Payloads
carry ids and counts only; plans and file lists live in PostgreSQL (:mod:`.runs`). Activities
are called by name, so this module (run in Temporal's sandbox) imports none of their
dependencies. After :data:`MAX_LOOPS` loops the workflow continues as new to bound its history.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar, cast

from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

T = TypeVar("T")

TASK_QUEUE = "repo-indexing"
WORKFLOW_NAME = "RepoIndexingWorkflow"
SIGNAL = "index_requested"
MAX_LOOPS = 20  # follow-up runs in one execution before continue-as-new
HEARTBEAT_TIMEOUT = timedelta(seconds=30)  # activities heartbeat every HEARTBEAT_EVERY_S
# Error types (exception class names) that no retry can fix.
NON_RETRYABLE = ["RepoNotFound", "RepoAuthError", "StaleRun", "ValueError", "CommandFailed"]
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=5,
    non_retryable_error_types=NON_RETRYABLE,
)
# start-to-close per activity: a bound on one attempt (heartbeats catch a dead worker sooner).
TIMEOUTS: dict[str, timedelta] = {
    "check_indexing_needed": timedelta(minutes=2),
    "clone_repo": timedelta(minutes=30),
    "parse_repo": timedelta(minutes=15),
    "cleanup_stale_kg_nodes": timedelta(hours=2),  # waits for the pool's deletion job
    "persist_kg": timedelta(hours=2),
    "persist_metadata": timedelta(minutes=5),
    "cleanup_repo": timedelta(minutes=10),
    "record_failure": timedelta(minutes=2),
    "trigger_index": timedelta(minutes=2),
}


def workflow_id(repo: str, branch: str) -> str:
    return f"repo-index:{repo}:{branch}"


@dataclass(frozen=True)
class RepoSpec:
    """What the workflow indexes, and how (the repository's registration)."""

    repo: str  # the repository's id
    url: str  # https, ssh or a local path; never with credentials
    branch: str
    workspace: str
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    max_file_bytes: int = 1_048_576
    max_files: int = 100_000  # files of one commit to index, in path order; more: a cap error
    credential_ref: str | None = None  # NAME of the indexers' env variable (mirrors.git_auth)
    command: list[str] = field(default_factory=list)  # the operator's argv (runner.py); [] none
    command_timeout_s: float = 600.0
    command_mode: str = "after"  # after the built-in steps | instead of them


@dataclass(frozen=True)
class IndexRequest:
    spec: RepoSpec
    trigger: str  # the id of the trigger that started this execution (its signal is ignored)
    force: bool = False
    loops: int = 0  # runs done by earlier executions (continue-as-new)
    forward: bool = False  # a scheduled start: trigger repo-index:{repo}:{branch} and end


@dataclass(frozen=True)
class CheckResult:
    needed: bool
    head: str  # "" when refused
    indexed_commit: str | None
    refused: str | None = None  # backing_off | quarantined: a non-forced run may not start


@dataclass(frozen=True)
class PlanInput:
    spec: RepoSpec
    run_id: str
    commit: str


@dataclass(frozen=True)
class PlanResult:
    run_id: str
    commit: str
    base_commit: str | None
    added: int
    modified: int
    removed: int
    renamed: int
    unchanged: int
    skipped: int


@dataclass(frozen=True)
class CleanupResult:
    deleted: int  # (path, blob sha)s whose documents left the graph
    pending: int  # whose deletion failed: sent again by the next run


@dataclass(frozen=True)
class PersistResult:
    jobs: int  # ingestion jobs created (one per changed file)
    completed: int
    failed: int  # failed or completed_with_errors: re-planned by the next run


@dataclass(frozen=True)
class RunSummary:
    run_id: str | None  # None: nothing to do (the head is indexed)
    commit: str
    outcome: str  # up_to_date | backing_off | quarantined | completed | completed_with_errors
    changed: int = 0
    deleted: int = 0  # files whose old documents left the graph
    deletions_pending: int = 0  # files whose old documents are still to delete
    jobs: int = 0
    failed: int = 0


@dataclass(frozen=True)
class IndexResult:
    runs: list[RunSummary]


def failure_reason(exc: ActivityError) -> str:
    """``<activity>: <error type>: <message>`` of a failed activity (its last attempt)."""
    cause = exc.cause
    kind = cause.type if isinstance(cause, ApplicationError) and cause.type else None
    message = (cause.message if isinstance(cause, FailureError) else str(cause)) or str(exc)
    return f"{exc.activity_type}: {kind or type(cause).__name__}: {message}"


async def _call(name: str, *args: Any, result_type: type[T]) -> T:
    """Run the activity ``name`` with its timeouts and the retry policy."""
    result = await workflow.execute_activity(
        name,
        args=list(args),
        result_type=result_type,
        start_to_close_timeout=TIMEOUTS[name],
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=RETRY,
    )
    return cast(T, result)


async def _run_command(spec: RepoSpec, run_id: str, commit: str, base: str | None) -> None:
    """runner.py's activity: its own start-to-close (the command's timeout plus a margin)."""
    await workflow.execute_activity(
        "run_repo_command",
        args=[spec, run_id, commit, base],
        start_to_close_timeout=timedelta(seconds=spec.command_timeout_s + 300),
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=RETRY,
    )


@workflow.defn(name=WORKFLOW_NAME)
class RepoIndexingWorkflow:
    @workflow.init
    def __init__(self, request: IndexRequest) -> None:
        self._start_trigger = request.trigger
        self._requests = 0  # triggers other than the starting one, received so far
        self._force_next = False  # one of them asked for force

    @workflow.signal(name=SIGNAL)
    def index_requested(self, trigger: str, force: bool) -> None:
        if trigger != self._start_trigger:
            self._requests += 1
            self._force_next = self._force_next or force

    @workflow.run
    async def run(self, request: IndexRequest) -> IndexResult:
        if request.forward:  # a scheduled start (see the module doc)
            await _call("trigger_index", request.spec, result_type=type(None))
            return IndexResult([])
        runs: list[RunSummary] = []
        force = request.force
        while True:
            seen = self._requests
            runs.append(await self._index_once(request.spec, force))
            # A follow-up indexes the new head only if it moved, unless a trigger forced it.
            force, self._force_next = self._force_next, False
            if self._requests == seen:
                return IndexResult(runs)
            if len(runs) >= MAX_LOOPS:  # the follow-up is the new execution's first run
                workflow.continue_as_new(
                    replace(
                        request,
                        trigger=str(workflow.uuid4()),
                        force=force,
                        loops=request.loops + len(runs),
                    )
                )

    async def _index_once(self, spec: RepoSpec, force: bool) -> RunSummary:
        try:
            check = await _call("check_indexing_needed", spec, force, result_type=CheckResult)
        except ActivityError as exc:
            await _call("record_failure", spec, None, failure_reason(exc), result_type=type(None))
            raise
        if check.refused:
            return RunSummary(None, check.head, check.refused)
        if not check.needed:
            return RunSummary(None, check.head, "up_to_date")
        run_id = str(workflow.uuid4())
        try:
            commit = await _call("clone_repo", spec, result_type=str)
            if spec.command and spec.command_mode == "instead":  # runner.py replaces the rest
                await _run_command(spec, run_id, commit, check.indexed_commit)
                return RunSummary(run_id, commit, "completed")
            plan = await _call(
                "parse_repo", PlanInput(spec, run_id, commit), result_type=PlanResult
            )
            cleanup = await _call("cleanup_stale_kg_nodes", run_id, result_type=CleanupResult)
            persisted = await _call("persist_kg", spec, run_id, result_type=PersistResult)
            outcome = await _call("persist_metadata", run_id, result_type=str)
            if spec.command:  # command_mode "after"
                await _run_command(spec, run_id, plan.commit, None)
        except ActivityError as exc:  # before cleanup_repo: the run keeps this reason
            await _call("record_failure", spec, run_id, failure_reason(exc),
                        result_type=type(None))  # fmt: skip
            raise
        finally:
            await _call("cleanup_repo", spec, run_id, result_type=type(None))
        changed = plan.added + plan.modified + plan.removed + plan.renamed
        return RunSummary(run_id, plan.commit, outcome, changed, cleanup.deleted,
                          cleanup.pending, persisted.jobs, persisted.failed)  # fmt: skip


async def trigger_index(
    client: Client,
    spec: RepoSpec,
    *,
    force: bool = False,
    trigger: str | None = None,
    task_queue: str = TASK_QUEUE,
) -> WorkflowHandle[RepoIndexingWorkflow, IndexResult]:
    """Start the workflow of (repo, branch), or fold this request into the running one.

    One signal-with-start call, atomic on the server: when no execution of the id runs, it
    starts one (whose own signal is ignored: same trigger id); when one runs, it is signalled
    and loops once more after its current run. The handle names the execution either way.
    """
    trigger = trigger or uuid.uuid4().hex
    return await client.start_workflow(
        RepoIndexingWorkflow.run,
        IndexRequest(spec, trigger, force),
        id=workflow_id(spec.repo, spec.branch),
        task_queue=task_queue,
        start_signal=SIGNAL,
        start_signal_args=[trigger, force],
    )
