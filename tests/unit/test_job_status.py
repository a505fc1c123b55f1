"""JobStatus: forward-only transitions and the terminal status of a finished job."""

from __future__ import annotations

import itertools

import pytest
from shield_orchestrator.errors import StatusTransitionError
from shield_orchestrator.services.job_status import (
    ACTIVE,
    TERMINAL,
    JobStatus,
    can_transition,
    check_transition,
    final_status,
    job_view_from_hash,
    new_job_fields,
)


def test_forward_transitions_only() -> None:
    s = JobStatus
    allowed = {(s.QUEUED, s.PROCESSING)} | {(a, t) for a in ACTIVE for t in TERMINAL}
    for old, new in itertools.product(s, s):
        if old == new:
            assert can_transition(old, new)
        elif (old, new) in allowed:
            check_transition(old, new)
        else:
            with pytest.raises(StatusTransitionError, match=f"from {old} to {new}"):
                check_transition(old, new)


@pytest.mark.parametrize(
    ("processed", "failed", "status"),
    [(3, 0, "completed"), (2, 1, "completed_with_errors"), (0, 3, "failed"), (0, 0, "completed")],
)
def test_final_status(processed: int, failed: int, status: str) -> None:
    assert final_status(processed, failed) == status


def test_new_job_hash_reads_back() -> None:
    view = job_view_from_hash(new_job_fields("j", 4, "default", 1_700_000_000.5))
    assert view.status is JobStatus.QUEUED
    assert view.chunks_total == 4
    assert view.percent_complete == 0.0
    assert view.started_at is None
    assert view.created_at is not None
    assert view.created_at.timestamp() == 1_700_000_000.5
