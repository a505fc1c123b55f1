"""POST /lightrag/ingest-async: validate, create the job, answer 202 with where to look."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status

from shield_orchestrator.api import config
from shield_orchestrator.api.deps import MetricsDep, RegistryDep
from shield_orchestrator.api.models import IngestRequest, JobAccepted, error_responses
from shield_orchestrator.services.job_registry import Created, NewChunk, NewJob

router = APIRouter(tags=["ingest"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=config.MAX_IDEMPOTENCY_KEY_CHARS,
        pattern=r"^[\x21-\x7e]+$",
        description="Same key and body: the same job. Same key, other body: 409.",
    ),
]


def accepted(
    request: Request, response: Response, created: Created, retry_of: str | None = None
) -> JobAccepted:
    """The 202 body and Location header of a created (or replayed) job."""
    status_url = str(request.url_for("get_job", job_id=created.job_id).path)
    events_url = f"{request.url_for('stream_events').path}?job_id={created.job_id}"
    response.headers["Location"] = status_url
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return JobAccepted(
        job_id=created.job_id,
        status="queued",
        chunks_total=created.chunks_total,
        status_url=status_url,
        events_url=events_url,
        retry_of=retry_of,
    )


@router.post(
    "/lightrag/ingest-async",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses=error_responses(400, 401, 409, 413, 422, 429, 503),
    summary="Queue chunks for ingestion into LightRAG",
)
async def ingest_async(
    body: IngestRequest,
    request: Request,
    response: Response,
    registry: RegistryDep,
    metrics: MetricsDep,
    idempotency_key: IdempotencyKey = None,
) -> JobAccepted:
    new = NewJob(
        chunks=[NewChunk(c.text, c.source_uri, c.metadata) for c in body.chunks],
        source_type=body.source_type,
        workspace=body.workspace,
        idempotency_key=None if idempotency_key is None else f"client:{idempotency_key}",
    )
    created = await registry.create(new)
    if not created.replayed:
        metrics.chunks_accepted.inc(created.chunks_total)
    return accepted(request, response, created)
