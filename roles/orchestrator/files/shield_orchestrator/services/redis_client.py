"""The Redis connection of a process, built from Settings (strings in, strings out).

With ``settings.redis_tls`` the client speaks TLS (TLS 1.2 or later) and verifies the
server: its certificate must chain to ``settings.tls_ca_file`` (the deployment's CA) and name
the host the client dialled (``redis_host``); a failure is a ConnectionError, never a
fallback to plaintext.
"""

from __future__ import annotations

import ssl
from typing import Any

from redis.asyncio import Redis

from shield_orchestrator.settings import Settings


def create_redis(settings: Settings, *, max_connections: int = 32) -> Redis:
    """A connection-pooled asyncio client; responses are decoded to ``str``.

    The caller owns it: ``await client.aclose()`` when done. No connection is opened here.
    """
    return Redis(
        **tls_kwargs(settings),
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        username=settings.redis_username,
        password=settings.redis_password,
        decode_responses=True,
        max_connections=max_connections,
        health_check_interval=30,
        socket_connect_timeout=5,
        socket_keepalive=True,
        client_name="shield-orchestrator",
    )


def tls_kwargs(settings: Settings) -> dict[str, Any]:
    """redis-py's TLS arguments: verify the certificate chain and the host name, or nothing."""
    if not settings.redis_tls:
        return {}
    return {
        "ssl": True,
        "ssl_ca_certs": settings.tls_ca_file,
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_min_version": ssl.TLSVersion.TLSv1_2,
    }
