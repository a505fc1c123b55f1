"""The asyncpg connection pool of a process, built from Settings.

No reset round trip per release. asyncpg's default ``Pool.release`` runs
``Connection.reset()``: ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``,
one more round trip to PostgreSQL after every query made through the pool. Nothing in this
app leaves session state on a pooled connection (no ``SET``, ``LISTEN``, advisory lock or
cursor outside a transaction: the migration lock takes its own connection, database/migrate.py),
so the pool is given :func:`keep_session` as its ``reset`` (asyncpg >= 0.30,
``create_pool(reset=...)``). asyncpg still runs its own part of a release before that
function: callbacks removed and, only if a transaction was left open, a ROLLBACK.
tests/integration/test_api_processes_pool.py counts the round trips.

TLS: with ``settings.postgres_tls`` every connection (pool, migrations) negotiates TLS with an
``ssl.SSLContext`` (settings.tls_client_context) that verifies the chain against
``settings.tls_ca_file`` and the host name (libpq's ``sslmode=verify-full``); asyncpg then
never falls back to plaintext.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from shield_orchestrator.settings import Settings, tls_client_context


def dsn_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection keyword arguments for asyncpg (no secret is put in a URL or a log)."""
    kwargs: dict[str, Any] = {
        "host": settings.postgres_host,
        "port": settings.postgres_port,
        "database": settings.postgres_db,
        "user": settings.postgres_user,
        "password": settings.postgres_password,
    }
    if settings.postgres_tls:
        kwargs["ssl"] = tls_client_context(settings.tls_ca_file)
    return kwargs


async def keep_session(conn: Any) -> None:
    """The pool's ``reset``: nothing to undo (see the module docstring), no round trip."""


async def create_pool(
    settings: Settings, *, min_size: int = 1, max_size: int = 4, timeout_s: float = 10.0
) -> Any:
    """An open ``asyncpg.Pool``; the caller closes it (``await pool.close()``)."""
    return await asyncpg.create_pool(
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_s,
        command_timeout=60,
        reset=keep_session,
        **dsn_kwargs(settings),
    )
