-- 0005_repo_run_commands: what the operator's command of a run did (issue 16, seed 000's
-- runner: indexing/runner.py, activity run_repo_command). One row per run that ran one, keyed
-- by the workflow's run id (repo_index_runs.run_id for command_mode "after"; "instead" runs
-- have no plan, so no repo_index_runs row). The tails are the last 4 KiB of each stream,
-- redacted (the credential's value and any user:pass@ of a URL) before they are written.

CREATE TABLE repo_run_commands (
    run_id      uuid PRIMARY KEY,
    repo        text NOT NULL,
    branch      text NOT NULL,
    commit      text NOT NULL,
    argv        text[] NOT NULL,
    exit_code   integer,  -- NULL: killed at its timeout
    timed_out   boolean NOT NULL,
    stdout_tail text NOT NULL,
    stderr_tail text NOT NULL,
    duration_s  double precision NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX repo_run_commands_repo_idx ON repo_run_commands (repo, branch, finished_at);
