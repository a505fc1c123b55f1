-- 0004_repo_lifecycle: a repository's failures, backoff and quarantine, and its refresh period
-- (issue 16, indexing/health.py, services/repositories.py).
--   repo_index_state  + consecutive_failures, next_eligible_at, quarantined_at, last_error,
--                     last_failure_at: written by the workflow after each run (a success
--                     resets them); a non-forced run before next_eligible_at, or while
--                     quarantined_at is set, does not run
--   repositories      + schedule_s: the period of its Temporal Schedule (NULL: none)

ALTER TABLE repo_index_state
    ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0
        CHECK (consecutive_failures >= 0),
    ADD COLUMN next_eligible_at timestamptz,
    ADD COLUMN quarantined_at timestamptz,
    ADD COLUMN last_error text,
    ADD COLUMN last_failure_at timestamptz;

ALTER TABLE repositories
    ADD COLUMN schedule_s integer CHECK (schedule_s >= 60);
