-- 0003_repositories: registered repositories (issue 16, services/repositories.py, POST /repos).
-- One row per (url, branch, workspace): registering the same again returns this row. The
-- credential is never stored: credential_ref names an environment variable of the indexers.
-- repo_index_state, repo_files and repo_index_runs key their rows by repo_id::text.

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
    UNIQUE (url, branch, workspace)
);

CREATE INDEX repositories_created_at_idx ON repositories (created_at, repo_id);
