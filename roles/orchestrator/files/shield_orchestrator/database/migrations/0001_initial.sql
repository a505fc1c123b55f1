-- 0001_initial: durable job history (the Redis job hash is the live copy, this the record).
-- jobs.status only moves forward (services/job_status.py); shield_status_rank() orders it
-- so that the write-behind UPDATE can refuse to move a row backwards.

CREATE FUNCTION shield_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE status
        WHEN 'queued' THEN 0
        WHEN 'processing' THEN 1
        WHEN 'completed' THEN 2
        WHEN 'completed_with_errors' THEN 2
        WHEN 'failed' THEN 2
    END;

CREATE TABLE jobs (
    job_id           uuid PRIMARY KEY,
    kind             text NOT NULL DEFAULT 'ingest',
    workspace        text NOT NULL,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (shield_status_rank(status) IS NOT NULL),
    chunks_total     integer NOT NULL CHECK (chunks_total >= 0),
    chunks_processed integer NOT NULL DEFAULT 0 CHECK (chunks_processed >= 0),
    chunks_failed    integer NOT NULL DEFAULT 0 CHECK (chunks_failed >= 0),
    idempotency_key  text UNIQUE,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX jobs_active_idx ON jobs (created_at) WHERE status IN ('queued', 'processing');
CREATE INDEX jobs_created_at_idx ON jobs (created_at);

CREATE TABLE chunk_failures (
    job_id     uuid NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    chunk_id   text NOT NULL,
    attempts   integer NOT NULL CHECK (attempts >= 0),
    error      text NOT NULL,
    stream_id  text NOT NULL,
    failed_at  timestamptz NOT NULL,
    PRIMARY KEY (job_id, chunk_id)
);
