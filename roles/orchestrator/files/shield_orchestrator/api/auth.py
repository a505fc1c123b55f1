"""API-key authentication: ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``.

The keys come from Settings (SHIELD_API_KEYS, the unit's EnvironmentFile). A presented key is
compared with every configured key in constant time (``hmac.compare_digest``, no early exit),
so the response time says nothing about which key or how much of it matched. A key is never
logged. Every route but ``/health`` depends on :func:`require_api_key` (see deps.py).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

API_KEY_HEADER = "X-API-Key"

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


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": 'Bearer realm="shield-orchestrator"'},
    )


async def require_api_key(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """401 unless the request carries a configured key (header or bearer token)."""
    presented = api_key if api_key else (bearer.credentials if bearer is not None else None)
    if not presented:
        raise _unauthorized(f"missing API key: send {API_KEY_HEADER} or Authorization: Bearer")
    ring: KeyRing = request.app.state.key_ring
    if not ring.matches(presented):
        raise _unauthorized("invalid API key")
