-- 0006_repo_commands: a registration's operator-supplied command (issue 16, seed 000's runner:
-- indexing/runner.py). POST /repos command (argv, [] none), command_timeout_s, command_mode
-- (after the built-in steps | instead of them), given to the workflow in RepoSpec.

ALTER TABLE repositories
    ADD COLUMN command text[] NOT NULL DEFAULT '{}',
    ADD COLUMN command_timeout_s integer NOT NULL DEFAULT 600
        CHECK (command_timeout_s BETWEEN 1 AND 86400),
    ADD COLUMN command_mode text NOT NULL DEFAULT 'after'
        CHECK (command_mode IN ('after', 'instead'));
