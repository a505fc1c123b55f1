"""Run the API app in tests: in-process over ASGITransport (lifespan run by hand) or under a
real uvicorn server on a free loopback port (for streaming: SSE).

``python -m tests.support.api`` regenerates docs/openapi.json from the default rendered tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import LOOPBACK, free_port

API_KEY = "test-api-key-0123456789abcdef"
OTHER_KEY = "second-api-key-abcdef0123456789"
HEADERS = {"X-API-Key": API_KEY}
REPO = Path(__file__).resolve().parents[2]
OPENAPI_FILE = REPO / "docs" / "openapi.json"
REGENERATE = "make render && .venv/bin/python -m tests.support.api > docs/openapi.json"


def api_settings(base: Any, **overrides: Any) -> Any:
    """Settings ``base`` (e.g. the worker_settings fixture) with the test API keys."""
    return dataclasses.replace(base, api_keys=(API_KEY, OTHER_KEY), **overrides)


def api_config(**overrides: Any) -> Any:
    from shield_orchestrator.api.config import ApiConfig

    fast = {"sse_block_ms": 100, "sse_ping_s": 1.0}
    return dataclasses.replace(ApiConfig(), **{**fast, **overrides})


@contextlib.asynccontextmanager
async def asgi_client(
    settings: Any, temporal: Any = None, **config: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on create_app(settings) in this loop; the lifespan runs around it.
    ``temporal``: a TemporalTarget for the /repos routes (default: the app's)."""
    from shield_orchestrator.api.app import create_app

    app = create_app(settings, api_config(**config), temporal)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@contextlib.asynccontextmanager
async def served(settings: Any, temporal: Any = None, **config: Any) -> AsyncIterator[str]:
    """create_app(settings) under uvicorn on a free loopback port; yields the base URL."""
    import uvicorn
    from shield_orchestrator.api.app import create_app

    port = free_port()
    app = create_app(settings, api_config(**config), temporal)
    server = uvicorn.Server(
        uvicorn.Config(app, host=LOOPBACK, port=port, log_config=None, access_log=False,
                       timeout_graceful_shutdown=5)
    )  # fmt: skip
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(), name="uvicorn")
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def served_schema() -> dict[str, Any]:
    """The OpenAPI document the app serves (keys only matter to serve, not to describe)."""
    from shield_orchestrator.api.app import create_app
    from shield_orchestrator.settings import Settings

    schema: dict[str, Any] = create_app(Settings(api_keys=(API_KEY,))).openapi()
    return schema


def dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, os.environ.get("SHIELD_RENDERED", str(REPO / "build/rendered/default")))
    sys.stdout.write(dump(served_schema()))
