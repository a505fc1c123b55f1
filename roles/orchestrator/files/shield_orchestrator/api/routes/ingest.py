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


_JOB_ID = "{job_id}"


def _paths(request: Request) -> tuple[str, str]:
    """The paths of GET /jobs/{job_id} (with the placeholder) and of the event stream, as
    ``url_for`` gives them; resolved once per app and root path (url_for walks every router)."""
    root = str(request.scope.get("root_path", ""))
    cache: dict[str, tuple[str, str]] | None = getattr(request.app.state, "ingest_paths", None)
    if cache is None:
        cache = request.app.state.ingest_paths = {}
    if root not in cache:
        cache[root] = (
            str(request.url_for("get_job", job_id=_JOB_ID).path),
            str(request.url_for("stream_events").path),
        )
    return cache[root]


def accepted(
    request: Request, response: Response, created: Created, retry_of: str | None = None
) -> JobAccepted:
    """The 202 body and Location header of a created (or replayed) job."""
    job_path, events_path = _paths(request)
    status_url = job_path.replace(_JOB_ID, created.job_id)
    events_url = f"{events_path}?job_id={created.job_id}"
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
