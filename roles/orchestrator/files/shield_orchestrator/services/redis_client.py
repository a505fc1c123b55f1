"""The Redis connection of a process, built from Settings (strings in, strings out)."""

from __future__ import annotations

from redis.asyncio import Redis

from shield_orchestrator.settings import Settings


def create_redis(settings: Settings, *, max_connections: int = 32) -> Redis:
    """A connection-pooled asyncio client; responses are decoded to ``str``.

    The caller owns it: ``await client.aclose()`` when done. No connection is opened here.
    """
    return Redis(
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
