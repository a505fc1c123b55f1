"""uvicorn's httptools protocol with bounded headers: size, count and time.

uvicorn bounds headers only for h11 (``h11_max_incomplete_event_size``); with httptools a
request line and headers may grow without end, and a connection that never finishes its
headers is never timed out. :func:`bounded_protocol` returns a subclass that answers

- 431 and closes when the raw bytes before the end of the headers pass ``max_header_bytes``
  (counted as they arrive, so at most one socket read past the limit is ever buffered) or the
  header fields pass ``max_headers``;
- 408 and closes when a connection has not sent complete headers ``header_timeout_s`` after it
  opened or after the first byte of its next request (idle keep-alive connections are closed
  by uvicorn's own ``timeout_keep_alive``).

It also changes what a graceful shutdown (SIGTERM: a rolling restart's old process) does to an
idle keep-alive connection. uvicorn closes it at once, and a request the client is writing on
it at that moment fails ("server disconnected without sending a response"; seen in
tests/acceptance/test_api_processes.py during reloads at 100 requests/s over pooled
connections). Here it is left open: its next request is served and answered with
``Connection: close``, and a connection that stays idle is closed by the keep-alive timeout,
as it would have been without the shutdown (that close races a client's next request as it
always does: HTTP/1.1 clients retry an idempotent request on a reused connection for it).
"""

from __future__ import annotations

import asyncio
from asyncio import TimerHandle
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class TooManyHeadersError(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with the bounds of its class attributes (see bounded_protocol)."""

    max_header_bytes: ClassVar[int] = 16384
    max_headers: ClassVar[int] = 100
    header_timeout_s: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_fields = 0
        self._header_timer: TimerHandle | None = None
        self._shutting_down = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._awaiting_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._refuse(431, f"request headers larger than {self.max_header_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers = True
        self._header_bytes = self._header_fields = 0
        self._arm_header_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_fields += 1
        if self._header_fields > self.max_headers:
            raise TooManyHeadersError  # the parser stops; uvicorn calls send_400_response
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._disarm_header_timer()
        super().on_headers_complete()
        if self._shutting_down and self.cycle is not None:
            self.cycle.keep_alive = False  # answered with Connection: close, then closed

    def shutdown(self) -> None:
        """Graceful shutdown: a busy connection closes after its response (uvicorn); an idle
        one after its next response or its keep-alive timeout (see the module docstring)."""
        self._shutting_down = True
        if not self._between_requests():
            super().shutdown()

    def send_400_response(self, msg: str) -> None:
        if self._header_fields > self.max_headers:
            self._refuse(431, f"more than {self.max_headers} request header fields")
        else:
            super().send_400_response(msg)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and self._between_requests():
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._between_requests() and not self.transport.is_closing():
            self._refuse(408, f"request headers not received within {self.header_timeout_s:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        self._awaiting_headers = False
        self._disarm_header_timer()
        body = detail.encode()
        reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, reason, len(body), body)
        )
        self.transport.close()


def bounded_protocol(
    max_header_bytes: int, max_headers: int, header_timeout_s: float
) -> type[asyncio.Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these header bounds."""
    bounds = {
        "max_header_bytes": max_header_bytes,
        "max_headers": max_headers,
        "header_timeout_s": header_timeout_s,
    }
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), bounds)
