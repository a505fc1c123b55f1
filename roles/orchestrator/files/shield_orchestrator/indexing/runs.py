"""Indexing runs in PostgreSQL (migration 0002): the plan, the manifest, the indexed commit.

The workflow's payloads carry a run id and counts; what a run does lives here. States of a
changed file (``repo_run_files.state``)::

    pending ──persist_kg──> queued ──job terminal──> completed | completed_with_errors | failed
       └──(no chunk: whitespace only)──> empty
    removed files stay ``pending``; their documents are in repo_doc_deletions

Documents to take out of the graph (``repo_doc_deletions``, one row per (path, blob sha) of
the manifest that a run replaced or dropped, with the job that ingested it)::

    pending ──deletion job of delete_document entries completed for it──> deleted
    (a failed deletion stays pending: the next run of the branch sends it again)

A file's documents are its ingestion job's chunks: :func:`pending_deletions` names them with
``messages.chunk_document_id(job_id, c000001 ... c{chunks_total})``.

:func:`publish` is the only writer of the manifest and of the indexed commit: one
transaction that refuses a run with a file not yet terminal (:class:`RunNotReady`), updates
the manifest (files whose job did not complete leave it, so the next run plans them again)
and moves ``indexed_commit`` by compare-and-set from the run's base commit
(:class:`StaleRun` when another run moved it first; nothing is written then). The same
transaction resets the repository's failures (:mod:`.health`: a success). A run that left
files out for the file cap (skip reason ``over_max_files``) publishes what it indexed and
ends ``completed_with_errors`` with an error naming the cap (:data:`CAP_ERROR`).

Errors::

    ShieldError
    └── IndexingError        this package
        ├── StaleRun         the indexed commit moved since the run planned (not retried)
        ├── RunNotReady      publish before every file reached a terminal state (retried)
        ├── RepoNotFound     (mirrors.py) no such repository or branch (not retried)
        └── RepoAuthError    (mirrors.py) the remote refused the credentials (not retried)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shield_orchestrator.database.queries import query
from shield_orchestrator.errors import ShieldError
from shield_orchestrator.indexing.plan import Plan, SkipReason
from shield_orchestrator.services.job_registry import NewDeletion, chunk_id
from shield_orchestrator.services.messages import MAX_DELETE_IDS, chunk_document_id

TERMINAL_FILE_STATES = frozenset({"completed", "completed_with_errors", "failed", "empty"})
INDEXED_FILE_STATES = frozenset({"completed", "empty"})  # these enter the manifest
INGESTED_CHANGES = ("added", "modified", "renamed")  # changes whose new content is ingested
CAP_ERROR = (
    "{n} file(s) not indexed: the commit has more indexable files than the repository's "
    "max_files (skip reason over_max_files; the first max_files in path order are indexed); "
    "raise max_files (POST /repos with the same url, branch and workspace and a larger "
    "max_files) or narrow include/exclude"
)


class IndexingError(ShieldError):
    """Base of the repository indexing errors."""


class StaleRun(IndexingError):  # noqa: N818 (named for what it is)
    def __init__(self, run_id: str, base: str | None) -> None:
        super().__init__(
            f"run {run_id}: the indexed commit is no longer {base or 'unset'}; nothing published"
        )


class RunNotReady(IndexingError):  # noqa: N818
    def __init__(self, run_id: str, pending: int) -> None:
        super().__init__(f"run {run_id}: {pending} file(s) not in a terminal state yet")


@dataclass(frozen=True, slots=True)
class RunFile:
    path: str
    change: str  # added | modified | removed | renamed
    blob_sha: str | None  # None for a removed file
    old_path: str | None  # the path a renamed file came from
    job_id: str | None
    state: str


@dataclass(frozen=True, slots=True)
class Deletion:
    """The documents of one (path, blob sha) to take out of the graph."""

    path: str
    blob_sha: str
    doc_ids: tuple[str, ...]  # empty: the file made no document (nothing to delete)


@dataclass(frozen=True, slots=True)
class Run:
    run_id: str
    repo: str
    branch: str
    workspace: str
    base_commit: str | None
    commit: str
    status: str
    skipped: Mapping[str, int] = field(default_factory=dict)  # skip reason -> files


async def indexed_commit(db: Any, repo: str, branch: str) -> str | None:
    value = await db.fetchval(query("select_indexed_commit"), repo, branch)
    return None if value is None else str(value)


async def manifest(db: Any, repo: str, branch: str) -> dict[str, str]:
    """path -> blob sha of every file the graph holds for (repo, branch)."""
    rows = await db.fetch(query("select_manifest"), repo, branch)
    return {r["path"]: r["blob_sha"] for r in rows}


def _file_rows(plan: Plan, previous: Mapping[str, str]) -> list[tuple[Any, ...]]:
    ch = plan.changes
    new = plan.manifest
    rows: list[tuple[Any, ...]] = [(p, "added", new[p], None, None) for p in ch.added]
    rows += [(p, "modified", new[p], None, previous[p]) for p in ch.modified]
    rows += [(p, "removed", None, None, previous[p]) for p in ch.removed]
    rows += [(r.new_path, "renamed", r.sha, r.old_path, r.sha) for r in ch.renamed]
    return rows


async def record_plan(
    db: Any,
    run_id: str,
    *,
    repo: str,
    branch: str,
    workspace: str,
    base_commit: str | None,
    plan: Plan,
    previous: Mapping[str, str],
) -> bool:
    """Store the run and its changed files; False when the run id exists (a retried plan)."""
    skipped = {str(k): v for k, v in plan.skipped_by_reason().items()}
    rows = _file_rows(plan, previous)
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[]] * 5
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(query("ensure_index_state"), repo, branch)
        inserted = await conn.fetchval(
            query("insert_index_run"), run_id, repo, branch, workspace, base_commit,
            plan.commit, json.dumps(skipped), plan.changes.unchanged,
        )  # fmt: skip
        if inserted is None:
            return False
        await conn.execute(query("insert_run_files"), run_id, *columns)
    return True


async def run(db: Any, run_id: str) -> Run:
    row = await db.fetchrow(query("select_index_run"), run_id)
    if row is None:
        raise IndexingError(f"no indexing run {run_id}")
    return Run(
        str(row["run_id"]), row["repo"], row["branch"], row["workspace"],
        row["base_commit"], row["commit"], row["status"],
        {str(k): int(v) for k, v in json.loads(row["skipped"]).items()},
    )  # fmt: skip


async def run_files(db: Any, run_id: str) -> list[RunFile]:
    rows = await db.fetch(query("select_run_files"), run_id)
    return [
        RunFile(
            r["path"],
            r["change"],
            r["blob_sha"],
            r["old_path"],
            None if r["job_id"] is None else str(r["job_id"]),
            r["state"],
        )
        for r in rows
    ]


async def set_file_job(db: Any, run_id: str, path: str, job_id: str | None, state: str) -> None:
    await db.execute(query("set_run_file_job"), run_id, path, job_id, state)


async def set_file_state(db: Any, run_id: str, path: str, state: str) -> None:
    await db.execute(query("set_run_file_state"), run_id, path, state)


async def record_deletions(db: Any, run_id: str) -> int:
    """Record the documents of modified, removed and renamed-away files as deletion pending
    (the indexer then sends them to the pool: activities.cleanup_stale_kg_nodes)."""
    rows = await db.fetch(query("insert_doc_deletions"), run_id)
    return len(rows)


async def pending_deletions(db: Any, repo: str, branch: str) -> list[Deletion]:
    """Every deletion still pending for (repo, branch), with its documents' ids."""
    rows = await db.fetch(query("select_pending_deletions"), repo, branch)
    return [_deletion(r) for r in rows]


