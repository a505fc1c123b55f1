"""GET /health (liveness: no dependency) and GET /health/detailed (dependencies and queues).

/health/detailed is ``degraded`` (503) when Redis or PostgreSQL is down; Temporal, which only
repository indexing uses, is reported beside them (reachable, or the reason, and the indexer
processes polling its task queue: services/temporal_status.py, at most 2 s) and changes
neither the status nor the workspaces' ``warnings`` (a deployment may not index at all).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shield_orchestrator.api.deps import ContextDep
from shield_orchestrator.api.models import (
    DependencyOut,
    HealthDetailedOut,
    HealthOut,
    TemporalOut,
    TemporalPollerOut,
    WorkerOut,
    WorkspaceOut,
    error_responses,
)
from shield_orchestrator.services.heartbeat import read_workers
from shield_orchestrator.services.queue_stats import queue_stats
from shield_orchestrator.services.temporal_status import TemporalStatus, temporal_status
from shield_orchestrator.services.workspaces import warnings, workspace_states

public = APIRouter(tags=["health"])
router = APIRouter(tags=["health"])


@public.get("/health", response_model=HealthOut, summary="Liveness (no dependency checked)")
async def health() -> HealthOut:
    return HealthOut(status="ok")


async def _probe(check: Callable[[], Awaitable[Any]]) -> DependencyOut:
    started = time.perf_counter()
    try:
        await check()
    except Exception as exc:  # reported, not raised: this endpoint describes failures
        return DependencyOut(ok=False, latency_ms=None, error=type(exc).__name__)
    return DependencyOut(
        ok=True, latency_ms=round(1000 * (time.perf_counter() - started), 3), error=None
    )


@router.get(
    "/health/detailed",
    response_model=HealthDetailedOut,
    responses=error_responses(
        401, extra={503: {"model": HealthDetailedOut, "description": "Redis or PostgreSQL down."}}
    ),
    summary="Redis, PostgreSQL, Temporal and its indexers, workers seen by heartbeat, queue "
    "depths, processing rate",
)
async def health_detailed(ctx: ContextDep, request: Request) -> HealthDetailedOut | JSONResponse:
    redis_ok = await _probe(ctx.redis.ping)
    postgres_ok = await _probe(lambda: ctx.db.fetchval("SELECT 1"))
    temporal = await temporal_status(request.app.state.temporal)
    depth = pending = dead = None
    workers: list[WorkerOut] = []
    spaces: list[WorkspaceOut] = []
    notes: list[str] = []
    rate = None
    if redis_ok.ok:
        stats = await queue_stats(ctx.redis)
        depth, pending, dead = stats.depth, stats.pending, stats.dead_letter
        ctx.metrics.gauges.set("shield_queue_depth", depth)
        ctx.metrics.gauges.set("shield_queue_pending", pending)
        ctx.metrics.gauges.set("shield_dead_letter_depth", dead)
        now = time.time()
        beats = await read_workers(ctx.redis)
        workers = [
            WorkerOut(
                consumer=b.consumer,
                last_seen_age_s=round(max(0.0, now - b.last_seen), 3),
                processed=b.processed,
                rate_per_s=b.rate,
            )
            for b in beats
        ]
        rate = round(sum(b.rate for b in beats), 3)
        states = workspace_states(stats, beats, now)
        spaces = [
            WorkspaceOut(
                name=s.name,
                owners=list(s.servers),
                owned_for_s=s.served_for_s,
                queue_depth=s.depth,
                pending=s.pending,
            )
            for s in states
        ]
        notes = warnings(states)
    out = HealthDetailedOut(
        status="ok" if redis_ok.ok and postgres_ok.ok else "degraded",
        redis=redis_ok,
        postgres=postgres_ok,
        temporal=_temporal_out(temporal),
        workers=workers,
        workspaces=spaces,
        warnings=notes,
        queue_depth=depth,
        pending=pending,
        dead_letter=dead,
        processing_rate_per_s=rate,
    )
    if out.status != "ok":
        return JSONResponse(out.model_dump(mode="json"), status_code=503)
    return out


def _temporal_out(status: TemporalStatus) -> TemporalOut:
    return TemporalOut(
        ok=status.ok,
        latency_ms=status.latency_ms,
        error=status.error,
        address=status.address,
        namespace=status.namespace,
        task_queue=status.task_queue,
        indexers=[
            TemporalPollerOut(identity=p.identity, polls=list(p.polls),
                              last_seen_age_s=p.last_seen_age_s)
            for p in status.pollers
        ],
    )  # fmt: skip
