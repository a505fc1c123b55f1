"""A repository's failures, backoff and quarantine (issue 16), in ``repo_index_state``.

After each run the workflow records its outcome for (repo, branch): a success (the run
published, or the head was already indexed) resets the failures; a failure counts one more
and sets when a run may start again, as :func:`after_failure` decides::

    consecutive failures   1      2       3       4       5 and more
    next run, unless forced  +60 s  +120 s  +240 s  +480 s  quarantined (until forced)

(the delay doubles from :data:`BACKOFF_BASE_S` up to :data:`BACKOFF_MAX_S`, which only forced
runs of a quarantined repository reach). A non-forced run before ``next_eligible_at``, or while
``quarantined_at`` is set, does not start: the API refuses the request (429 with Retry-After,
409 when quarantined, both naming ``force``) and the workflow's check skips it (a scheduled
start). A forced run always runs; only its success lifts the quarantine. The reason of the
last failure is kept (``last_error``): the activity's error message, which never holds a
credential (URLs carry none, git's stderr is classified in mirrors.py), cut to
:data:`MAX_ERROR_CHARS`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from shield_orchestrator.database.queries import query

BACKOFF_BASE_S = 60  # after the first failure
BACKOFF_MAX_S = 3600  # 1 hour: the doubling stops here
QUARANTINE_AFTER = 5  # consecutive failures: no run without force from then on
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Backoff:
    failures: int  # consecutive failures, this one included
    delay_s: int  # until the next non-forced run may start
    quarantined: bool


def after_failure(failures_before: int) -> Backoff:
    """The backoff after one more failure, given the consecutive failures before it."""
    failures = max(failures_before, 0) + 1
    delay = min(BACKOFF_BASE_S * 2 ** min(failures - 1, 16), BACKOFF_MAX_S)
    return Backoff(failures, delay, failures >= QUARANTINE_AFTER)


@dataclass(frozen=True, slots=True)
class Health:
    consecutive_failures: int
    next_eligible_at: dt.datetime | None
    quarantined_at: dt.datetime | None
    last_error: str | None
    last_failure_at: dt.datetime | None
    wait_s: float  # until next_eligible_at, by the database's clock (0: eligible now)

    @property
    def state(self) -> str:
        """``quarantined``, ``backing_off`` or ``ok`` (a non-forced run may start)."""
        if self.quarantined_at is not None:
            return "quarantined"
        return "backing_off" if self.wait_s > 0 else "ok"


HEALTHY = Health(0, None, None, None, None, 0.0)


def refusal(health: Health) -> str | None:
    """Why a non-forced run may not start now (None: it may); the text names ``force``."""
    if health.quarantined_at is not None:
        return (
            f"quarantined after {health.consecutive_failures} consecutive failed runs "
            f"(last error: {health.last_error}); fix the cause, then index with force=true "
            "(shieldctl repos index --force): its success lifts the quarantine"
        )
    if health.wait_s > 0 and health.next_eligible_at is not None:
        return (
            f"backing off after {health.consecutive_failures} consecutive failed run(s) "
            f"(last error: {health.last_error}): the next run may start at "
            f"{health.next_eligible_at.isoformat()} (in {health.wait_s:.0f} s), or now with "
            "force=true"
        )
    return None


def _health(row: Any) -> Health:
    if row is None:
        return HEALTHY
    return Health(
        int(row["consecutive_failures"]), row["next_eligible_at"], row["quarantined_at"],
        row["last_error"], row["last_failure_at"], float(row["wait_s"]),
    )  # fmt: skip


async def read(db: Any, repo: str, branch: str) -> Health:
    return _health(await db.fetchrow(query("select_index_health"), repo, branch))


async def record_failure(db: Any, repo: str, branch: str, error: str) -> Health:
    """One more consecutive failure of (repo, branch), with its reason: the new health."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(query("ensure_index_state"), repo, branch)
        before = await conn.fetchval(query("lock_index_failures"), repo, branch)
        backoff = after_failure(int(before))
        row = await conn.fetchrow(
            query("record_index_failure"), repo, branch, backoff.failures,
            float(backoff.delay_s), backoff.quarantined, error[:MAX_ERROR_CHARS],
        )  # fmt: skip
    return _health(row)


async def record_success(db: Any, repo: str, branch: str) -> None:
    """A run succeeded: failures, next eligible time and quarantine reset (the last error is
    kept as history)."""
    await db.execute(query("reset_index_failures"), repo, branch)
