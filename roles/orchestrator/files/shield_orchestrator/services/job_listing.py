"""Job listing (GET /jobs): newest first, filtered, keyset-paginated, from PostgreSQL.

A page is the ``list_jobs`` query (database/queries.sql) ordered by ``(created_at, job_id)``
descending. The cursor of the next page is the last row's ``(created_at, job_id)`` plus a
digest of the filters it was made for, base64url-encoded JSON: opaque to clients, checked on
the way back. Because a new job is always newer than every row already listed, paging stays
stable while jobs are created (nothing repeated, nothing skipped). Statuses are PostgreSQL's,
which the write-behind flusher keeps at most a flush interval behind Redis.

Errors: :class:`BadCursor` (a cursor that is not one of ours, or was made for other filters).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from shield_orchestrator.database.queries import query
from shield_orchestrator.errors import ShieldError
from shield_orchestrator.services.job_status import JobView, job_view_from_row


class BadCursor(ShieldError):  # noqa: N818 (named for what it is, like JobNotFound)
    """The cursor is malformed, or belongs to a query with other filters."""


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


def encode_cursor(job: JobView, flt: JobFilter) -> str:
    assert job.created_at is not None  # a PostgreSQL row always has one
    raw = {"c": job.created_at.isoformat(), "j": job.job_id, "f": flt.digest()}
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, flt: JobFilter) -> tuple[dt.datetime, str]:
    """The ``(created_at, job_id)`` a cursor continues after; BadCursor otherwise."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        created = dt.datetime.fromisoformat(raw["c"])
        job_id = str(uuid.UUID(raw["j"]))
        digest = raw["f"]
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise BadCursor("not a cursor of GET /jobs") from exc
    if created.tzinfo is None or digest != flt.digest():
        raise BadCursor("this cursor belongs to a query with other filters")
    return created, job_id


async def list_jobs(
    db: Any, flt: JobFilter, limit: int, cursor: str | None = None
) -> tuple[list[JobView], str | None]:
    """A page of at most ``limit`` jobs and the cursor of the next page (None: no more)."""
    after_created, after_id = decode_cursor(cursor, flt) if cursor else (None, None)
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
    return jobs, encode_cursor(jobs[-1], flt) if more else None
