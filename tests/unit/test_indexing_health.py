"""Per-repository backoff and quarantine (indexing/health.py): the pure decisions."""

from __future__ import annotations

import datetime as dt

import pytest
from shield_orchestrator.indexing.health import (
    BACKOFF_MAX_S,
    HEALTHY,
    QUARANTINE_AFTER,
    Health,
    after_failure,
    refusal,
)


@pytest.mark.parametrize(
    ("before", "failures", "delay_s", "quarantined"),
    [
        (0, 1, 60, False),
        (1, 2, 120, False),
        (2, 3, 240, False),
        (3, 4, 480, False),
        (4, 5, 960, True),  # the fifth consecutive failure quarantines
        (5, 6, 1920, True),
        (6, 7, BACKOFF_MAX_S, True),  # forced runs of a quarantined repository: capped
        (500, 501, BACKOFF_MAX_S, True),
    ],
)
def test_backoff_doubles_from_60_s_to_1_h_and_quarantines_at_5(
    before: int, failures: int, delay_s: int, quarantined: bool
) -> None:
    backoff = after_failure(before)
    assert (backoff.failures, backoff.delay_s, backoff.quarantined) == (
        failures, delay_s, quarantined)  # fmt: skip
    assert QUARANTINE_AFTER == 5


def test_refusal_names_the_time_and_force() -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert refusal(HEALTHY) is None
    assert HEALTHY.state == "ok"
    waiting = Health(2, at, None, "clone_repo: RepoNotFound: gone", at, 90.0)
    text = refusal(waiting)
    assert waiting.state == "backing_off"
    assert text is not None
    assert "2026-01-02T03:04:05+00:00" in text
    assert "force=true" in text
    assert "RepoNotFound: gone" in text
    assert refusal(Health(2, at, None, "x", at, 0.0)) is None  # the time has come
    quarantined = Health(5, at, at, "x", at, 0.0)
    assert quarantined.state == "quarantined"
    assert "force=true" in (refusal(quarantined) or "")
    assert "quarantined after 5" in (refusal(quarantined) or "")