def _deletion(r: Any) -> Deletion:
    job = None if r["job_id"] is None else str(r["job_id"])
    n = int(r["chunks_total"]) if job else 0
    return Deletion(r["path"], r["blob_sha"],
                    tuple(chunk_document_id(job, chunk_id(i)) for i in range(1, n + 1)) if job
                    else ())  # fmt: skip


def deletion_entries(repo: str, deletions: list[Deletion]) -> tuple[list[NewDeletion], list[int]]:
    """The ``delete_document`` entries of the deletions that have documents (at most
    MAX_DELETE_IDS ids each: a file with more takes several), and each entry's index in
    ``deletions``."""
    entries: list[NewDeletion] = []
    owner: list[int] = []
    for n, d in enumerate(deletions):
        for start in range(0, len(d.doc_ids), MAX_DELETE_IDS):
            entries.append(NewDeletion(d.doc_ids[start : start + MAX_DELETE_IDS],
                                       f"repo:{repo}/{d.path}"))  # fmt: skip
            owner.append(n)
    return entries, owner


async def repository_documents(db: Any, repo: str, branch: str) -> list[Deletion]:
    """Every document (repo, branch) holds in the graph: its manifest's files' and the
    deletions still pending (DELETE /repos/{id} takes them all out)."""
    rows = await db.fetch(query("select_repository_documents"), repo, branch)
    return [_deletion(r) for r in rows]


