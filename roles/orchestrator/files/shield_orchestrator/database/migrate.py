"""Apply the numbered migrations (migrations/NNNN_name.sql) idempotently.

    python -m shield_orchestrator.database.migrate     # the deploy runs this once per release

Each migration runs in its own transaction and is recorded in ``schema_migrations`` with a
checksum; an applied migration whose file changed is an error (write a new one instead).
Concurrent runs (several hosts deploying at once) serialise on a PostgreSQL advisory lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg

from shield_orchestrator.database.pool import dsn_kwargs
from shield_orchestrator.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATION_LOCK_ID = 0x5348_4945_4C44  # pg_advisory_lock key: "SHIELD"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The migrations shipped in the package, in order; numbering must be 1, 2, 3, ..."""
    found: list[Migration] = []
    for entry in resources.files("shield_orchestrator.database.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(
            f"migrations must be numbered 0001, 0002, ... without gaps: {versions}"
        )
    return found


async def migrate(conn: Any) -> list[int]:
    """Apply the missing migrations on an asyncpg connection; returns the versions applied."""
    migrations = load_migrations()
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(_BOOTSTRAP)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {r["version"]: r for r in rows}
        known = {m.version for m in migrations}
        unknown = sorted(set(applied) - known)
        if unknown:
            raise MigrationError(f"database has migrations this code does not know: {unknown}")
        done: list[int] = []
        for m in migrations:
            row = applied.get(m.version)
            if row is not None:
                if row["checksum"] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version:04d}_{m.name} changed after it was applied"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info(
                "applied migration %04d_%s",
                m.version,
                m.name,
                extra={"action": "migration_applied", "version": m.version},
            )
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)


async def _main() -> int:
    from shield_orchestrator.settings import load_settings

    conn = await asyncpg.connect(**dsn_kwargs(load_settings()))
    try:
        done = await migrate(conn)
    finally:
        await conn.close()
    print(f"applied {len(done)} migration(s): {done}" if done else "schema is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main()))
