"""GET /metrics: Prometheus text format (requests by route/status, latency, and the queue,
write-behind and worker gauges read from Redis at each scrape)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shield_orchestrator.api.deps import ContextDep
from shield_orchestrator.api.models import error_responses
from shield_orchestrator.services.heartbeat import read_workers
from shield_orchestrator.services.queue_stats import queue_stats

log = logging.getLogger(__name__)
router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses=error_responses(
        401,
        extra={
            200: {
                "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
                "description": "Prometheus exposition format",
            }
        },
    ),
    summary="Prometheus metrics",
)
async def metrics(ctx: ContextDep) -> Response:
    try:
        stats = await queue_stats(ctx.redis)
        workers = await read_workers(ctx.redis)
    except Exception as exc:  # the request counters are still worth scraping without Redis
        log.debug("queue gauges not refreshed: %s", type(exc).__name__, extra={"action": "metrics"})
    else:
        ctx.metrics.queue_depth.set(stats.depth)
        ctx.metrics.pending.set(stats.pending)
        ctx.metrics.dead_letter.set(stats.dead_letter)
        ctx.metrics.stale_pending.set(stats.stale_pending_s)
        ctx.metrics.jobs_dirty.set(stats.jobs_dirty)
        ctx.metrics.workers_live.set(len(workers))
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