async def mark_deleted(db: Any, repo: str, branch: str, done: list[Deletion]) -> None:
    await db.execute(query("mark_deletions_done"), repo, branch,
                     [d.path for d in done], [d.blob_sha for d in done])  # fmt: skip


async def publish(db: Any, run_id: str) -> str:
    """Commit the run: manifest, indexed commit (compare-and-set), run outcome. See module doc.

    Returns the outcome: ``completed``, or ``completed_with_errors`` when a file's job did not
    complete (it is left out of the manifest and planned again by the next run).
    """
    async with db.acquire() as conn, conn.transaction():
        current = await run(conn, run_id)
        if current.status != "planned":  # a retried publish that committed before
            return current.status
        files = await run_files(conn, run_id)
        ingested = [f for f in files if f.change in INGESTED_CHANGES]
        pending = sum(1 for f in ingested if f.state not in TERMINAL_FILE_STATES)
        if pending:
            raise RunNotReady(run_id, pending)
        good = [f for f in ingested if f.state in INDEXED_FILE_STATES]
        gone = [f.path for f in files if f.change == "removed"]
        gone += [f.old_path for f in files if f.change == "renamed" and f.old_path]
        gone += [f.path for f in ingested if f.state not in INDEXED_FILE_STATES]
        repo, branch = current.repo, current.branch
        await conn.execute(query("delete_manifest_paths"), repo, branch, gone)
        await conn.execute(
            query("upsert_manifest"), repo, branch,
            [f.path for f in good], [f.blob_sha for f in good], [f.job_id for f in good],
        )  # fmt: skip
        moved = await conn.fetchval(
            query("advance_indexed_commit"), repo, branch, current.base_commit, current.commit
        )
        if moved is None:
            raise StaleRun(run_id, current.base_commit)
        over = current.skipped.get(SkipReason.OVER_MAX_FILES.value, 0)
        complete = len(good) == len(ingested) and not over
        outcome = "completed" if complete else "completed_with_errors"
        error = CAP_ERROR.format(n=over) if over else None
        await conn.execute(query("finish_index_run"), run_id, outcome, error)
        await conn.execute(query("reset_index_failures"), repo, branch)
    return outcome


async def fail_run(db: Any, run_id: str, error: str) -> bool:
    """Mark a run that did not publish as failed; False when it finished (or never planned)."""
    status = await db.execute(query("finish_index_run"), run_id, "failed", error[:2000])
    return bool(status == "UPDATE 1")
