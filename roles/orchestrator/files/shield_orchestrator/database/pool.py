"""The asyncpg connection pool of a process, built from Settings."""

from __future__ import annotations

from typing import Any

import asyncpg

from shield_orchestrator.settings import Settings


def dsn_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection keyword arguments for asyncpg (no secret is put in a URL or a log)."""
    return {
        "host": settings.postgres_host,
        "port": settings.postgres_port,
        "database": settings.postgres_db,
        "user": settings.postgres_user,
        "password": settings.postgres_password,
    }


async def create_pool(
    settings: Settings, *, min_size: int = 1, max_size: int = 4, timeout_s: float = 10.0
) -> Any:
    """An open ``asyncpg.Pool``; the caller closes it (``await pool.close()``)."""
    return await asyncpg.create_pool(
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_s,
        command_timeout=60,
        **dsn_kwargs(settings),
    )
