"""Typed dependencies of the routes (``Annotated`` aliases over the lifespan's state).

The lifespan (app.py) builds one :class:`ApiContext` and keeps it on ``app.state.ctx``;
routes ask for its parts by type: ``redis: RedisDep``, ``registry: RegistryDep``, ...

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in its thread pool,
a thread hop (and a wait for a free thread under load) per dependency per request, for what
is an attribute read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from redis.asyncio import Redis

from shield_orchestrator.api.config import ApiConfig
from shield_orchestrator.api.telemetry import ApiMetrics
from shield_orchestrator.services.job_registry import JobRegistry


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the lifespan owns: the clients and the components built on them."""

    config: ApiConfig
    redis: Redis
    db: Any  # asyncpg.Pool
    registry: JobRegistry
    metrics: ApiMetrics


def context_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


async def get_context(request: Request) -> ApiContext:
    return context_of(request)


async def _redis(request: Request) -> Redis:
    return context_of(request).redis


async def _db(request: Request) -> Any:
    return context_of(request).db


async def _registry(request: Request) -> JobRegistry:
    return context_of(request).registry


async def _config(request: Request) -> ApiConfig:
    config: ApiConfig = request.app.state.config
    return config


async def _metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


ContextDep = Annotated[ApiContext, Depends(get_context)]
RedisDep = Annotated[Redis, Depends(_redis)]
DbDep = Annotated[Any, Depends(_db)]
RegistryDep = Annotated[JobRegistry, Depends(_registry)]
ConfigDep = Annotated[ApiConfig, Depends(_config)]
MetricsDep = Annotated[ApiMetrics, Depends(_metrics)]
