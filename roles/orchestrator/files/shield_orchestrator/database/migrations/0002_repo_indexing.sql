-- 0002_repo_indexing: repository indexing runs (issue 16, indexing/runs.py). Temporal payloads
-- carry a run id and counts; the plan, the manifest and the indexed commit live here.
--   repo_index_state   one row per (repo, branch): the indexed commit, moved by compare-and-set
--   repo_files         the manifest: each indexed path, its blob sha and the job that ingested it
--   repo_index_runs    one row per run: base and target commit, outcome, counts
--   repo_run_files     one row per changed path of a run, with its ingestion job and state
--   repo_doc_deletions documents to take out of the graph (removed, modified, renamed-away)

CREATE TABLE repo_index_state (
    repo           text NOT NULL,
    branch         text NOT NULL,
    indexed_commit text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
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
