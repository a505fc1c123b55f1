"""The API's connection bounds under a real uvicorn server (the service's server_config),
driven by a raw socket client on loopback, against real Redis and PostgreSQL.

What is proved: an unauthenticated POST that declares a 10 MiB body is answered 401 after its
headers and a few body bytes, and the server closes the connection without waiting for the
rest; a body that does not arrive within body_timeout_s is answered 408 and closed; headers
that do not arrive within header_timeout_s, that are too large or too many are refused (408,
431) and closed; an idle keep-alive connection is closed; past limit_concurrency open
connections a request is answered 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.api import API_KEY, api_config, api_settings
from tests.support.servers import LOOPBACK, free_port

pytestmark = pytest.mark.integration

DEADLINE_S = 10.0  # every read below ends by then: the bounds under test are far shorter
TEN_MIB = 10 * 1024 * 1024


@contextlib.asynccontextmanager
async def uvicorn_server(settings: Any, **config: Any) -> AsyncIterator[int]:
    """create_app under uvicorn as the service runs it (server_config); yields the port."""
    import uvicorn
    from shield_orchestrator.api.__main__ import server_config
    from shield_orchestrator.api.app import create_app

    port = free_port()
    server = uvicorn.Server(
        server_config(create_app(settings, api_config(**config)), LOOPBACK, port)
    )
    task = asyncio.create_task(server.serve(), name="uvicorn")
    try:
        async with asyncio.timeout(DEADLINE_S):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def settings(worker_settings: Any, redis_client: Any, pg_pool: Any) -> Any:
    return api_settings(worker_settings)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(LOOPBACK, port)


def post_head(length: int, *extra: str) -> bytes:
    lines = ["POST /lightrag/ingest-async HTTP/1.1", "Host: api.test",
             "Content-Type: application/json", f"Content-Length: {length}", *extra]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def answer_then_close(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """The response (status, headers, body) and proof the server closed: EOF after it."""
    async with asyncio.timeout(DEADLINE_S):
        raw = await reader.read()  # to EOF: returns only once the server closed
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("key_header", [None, f"X-API-Key: {API_KEY}x", "Authorization: Bearer no"])
async def test_a_401_comes_before_the_body_and_closes_the_connection(
    settings: Any, key_header: str | None
) -> None:
    async with uvicorn_server(settings) as port:
        reader, writer = await connect(port)
        extra = [key_header] if key_header else []
        writer.write(post_head(TEN_MIB, *extra) + b'{"chunks"')  # 9 of 10 MiB
        await writer.drain()
        status, headers, body = await answer_then_close(reader)
        writer.close()
    assert status == 401
    assert headers["connection"] == "close"
    assert headers["www-authenticate"].startswith("Bearer")
    assert b"API key" in body


async def test_an_authenticated_request_is_read_and_validated(settings: Any) -> None:
    async with uvicorn_server(settings) as port:
        reader, writer = await connect(port)
        payload = b'{"chunks": [], "source_type": "t"}'
        writer.write(
            post_head(len(payload), f"X-API-Key: {API_KEY}", "Connection: close") + payload
        )
        status, _, body = await answer_then_close(reader)
        writer.close()
    assert status == 422
    assert b'"chunks"' in body


async def test_health_needs_no_key(settings: Any) -> None:
    async with uvicorn_server(settings) as port:
        reader, writer = await connect(port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
        status, _, body = await answer_then_close(reader)
        writer.close()
    assert (status, body) == (200, b'{"status":"ok"}')


FIELDS = "".join(f"X-F{i}: v\r\n" for i in range(21))
BOUNDS = [
    pytest.param(
        {"body_timeout_s": 0.5},
        post_head(1000, f"X-API-Key: {API_KEY}") + b'{"chunks"',
        408, b"request body not received within 0.5 s", id="slow-body",
    ),
    pytest.param(
        {"header_timeout_s": 0.5},
        b"GET /health HTTP/1.1\r\nHost: api.test\r\n",  # no blank line: the headers never end
        408, b"request headers not received within 0.5 s", id="endless-headers",
    ),
    pytest.param(
        {"header_timeout_s": 0.5}, b"",
        408, b"request headers not received within 0.5 s", id="silent-connection",
    ),
    pytest.param(
        {"max_header_bytes": 8192},
        b"GET /health HTTP/1.1\r\nHost: api.test\r\nX-Big: " + b"a" * 65536,
        431, b"request headers larger than 8192 bytes", id="oversized-header",
    ),
    pytest.param(
        {"max_headers": 20},
        f"GET /health HTTP/1.1\r\nHost: api.test\r\n{FIELDS}\r\n".encode(),
        431, b"more than 20 request header fields", id="too-many-header-fields",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("config", "sent", "status", "detail"), BOUNDS)
async def test_a_request_past_a_bound_is_refused_and_closed(
    settings: Any, config: dict[str, Any], sent: bytes, status: int, detail: bytes
) -> None:
    async with uvicorn_server(settings, **config) as port:
        reader, writer = await connect(port)
        writer.write(sent)
        with contextlib.suppress(ConnectionResetError):  # the server may close mid-write
            await writer.drain()
        answered, headers, body = await answer_then_close(reader)
        writer.close()
    assert answered == status
    assert headers["connection"] == "close"
    assert detail in body


async def test_headers_within_the_bounds_are_served(settings: Any) -> None:
    async with uvicorn_server(settings, max_header_bytes=8192, max_headers=20) as port:
        reader, writer = await connect(port)
        fields = "".join(f"X-F{i}: {'v' * 100}\r\n" for i in range(17))
        writer.write(
            f"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n{fields}\r\n".encode()
        )
        status, _, _ = await answer_then_close(reader)
        writer.close()
    assert status == 200


async def test_an_idle_keep_alive_connection_is_closed(settings: Any) -> None:
    async with uvicorn_server(settings, keep_alive_timeout_s=1) as port:
        reader, writer = await connect(port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: api.test\r\n\r\n")  # keep-alive
        status, headers, _ = await answer_then_close(reader)
        writer.close()
    assert status == 200
    assert "connection" not in headers  # it was kept alive, then closed for idleness


async def test_requests_past_the_concurrency_limit_get_503(settings: Any) -> None:
    async with uvicorn_server(settings, limit_concurrency=3) as port:
        idle = [await connect(port) for _ in range(2)]
        reader, writer = await connect(port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
        status, _, _ = await answer_then_close(reader)
        for _, w in idle:
            w.close()
        writer.close()
    assert status == 503
