"""Job listing (GET /jobs): newest first, filtered, keyset-paginated, from PostgreSQL.

A page is the ``list_jobs`` query (database/queries.sql) ordered by ``(created_at, job_id)``
descending. The cursor of the next page is the last row's ``(created_at, job_id)`` plus a
digest of the filters it was made for (services/keyset.py): opaque to clients, checked on the
way back. Because a new job is always newer than every row already listed, paging stays
stable while jobs are created (nothing repeated, nothing skipped). Statuses are PostgreSQL's,
which the write-behind flusher keeps at most a flush interval behind Redis.

Errors: :class:`~shield_orchestrator.services.keyset.BadCursor` (a cursor that is not one of
ours, or was made for other filters).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from shield_orchestrator.database.queries import query
from shield_orchestrator.services.job_status import JobView, job_view_from_row
from shield_orchestrator.services.keyset import CursorFormat

_CURSOR = CursorFormat("GET /jobs", "j", "f", "this cursor belongs to a query with other filters")


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What to list; None matches every job."""

    status: str | None = None
    kind: str | None = None
    workspace: str | None = None
    created_since: dt.datetime | None = None

    def digest(self) -> str:
        fields = {
            k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in asdict(self).items()
        }
        raw = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


async def list_jobs(
    db: Any, flt: JobFilter, limit: int, cursor: str | None = None
) -> tuple[list[JobView], str | None]:
    """A page of at most ``limit`` jobs and the cursor of the next page (None: no more)."""
    after_created, after_id = _CURSOR.decode(cursor, flt.digest()) if cursor else (None, None)
    rows = await db.fetch(
        query("list_jobs"),
        flt.status,
        flt.kind,
        flt.workspace,
        flt.created_since,
        after_created,
        after_id,
        limit + 1,
    )
    jobs = [job_view_from_row(r) for r in rows[:limit]]
    more = len(rows) > limit
    if not more:
        return jobs, None
    last = jobs[-1]
    assert last.created_at is not None  # a PostgreSQL row always has one
    return jobs, _CURSOR.encode(last.created_at, last.job_id, flt.digest())
