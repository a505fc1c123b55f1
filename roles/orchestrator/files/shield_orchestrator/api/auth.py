"""API-key authentication: ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.

The keys come from Settings (SHIELD_API_KEYS, the unit's EnvironmentFile). A presented key is
compared with every configured key in constant time (``hmac.compare_digest``, no early exit),
so the response time says nothing about which key or how much of it matched. A key is never
logged.

The key is checked before any work: :class:`ApiKeyGate`, a pure ASGI middleware, answers 401
from the request headers alone, without calling ``receive`` (so not one byte of an
unauthenticated body is read) and closes the connection. FastAPI reads and parses a body
before it resolves dependencies, so a dependency alone would come too late. Every route but
the public ones (``/health``, the OpenAPI pages when enabled) also declares
:func:`require_api_key`, which puts the schemes in the OpenAPI document and checks again.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from shield_orchestrator.api.errors import send_refusal

API_KEY_HEADER = "X-API-Key"
MISSING_KEY = f"missing API key: send {API_KEY_HEADER} or Authorization: Bearer"
INVALID_KEY = "invalid API key"
CHALLENGE = 'Bearer realm="shield-orchestrator"'

_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="ApiKey")
_bearer = HTTPBearer(auto_error=False, scheme_name="Bearer")


class KeyRing:
    """The configured keys, kept as bytes; ``matches`` is constant-time over all of them."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(k.encode() for k in keys)
        if not self._keys:
            raise ValueError("KeyRing needs at least one key")

    def __repr__(self) -> str:
        return f"KeyRing(<{len(self._keys)} keys>)"

    def matches(self, candidate: str) -> bool:
        presented = candidate.encode("utf-8", "surrogateescape")
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(presented, key)
        return found

    def refusal(self, presented: str | None) -> str | None:
        """Why a request presenting ``presented`` is refused (a 401 detail), or None."""
        if not presented:
            return MISSING_KEY
        return None if self.matches(presented) else INVALID_KEY


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key of raw ASGI headers: X-API-Key first, else an ``Authorization: Bearer`` token."""
    api_key = bearer = None
    for name, value in headers:
        if name == b"x-api-key":
            api_key = value.decode("latin-1")
        elif name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            bearer = token.strip() if scheme.lower() == "bearer" else None
    return api_key or bearer


class ApiKeyGate:
    """401 (``Connection: close``) before the app runs, unless the path is public or the
    headers carry a configured key; never calls ``receive`` for a refused request."""

    def __init__(self, app: ASGIApp, key_ring: KeyRing, public_paths: Iterable[str]) -> None:
        self.app = app
        self.key_ring = key_ring
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.public_paths:
            detail = self.key_ring.refusal(presented_key(scope["headers"]))
            if detail is not None:
                await send_refusal(send, 401, detail, [(b"www-authenticate", CHALLENGE.encode())])
                return
        await self.app(scope, receive, send)


async def require_api_key(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """401 unless the request carries a configured key (header or bearer token)."""
    presented = api_key if api_key else (bearer.credentials if bearer is not None else None)
    ring: KeyRing = request.app.state.key_ring
    detail = ring.refusal(presented)
    if detail is not None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": CHALLENGE}
        )
