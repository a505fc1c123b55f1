"""The FastAPI application factory: ``create_app(settings)``; nothing is built at import time.

The lifespan owns the Redis client and the PostgreSQL pool: it creates them on startup
(without connecting: the API starts, and /health answers, while a dependency is still down)
and closes them on shutdown. Every route but ``/health`` (and the OpenAPI pages, when
``config.docs_enabled``) requires an API key, checked from the headers before the body is read.
Outermost first: metrics, CORS, the key gate (401), body limits (413, 408), the routes.

    python -m shield_orchestrator.api
    uvicorn --factory shield_orchestrator.api.app:app_from_env
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from shield_orchestrator.api.auth import ApiKeyGate, KeyRing, require_api_key
from shield_orchestrator.api.config import ApiConfig
from shield_orchestrator.api.deps import ApiContext
from shield_orchestrator.api.errors import install_error_handlers
from shield_orchestrator.api.limits import BodyLimits
from shield_orchestrator.api.routes import events, health, ingest, jobs, metrics, query, repos
from shield_orchestrator.api.telemetry import ApiMetrics
from shield_orchestrator.database.pool import create_pool
from shield_orchestrator.indexing.client import TemporalTarget
from shield_orchestrator.services.job_registry import JobRegistry
from shield_orchestrator.services.redis_client import create_redis
from shield_orchestrator.services.repositories import TemporalGateway
from shield_orchestrator.settings import Settings, load_settings, require_api_keys

log = logging.getLogger(__name__)

API_VERSION = "1"
REDIS_MAX_CONNECTIONS = 256  # each open SSE stream (XREAD) and query (BLPOP) holds one
PG_POOL_MAX = 8
DOCS_PATHS = {"docs_url": "/docs", "redoc_url": "/redoc", "openapi_url": "/openapi.json"}


def create_app(
    settings: Settings, config: ApiConfig | None = None, temporal: TemporalTarget | None = None
) -> FastAPI:
    """The API app for these settings; ConfigError (naming SHIELD_API_KEYS) without a key.
    ``temporal``: where POST /repos/{id}/index starts workflows (dialled on first use)."""
    config = config or ApiConfig()
    key_ring = KeyRing(require_api_keys(settings))
    api_metrics = ApiMetrics(settings.api_metrics_dir)  # several processes: summed

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = create_redis(settings, max_connections=REDIS_MAX_CONNECTIONS)
        try:
            db = await create_pool(settings, min_size=0, max_size=PG_POOL_MAX)
        except BaseException:
            await redis.aclose()
            raise
        registry = JobRegistry(
            redis,
            db,
            max_queue_pending=config.max_queue_pending,
            idempotency_ttl_s=config.idempotency_ttl_s,
        )
        app.state.ctx = ApiContext(config, redis, db, registry, api_metrics)
        log.info(
            "api ready (redis %s:%s, postgres %s:%s/%s)",
            settings.redis_host, settings.redis_port,
            settings.postgres_host, settings.postgres_port, settings.postgres_db,
            extra={"action": "api_start"},
        )  # fmt: skip
        try:
            yield
        finally:
            await db.close()
            await redis.aclose()
            log.info("api stopped", extra={"action": "api_stop"})

    app = FastAPI(
        title="shield-orchestrator",
        version=API_VERSION,
        summary="Asynchronous LightRAG ingestion: submit chunks, follow jobs and events.",
        lifespan=lifespan,
        **(DOCS_PATHS if config.docs_enabled else dict.fromkeys(DOCS_PATHS)),
    )
    app.state.config = config
    app.state.key_ring = key_ring
    app.state.metrics = api_metrics
    # the Settings' Temporal, as the indexers read it (indexing/client.py)
    app.state.temporal = TemporalGateway(temporal or TemporalTarget.from_settings(settings))
    install_error_handlers(app, config)
    app.include_router(health.public)
    secured = [Depends(require_api_key)]
    for module in (ingest, query, jobs, events, metrics, repos):
        app.include_router(module.router, dependencies=secured)
    app.include_router(health.router, dependencies=secured)
    public = {"/health"}
    if config.docs_enabled:
        public |= {*DOCS_PATHS.values(), f"{DOCS_PATHS['docs_url']}/oauth2-redirect"}
    app.add_middleware(BodyLimits, max_bytes=config.max_body_bytes, timeout_s=config.body_timeout_s)
    app.add_middleware(ApiKeyGate, key_ring=key_ring, public_paths=public)  # 401 before 413/408
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "Idempotency-Key",
                           "Last-Event-ID"],
            expose_headers=["Location", "Retry-After", "Idempotent-Replayed"],
        )  # fmt: skip
    app.add_middleware(api_metrics.middleware)
    return app


def app_from_env() -> FastAPI:
    """uvicorn --factory entry point: Settings from the environment."""
    return create_app(load_settings())
