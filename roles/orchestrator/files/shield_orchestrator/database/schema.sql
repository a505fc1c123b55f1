-- The schema that all migrations together produce (tests/integration/test_migrations.py
-- checks that they stay equal). Read this file to know the tables; change them with a new
-- migration AND here.

CREATE FUNCTION shield_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE status
        WHEN 'queued' THEN 0
        WHEN 'processing' THEN 1
        WHEN 'completed' THEN 2
        WHEN 'completed_with_errors' THEN 2
        WHEN 'failed' THEN 2
    END;

CREATE TABLE schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

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

CREATE TABLE repo_index_state (
    repo           text NOT NULL,
    branch         text NOT NULL,
    indexed_commit text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- 0004: failures, backoff and quarantine (indexing/health.py)
    consecutive_failures integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    next_eligible_at     timestamptz,
    quarantined_at       timestamptz,
    last_error           text,
    last_failure_at      timestamptz,
    PRIMARY KEY (repo, branch)
);

CREATE TABLE repo_files (
    repo     text NOT NULL,
    branch   text NOT NULL,
    path     text NOT NULL,
    blob_sha text NOT NULL,
    job_id   uuid,
    PRIMARY KEY (repo, branch, path)
);

CREATE TABLE repo_index_runs (
    run_id      uuid PRIMARY KEY,
    repo        text NOT NULL,
    branch      text NOT NULL,
    workspace   text NOT NULL,
    base_commit text,
    commit      text NOT NULL,
    status      text NOT NULL DEFAULT 'planned' CHECK (status IN
                ('planned', 'completed', 'completed_with_errors', 'failed')),
    skipped     jsonb NOT NULL DEFAULT '{}'::jsonb,
    unchanged   integer NOT NULL DEFAULT 0,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE INDEX repo_index_runs_repo_idx ON repo_index_runs (repo, branch, created_at);

CREATE TABLE repo_run_files (
    run_id   uuid NOT NULL REFERENCES repo_index_runs (run_id) ON DELETE CASCADE,
    path     text NOT NULL,
    change   text NOT NULL CHECK (change IN ('added', 'modified', 'removed', 'renamed')),
    blob_sha text,
    old_path text,
    old_sha  text,
    job_id   uuid,
    state    text NOT NULL DEFAULT 'pending',
    PRIMARY KEY (run_id, path)
);

CREATE TABLE repo_doc_deletions (
    repo       text NOT NULL,
    branch     text NOT NULL,
    path       text NOT NULL,
    blob_sha   text NOT NULL,
    job_id     uuid,
    run_id     uuid NOT NULL,
    state      text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'deleted')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, branch, path, blob_sha)
);

CREATE TABLE repositories (
    repo_id        uuid PRIMARY KEY,
    url            text NOT NULL,
    branch         text NOT NULL,
    workspace      text NOT NULL,
    include        text[] NOT NULL DEFAULT '{}',
    exclude        text[] NOT NULL DEFAULT '{}',
    max_file_bytes bigint NOT NULL CHECK (max_file_bytes > 0),
    max_files      integer NOT NULL CHECK (max_files > 0),
    credential_ref text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    schedule_s     integer CHECK (schedule_s >= 60),  -- 0004: its Temporal Schedule's period
    -- 0006: the operator's command (indexing/runner.py)
    command           text[] NOT NULL DEFAULT '{}',
    command_timeout_s integer NOT NULL DEFAULT 600
                      CHECK (command_timeout_s BETWEEN 1 AND 86400),
    command_mode      text NOT NULL DEFAULT 'after' CHECK (command_mode IN ('after', 'instead')),
    UNIQUE (url, branch, workspace)
);

CREATE INDEX repositories_created_at_idx ON repositories (created_at, repo_id);

-- 0005: what the operator's command of a run did (indexing/runner.py)
CREATE TABLE repo_run_commands (
    run_id      uuid PRIMARY KEY,
    repo        text NOT NULL,
    branch      text NOT NULL,
    commit      text NOT NULL,
    argv        text[] NOT NULL,
    exit_code   integer,
    timed_out   boolean NOT NULL,
    stdout_tail text NOT NULL,
    stderr_tail text NOT NULL,
    duration_s  double precision NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX repo_run_commands_repo_idx ON repo_run_commands (repo, branch, finished_at);
