"""GET /metrics: Prometheus text format (requests by route/status, latency, and the queue,
write-behind and worker gauges read from Redis at each scrape, the repository indexing
counters read from PostgreSQL at each scrape: services/index_metrics.py). With several API
processes the counters are the sum over all of them, whichever process answers
(api/telemetry.py)."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from shield_orchestrator.api.deps import ContextDep
from shield_orchestrator.api.models import error_responses
from shield_orchestrator.services.heartbeat import read_workers
from shield_orchestrator.services.queue_stats import queue_stats
from shield_orchestrator.services.workspaces import warnings, workspace_states

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
        gauges = ctx.metrics.gauges
        gauges.set("shield_queue_depth", stats.depth)
        gauges.set("shield_queue_pending", stats.pending)
        gauges.set("shield_dead_letter_depth", stats.dead_letter)
        gauges.set("shield_queue_stale_pending_seconds", stats.stale_pending_s)
        gauges.set("shield_jobs_dirty", stats.jobs_dirty)
        gauges.set("shield_workers_live", len(workers))
        unserved = warnings(workspace_states(stats, workers, time.time()))
        gauges.set("shield_workspaces_unserved", len(unserved))
    try:
        await ctx.metrics.index.refresh(ctx.db)
    except Exception as exc:  # the last values (or none) stay: never a 0 that reads as a reset
        log.debug("indexing counters not refreshed: %s", type(exc).__name__,
                  extra={"action": "metrics"})  # fmt: skip
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
