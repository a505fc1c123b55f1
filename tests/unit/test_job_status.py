"""The job hash layout read back as a JobView (the status machine itself is the progress
Lua's: tests/integration/test_job_status_lua.py)."""

from __future__ import annotations

from shield_orchestrator.services.job_status import JobStatus, job_view_from_hash, new_job_fields


def test_new_job_hash_reads_back() -> None:
    view = job_view_from_hash(new_job_fields("j", 4, "default", 1_700_000_000.5))
    assert view.status is JobStatus.QUEUED
    assert view.chunks_total == 4
    assert view.percent_complete == 0.0
    assert view.started_at is None
    assert view.created_at is not None
    assert view.created_at.timestamp() == 1_700_000_000.5
