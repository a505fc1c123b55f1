"""Job status: a ``str`` Enum, the job hash layout, job reads.

State diagram (forward only). The progress Lua in services/job_tracker.py is the only writer
after creation and the only place that decides a transition (exactly one of its calls
observes the terminal one); tests/integration/test_job_status_lua.py holds its table::

    queued ──first chunk outcome──> processing ──last outcome──> completed
                                                             ├──> completed_with_errors
                                                             └──> failed (every chunk failed)

A job whose only chunk fails goes straight from queued to failed (through processing in the
same Lua call: both transitions are recorded and both events emitted).

The job hash ``keys.job(job_id)`` holds the fields of :data:`JOB_FIELDS`, all strings;
timestamps are UNIX epoch seconds with a fraction (``"1700000000.123456"``, from Redis TIME),
empty when not reached yet. ``rev`` is incremented by every progress update (the write-behind
flusher uses it to know whether the hash changed while it was writing PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from redis.asyncio import Redis

from shield_orchestrator import keys
from shield_orchestrator.database.queries import query


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED}
)
# The job hash fields (keys.job). Created by the API (new_job_fields), updated by the Lua.
JOB_FIELDS: tuple[str, ...] = (
    "job_id",
    "kind",
    "workspace",
    "status",
    "chunks_total",
    "chunks_processed",
    "chunks_failed",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "rev",
)


def new_job_fields(
    job_id: str, chunks_total: int, workspace: str, created_at: float, kind: str = "ingest"
) -> dict[str, str]:
    """The job hash of a new job (the API HSETs it in the same MULTI as the chunks)."""
    return {
        "job_id": job_id,
        "kind": kind,
        "workspace": workspace,
        "status": JobStatus.QUEUED.value,
        "chunks_total": str(int(chunks_total)),
        "chunks_processed": "0",
        "chunks_failed": "0",
        "created_at": f"{created_at:.6f}",
        "started_at": "",
        "finished_at": "",
        "updated_at": f"{created_at:.6f}",
        "rev": "0",
    }


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as the API shows it, from Redis or (after the TTL) from PostgreSQL."""

    job_id: str
    status: JobStatus
    workspace: str
    chunks_total: int
    chunks_processed: int
    chunks_failed: int
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime | None
    source: str  # "redis" or "postgres"

    @property
    def percent_complete(self) -> float:
        if self.chunks_total <= 0:
            return 100.0 if self.status.is_terminal else 0.0
        done = self.chunks_processed + self.chunks_failed
        return round(100.0 * done / self.chunks_total, 2)


def epoch_to_datetime(value: str | None) -> dt.datetime | None:
    """A timestamp the Lua scripts write (epoch seconds from Redis TIME, ``"1700000000.123456"``)
    as an aware UTC datetime; None when empty (not reached yet) or not a number.

    The one parser of these strings: the job hash (here), the dead-letter stream's
    ``failed_at`` (job_failures) and the flusher's rows (job_tracker).
    """
    if not value:
        return None
    try:
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None


def job_view_from_hash(h: Mapping[str, str]) -> JobView:
    """Build a JobView from a job hash (HGETALL result, decoded)."""
    return JobView(
        job_id=h["job_id"],
        status=JobStatus(h["status"]),
        workspace=h.get("workspace", ""),
        chunks_total=int(h.get("chunks_total") or 0),
        chunks_processed=int(h.get("chunks_processed") or 0),
        chunks_failed=int(h.get("chunks_failed") or 0),
        created_at=epoch_to_datetime(h.get("created_at")),
        started_at=epoch_to_datetime(h.get("started_at")),
        finished_at=epoch_to_datetime(h.get("finished_at")),
        updated_at=epoch_to_datetime(h.get("updated_at")),
        source="redis",
    )


def job_view_from_row(row: Mapping[str, Any]) -> JobView:
    """Build a JobView from a ``jobs`` row (asyncpg Record or mapping)."""
    return JobView(
        job_id=str(row["job_id"]),
        status=JobStatus(row["status"]),
        workspace=row["workspace"],
        chunks_total=int(row["chunks_total"]),
        chunks_processed=int(row["chunks_processed"]),
        chunks_failed=int(row["chunks_failed"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        updated_at=row["updated_at"],
        source="postgres",
    )


async def fetch_job(redis: Redis, db: Any, job_id: str) -> JobView | None:
    """Read a job: the Redis hash while it lives, else the PostgreSQL row; None when unknown.

    ``db`` is an asyncpg pool (or connection); it is only used when Redis has no copy.
    """
    h = cast(dict[str, str], await redis.hgetall(keys.job(job_id)))
    if h:
        return job_view_from_hash(h)
    try:
        uuid.UUID(job_id)
    except ValueError:  # not a UUID: no such job (and PostgreSQL would refuse the cast)
        return None
    row = await db.fetchrow(query("select_job"), job_id)
    return None if row is None else job_view_from_row(row)
