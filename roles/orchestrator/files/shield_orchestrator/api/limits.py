"""Request body limits, enforced before any parsing (pure ASGI middleware): size and time.

A declared ``Content-Length`` above the limit is answered 413 at once, without reading the body.
A body without one (chunked transfer) or one that lies is counted while it streams: the first
message past the limit raises :class:`BodyTooLarge` (an HTTPException, so FastAPI's body reader
passes it through and the app answers 413). Nothing downstream ever holds more than the limit.

A body must arrive whole within ``timeout_s`` of the request's start: a ``receive`` still
waiting for body bytes at that deadline raises :class:`BodyTimeout` (408, connection closed),
so a slow or stalled upload holds its buffers for a bounded time. Once the body is complete,
``receive`` is left alone (an SSE stream waits on it for the client's disconnect).
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shield_orchestrator.api.errors import send_refusal


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyTimeout(HTTPException):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            408, f"request body not received within {timeout_s:g} s", {"Connection": "close"}
        )


class BodyLimits:
    """Refuse HTTP request bodies larger than ``max_bytes`` (413) or slower than
    ``timeout_s`` (408)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await send_refusal(send, 413, f"request body larger than {self.max_bytes} bytes")
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        received = 0
        complete = False

        async def bounded_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(self.timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, bounded_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
