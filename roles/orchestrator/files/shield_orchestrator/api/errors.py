"""Map the package's exceptions to HTTP answers with a clear ``detail`` (never a stack trace).

RequestValidationError      422  one item per field: loc, msg, type (input not echoed)
BadCursor                   422  the same shape, loc ("query", "cursor"): why it is refused
JobNotFound                 404
RepositoryNotFound          404
TemporalUnavailable         503  the reason (indexing only; ingestion does not need Temporal)
QueueFull                   429  Retry-After: config.retry_after_s
IdempotencyConflict         409
NotRetryable                409
RegistryError (other)       409
Redis unreachable           503  "redis unavailable"
PostgreSQL unreachable      503  "postgres unavailable"

:func:`send_refusal` answers from a pure ASGI middleware (401, 413), before the app runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisOutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.types import Send

from shield_orchestrator.api.config import ApiConfig
from shield_orchestrator.api.models import TEXT_PATTERN
from shield_orchestrator.errors import JobNotFound
from shield_orchestrator.services.job_registry import QueueFull, RegistryError
from shield_orchestrator.services.keyset import BadCursor
from shield_orchestrator.services.repositories import RepositoryNotFound, TemporalUnavailable

log = logging.getLogger(__name__)

_PG_DOWN: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    OSError,
)


async def send_refusal(
    send: Send, status: int, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON ``{"detail": ...}`` answer with ``Connection: close``: the request's body is left
    unread, so the connection cannot carry another request."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _detail(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _unreachable(
    store: str, action: str
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """The handler of ``store`` (redis, postgres) unreachable: logged with the path and the
    exception's class (never its text), a 503 with Retry-After 1 s."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        path, name = request.url.path, type(exc).__name__
        log.error("%s unavailable on %s: %s", store, path, name, extra={"action": action})
        return _detail(503, f"{store} unavailable; retry later", {"Retry-After": "1"})

    return handler


def _validation_items(exc: RequestValidationError) -> list[dict[str, Any]]:
    items = []
    for err in exc.errors():
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":
            msg = f"invalid JSON: {err.get('ctx', {}).get('error', msg)}"
        elif err.get("type") == "string_pattern_mismatch" and (
            err.get("ctx", {}).get("pattern") == TEXT_PATTERN
        ):
            msg = "must hold a non-whitespace character and no NUL character"
        items.append({"loc": loc, "msg": msg, "type": str(err.get("type", "value_error"))})
    return items


def install_error_handlers(app: FastAPI, config: ApiConfig) -> None:
    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": _validation_items(exc)}, status_code=422)

    async def bad_cursor(request: Request, exc: Exception) -> JSONResponse:
        item = {"loc": ("query", "cursor"), "msg": str(exc), "type": "value_error"}
        return await validation(request, RequestValidationError([item]))

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return _detail(404, str(exc))

    async def queue_full(_: Request, exc: Exception) -> JSONResponse:
        log.warning("%s", exc, extra={"action": "api_queue_full"})
        return _detail(429, str(exc), {"Retry-After": str(config.retry_after_s)})

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return _detail(409, str(exc))

    async def redis_full(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "redis refused writes on %s: out of memory", request.url.path,
            extra={"action": "api_redis_oom"},
        )  # fmt: skip
        return _detail(503, "redis is out of memory; retry later", {"Retry-After": "5"})

    async def temporal_down(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s", exc, extra={"action": "api_temporal_down"})
        return _detail(503, str(exc), {"Retry-After": "5"})

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(BadCursor, bad_cursor)
    app.add_exception_handler(RepositoryNotFound, not_found)
    app.add_exception_handler(TemporalUnavailable, temporal_down)
    app.add_exception_handler(JobNotFound, not_found)
    app.add_exception_handler(QueueFull, queue_full)
    app.add_exception_handler(RegistryError, conflict)
    redis_down = _unreachable("redis", "api_redis_down")
    app.add_exception_handler(RedisConnectionError, redis_down)
    app.add_exception_handler(RedisTimeoutError, redis_down)
    app.add_exception_handler(RedisOutOfMemoryError, redis_full)
    postgres_down = _unreachable("postgres", "api_postgres_down")
    for exc_type in _PG_DOWN:
        app.add_exception_handler(exc_type, postgres_down)
