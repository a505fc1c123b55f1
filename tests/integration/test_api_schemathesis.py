"""Schemathesis against the served OpenAPI document, on real Redis and PostgreSQL.

Every operation gets a bounded number of generated requests, valid ones and invalid ones, sent
with a valid API key through the app's ASGI interface (schemathesis runs the lifespan). Each
answer must not be a server error and must conform to the schema: a declared status code,
content type, headers and body. /events/stream is read for a moment, then cut (it never ends).
POST /lightrag/query is answered by a query loop per workspace (services/query_server.py, the
noop engine) in a thread of its own, as a worker process would (without one: 504).
(schemathesis.pytest.from_fixture does not run on pytest 9, so the operations are driven with
hypothesis directly, one test per operation and generation mode.)
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks as st_checks
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi import checks as oas_checks

from tests.support.api import HEADERS, OPENAPI_FILE, api_config, api_settings

pytestmark = pytest.mark.integration

MAX_EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}
CHECKS = [
    st_checks.not_a_server_error,
    oas_checks.status_code_conformance,
    oas_checks.content_type_conformance,
    oas_checks.response_headers_conformance,
    oas_checks.response_schema_conformance,
]
STREAMING = "/events/stream"  # each example holds the stream open for the request timeout
CASES = [
    pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode}")
    for path, ops in json.loads(OPENAPI_FILE.read_text())["paths"].items()
    for method, op in ops.items()
    for mode in MAX_EXAMPLES
    # an operation without parameters, body or security has no invalid request to generate
    if mode is GenerationMode.POSITIVE
    or op.get("parameters")
    or op.get("requestBody")
    or op.get("security")
]


@pytest.fixture
def query_worker(worker_settings: Any) -> Iterator[None]:
    """serve_queries for every workspace, noop engine, in its own thread and event loop."""
    from shield_orchestrator.api.models import WORKSPACES
    from shield_orchestrator.engines.noop import NoopEngine
    from shield_orchestrator.services.query_server import serve_queries
    from shield_orchestrator.services.redis_client import create_redis

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        redis = create_redis(worker_settings)
        engine = NoopEngine()
        try:
            await asyncio.gather(*(serve_queries(redis, ws, "schemathesis:1", engine.query, stop,
                                                 block_ms=100) for ws in WORKSPACES))  # fmt: skip
        finally:
            await redis.aclose()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    yield
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    loop.close()


@pytest.fixture
def api_schema(
    worker_settings: Any, redis_client: Any, pg_pool: Any, query_worker: None
) -> Iterator[Any]:
    from schemathesis.python import asgi
    from shield_orchestrator.api.app import create_app

    # the schema served whatever orchestrator_api_docs_enabled says (the alt tree turns it off)
    app = create_app(api_settings(worker_settings), api_config(docs_enabled=True))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    asgi.shutdown_lifespans()  # closes this app's Redis client and PostgreSQL pool


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_server_error_and_no_schema_violation(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=5 if path == STREAMING else MAX_EXAMPLES[mode],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        timeout = 0.3 if path == STREAMING else 30
        case.call_and_validate(headers=HEADERS, checks=CHECKS, timeout=timeout)

    run()
