"""GET /jobs, GET /jobs/{job_id}, GET /jobs/{job_id}/failures, POST /jobs/{job_id}/retry-failed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from shield_orchestrator.api.deps import DbDep, RedisDep, RegistryDep
from shield_orchestrator.api.models import (
    FailureOut,
    FailuresOut,
    JobAccepted,
    JobOut,
    JobsPage,
    StatusName,
    error_responses,
)
from shield_orchestrator.api.routes.ingest import accepted
from shield_orchestrator.errors import JobNotFound
from shield_orchestrator.services import job_failures
from shield_orchestrator.services.job_listing import JobFilter, list_jobs
from shield_orchestrator.services.job_status import JobView, fetch_job

router = APIRouter(tags=["jobs"])

MAX_PAGE = 200  # jobs per page of GET /jobs (a larger limit is a 422)


def _job_out(job: JobView) -> JobOut:
    summary = None
    if job.chunks_failed:
        summary = (
            f"{job.chunks_failed} of {job.chunks_total} chunks failed; "
            f"see /jobs/{job.job_id}/failures"
        )
    return JobOut(
        job_id=job.job_id,
        status=job.status.value,
        workspace=job.workspace,
        chunks_total=job.chunks_total,
        chunks_processed=job.chunks_processed,
        chunks_failed=job.chunks_failed,
        percent_complete=job.percent_complete,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        updated_at=job.updated_at,
        error_summary=summary,
        source=job.source,  # type: ignore[arg-type]
    )


@router.get(
    "/jobs",
    response_model=JobsPage,
    responses=error_responses(401, 422, 503),
    summary="Jobs, newest first, filtered, a page at a time (from PostgreSQL)",
)
async def get_jobs(
    db: DbDep,
    status: Annotated[
        StatusName | None,
        Query(description="Only jobs in this status (PostgreSQL's copy, flushed behind Redis)."),
    ] = None,
    kind: Annotated[str | None, Query(max_length=64, description="Only this kind.")] = None,
    workspace: Annotated[
        str | None, Query(max_length=256, description="Only this workspace.")
    ] = None,
    created_since: Annotated[
        dt.datetime | None, Query(description="Only jobs created at or after this instant.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Jobs per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=512, description="next_cursor of the previous page, same filters."),
    ] = None,
) -> JobsPage:
    if created_since is not None and created_since.tzinfo is None:
        created_since = created_since.replace(tzinfo=dt.UTC)
    flt = JobFilter(status, kind, workspace, created_since)
    # a cursor not made for these filters raises BadCursor: a 422 naming it (api/errors.py)
    jobs, next_cursor = await list_jobs(db, flt, limit, cursor)
    return JobsPage(jobs=[_job_out(j) for j in jobs], next_cursor=next_cursor)


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    responses=error_responses(401, 404, 422, 503),
    summary="Status and progress of a job",
)
async def get_job(job_id: UUID, redis: RedisDep, db: DbDep) -> JobOut:
    job = await fetch_job(redis, db, str(job_id))
    if job is None:
        raise JobNotFound(f"no job {job_id} (unknown, or expired from both Redis and PostgreSQL)")
    return _job_out(job)


@router.get(
    "/jobs/{job_id}/failures",
    response_model=FailuresOut,
    responses=error_responses(401, 404, 422, 503),
    summary="The dead-lettered chunks of a job, with their errors",
)
async def get_failures(job_id: UUID, redis: RedisDep, db: DbDep) -> FailuresOut:
    failures = await job_failures.list_failures(redis, db, str(job_id))
    return FailuresOut(
        job_id=str(job_id),
        failures=[
            FailureOut(
                chunk_id=f.chunk_id,
                source_uri=f.source_uri,
                error=f.error,
                attempts=f.attempts,
                failed_at=f.failed_at,
            )
            for f in failures
        ],
    )


@router.post(
    "/jobs/{job_id}/retry-failed",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses=error_responses(401, 404, 409, 422, 429, 503),
    summary="Re-enqueue a finished job's failed chunks as a new job (idempotent)",
)
async def retry_failed(
    job_id: UUID, request: Request, response: Response, registry: RegistryDep
) -> JobAccepted:
    created = await job_failures.retry_failed(registry, str(job_id))
    return accepted(request, response, created, retry_of=str(job_id))
