-- Named queries (database/queries.py). Parameters are positional ($1, ...), arrays for batches.

-- name: insert_job
-- The API: one row per job, before the job is put on the stream.
INSERT INTO jobs (job_id, kind, workspace, status, chunks_total, idempotency_key, metadata,
                  created_at, updated_at)
VALUES ($1::uuid, $2, $3, 'queued', $4, $5, $6::jsonb, $7, $7)
ON CONFLICT (job_id) DO NOTHING

-- name: delete_job
-- The API: undo insert_job when putting the job on the stream failed (all or nothing).
DELETE FROM jobs WHERE job_id = $1::uuid

-- name: select_job_by_idempotency_key
-- The API: the job an Idempotency-Key made, once its Redis copy has expired.
SELECT job_id, chunks_total, metadata FROM jobs WHERE idempotency_key = $1

-- name: select_job
SELECT job_id, kind, workspace, status, chunks_total, chunks_processed, chunks_failed,
       idempotency_key, created_at, started_at, finished_at, updated_at
FROM jobs WHERE job_id = $1::uuid

-- name: flush_jobs
-- The write-behind flusher: every dirty job in one statement, ids sorted by the caller (a
-- fixed lock order, so concurrent flushes cannot deadlock). Counters and status never move
-- backwards, whatever order two flushers commit in.
UPDATE jobs AS j SET
    status = CASE WHEN shield_status_rank(u.status) > shield_status_rank(j.status)
                  THEN u.status ELSE j.status END,
    chunks_processed = GREATEST(j.chunks_processed, u.processed),
    chunks_failed = GREATEST(j.chunks_failed, u.failed),
    started_at = COALESCE(j.started_at, u.started_at),
    finished_at = COALESCE(j.finished_at, u.finished_at),
    updated_at = GREATEST(j.updated_at, u.updated_at)
FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::integer[],
            $5::timestamptz[], $6::timestamptz[], $7::timestamptz[])
     AS u (job_id, status, processed, failed, started_at, finished_at, updated_at)
WHERE j.job_id = u.job_id

-- name: insert_failures
-- Dead-lettered chunks of known jobs (unknown job ids are dropped by the join).
INSERT INTO chunk_failures (job_id, chunk_id, attempts, error, stream_id, failed_at)
SELECT u.job_id, u.chunk_id, u.attempts, u.error, u.stream_id, u.failed_at
FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::timestamptz[])
     AS u (job_id, chunk_id, attempts, error, stream_id, failed_at)
JOIN jobs USING (job_id)
ORDER BY u.job_id, u.chunk_id
ON CONFLICT (job_id, chunk_id) DO NOTHING

-- name: select_failures
SELECT chunk_id, attempts, error, stream_id, failed_at
FROM chunk_failures WHERE job_id = $1::uuid ORDER BY chunk_id

-- name: list_jobs
-- GET /jobs: newest first, keyset pagination on (created_at, job_id) (services/job_listing.py).
-- $1 status, $2 kind, $3 workspace, $4 created since: NULL matches every row. $5, $6: the
-- last row of the previous page (NULL: the first page). $7: rows to return. A job created
-- while a client pages is newer than every cursor, so it never shifts a later page.
SELECT job_id, kind, workspace, status, chunks_total, chunks_processed, chunks_failed,
       idempotency_key, created_at, started_at, finished_at, updated_at
FROM jobs
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR kind = $2)
  AND ($3::text IS NULL OR workspace = $3)
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR (created_at, job_id) < ($5, $6::uuid))
ORDER BY created_at DESC, job_id DESC
LIMIT $7

-- --- repository indexing (indexing/runs.py, migration 0002) ---------------------------------

-- name: select_indexed_commit
SELECT indexed_commit FROM repo_index_state WHERE repo = $1 AND branch = $2

-- name: ensure_index_state
INSERT INTO repo_index_state (repo, branch) VALUES ($1, $2) ON CONFLICT DO NOTHING

-- name: advance_indexed_commit
-- Compare-and-set: moves only from the commit the run planned against ($3, NULL = never
-- indexed), so a stale run cannot publish itself.
UPDATE repo_index_state SET indexed_commit = $4, updated_at = now()
WHERE repo = $1 AND branch = $2 AND indexed_commit IS NOT DISTINCT FROM $3
RETURNING indexed_commit

-- name: select_manifest
SELECT path, blob_sha FROM repo_files WHERE repo = $1 AND branch = $2

-- name: insert_index_run
-- Idempotent: the workflow makes the run id, so a retried plan activity finds its row.
INSERT INTO repo_index_runs (run_id, repo, branch, workspace, base_commit, commit, skipped,
                             unchanged)
VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::jsonb, $8)
ON CONFLICT (run_id) DO NOTHING
RETURNING run_id

-- name: insert_run_files
INSERT INTO repo_run_files (run_id, path, change, blob_sha, old_path, old_sha)
SELECT $1::uuid, u.path, u.change, u.blob_sha, u.old_path, u.old_sha
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     AS u (path, change, blob_sha, old_path, old_sha)

-- name: select_index_run
SELECT run_id, repo, branch, workspace, base_commit, commit, status, skipped, unchanged
FROM repo_index_runs WHERE run_id = $1::uuid

-- name: select_run_files
SELECT path, change, blob_sha, old_path, old_sha, job_id, state
FROM repo_run_files WHERE run_id = $1::uuid ORDER BY path

-- name: set_run_file_job
UPDATE repo_run_files SET job_id = $3::uuid, state = $4 WHERE run_id = $1::uuid AND path = $2

-- name: set_run_file_state
UPDATE repo_run_files SET state = $3 WHERE run_id = $1::uuid AND path = $2

-- name: insert_doc_deletions
-- The documents a run replaces or drops: (path, blob sha) of the manifest before the run,
-- with the job that ingested them. A row deleted before (the same content came back and
-- goes again) is pending again, with the job of its new documents.
INSERT INTO repo_doc_deletions (repo, branch, path, blob_sha, job_id, run_id)
SELECT r.repo, r.branch, m.path, m.blob_sha, m.job_id, r.run_id
FROM repo_index_runs AS r
JOIN repo_run_files AS f ON f.run_id = r.run_id AND f.change IN ('modified', 'removed', 'renamed')
JOIN repo_files AS m ON m.repo = r.repo AND m.branch = r.branch
                    AND m.path = COALESCE(f.old_path, f.path)
WHERE r.run_id = $1::uuid
ON CONFLICT (repo, branch, path, blob_sha) DO UPDATE
    SET job_id = EXCLUDED.job_id, run_id = EXCLUDED.run_id, state = 'pending',
        created_at = now()
    WHERE repo_doc_deletions.state = 'deleted'
RETURNING path

-- name: select_pending_deletions
-- What is still to take out of the graph for (repo, branch), this run's and earlier runs'
-- leftovers, with the chunk count of the job that ingested each (its documents).
SELECT d.path, d.blob_sha, d.job_id, COALESCE(j.chunks_total, 0) AS chunks_total
FROM repo_doc_deletions AS d LEFT JOIN jobs AS j ON j.job_id = d.job_id
WHERE d.repo = $1 AND d.branch = $2 AND d.state = 'pending'
ORDER BY d.path, d.blob_sha

-- name: mark_deletions_done
UPDATE repo_doc_deletions AS d SET state = 'deleted'
FROM unnest($3::text[], $4::text[]) AS u (path, blob_sha)
WHERE d.repo = $1 AND d.branch = $2 AND d.path = u.path AND d.blob_sha = u.blob_sha

-- name: delete_manifest_paths
DELETE FROM repo_files WHERE repo = $1 AND branch = $2 AND path = ANY($3::text[])

-- name: upsert_manifest
INSERT INTO repo_files (repo, branch, path, blob_sha, job_id)
SELECT $1, $2, u.path, u.blob_sha, u.job_id
FROM unnest($3::text[], $4::text[], $5::uuid[]) AS u (path, blob_sha, job_id)
ON CONFLICT (repo, branch, path) DO UPDATE SET blob_sha = EXCLUDED.blob_sha,
                                               job_id = EXCLUDED.job_id

-- name: finish_index_run
UPDATE repo_index_runs SET status = $2, error = $3, finished_at = now()
WHERE run_id = $1::uuid AND status = 'planned'

-- --- failures, backoff and quarantine (indexing/health.py, migration 0004) -----------------

-- name: select_index_health
SELECT consecutive_failures, next_eligible_at, quarantined_at, last_error, last_failure_at,
       greatest(coalesce(extract(epoch FROM next_eligible_at - now()), 0), 0) AS wait_s
FROM repo_index_state WHERE repo = $1 AND branch = $2

-- name: lock_index_failures
SELECT consecutive_failures FROM repo_index_state WHERE repo = $1 AND branch = $2 FOR UPDATE

-- name: record_index_failure
-- $3 failures (this one included), $4 delay in seconds, $5 quarantined, $6 the reason.
UPDATE repo_index_state
SET consecutive_failures = $3,
    next_eligible_at = now() + make_interval(secs => $4),
    quarantined_at = CASE WHEN $5 THEN coalesce(quarantined_at, now()) END,
    last_error = $6,
    last_failure_at = now()
WHERE repo = $1 AND branch = $2
RETURNING consecutive_failures, next_eligible_at, quarantined_at, last_error, last_failure_at,
          greatest(extract(epoch FROM next_eligible_at - now()), 0) AS wait_s

-- name: reset_index_failures
UPDATE repo_index_state
SET consecutive_failures = 0, next_eligible_at = NULL, quarantined_at = NULL
WHERE repo = $1 AND branch = $2

-- --- registered repositories (services/repositories.py, migrations 0003, 0004, 0006) ---

-- name: insert_repository
INSERT INTO repositories (repo_id, url, branch, workspace, include, exclude, max_file_bytes,
                          max_files, credential_ref, schedule_s, command, command_timeout_s,
                          command_mode)
VALUES ($1::uuid, $2, $3, $4, $5::text[], $6::text[], $7, $8, $9, $10, $11::text[], $12, $13)
ON CONFLICT (url, branch, workspace) DO NOTHING
RETURNING repo_id, url, branch, workspace, include, exclude, max_file_bytes, max_files,
          credential_ref, schedule_s, created_at, command, command_timeout_s, command_mode

-- name: select_repository_by_key
SELECT repo_id, url, branch, workspace, include, exclude, max_file_bytes, max_files,
       credential_ref, schedule_s, created_at, command, command_timeout_s, command_mode
FROM repositories WHERE url = $1 AND branch = $2 AND workspace = $3

-- name: update_repository_options
-- POST /repos again: the options given ($2.., NULL: not given) replace the stored ones.
UPDATE repositories
SET max_file_bytes = coalesce($2, max_file_bytes),
    max_files = coalesce($3, max_files),
    schedule_s = coalesce($4, schedule_s),
    command = coalesce($5::text[], command),
    command_timeout_s = coalesce($6, command_timeout_s),
    command_mode = coalesce($7, command_mode)
WHERE repo_id = $1::uuid
RETURNING repo_id, url, branch, workspace, include, exclude, max_file_bytes, max_files,
          credential_ref, schedule_s, created_at, command, command_timeout_s, command_mode

-- name: select_repository
SELECT repo_id, url, branch, workspace, include, exclude, max_file_bytes, max_files,
       credential_ref, schedule_s, created_at, command, command_timeout_s, command_mode
FROM repositories WHERE repo_id = $1::uuid

-- name: list_repositories
-- Keyset pages: $1 workspace filter (NULL: all), $2/$3 the last row of the previous page.
SELECT repo_id, url, branch, workspace, include, exclude, max_file_bytes, max_files,
       credential_ref, schedule_s, created_at, command, command_timeout_s, command_mode
FROM repositories
WHERE ($1::text IS NULL OR workspace = $1)
  AND ($2::timestamptz IS NULL OR (created_at, repo_id) > ($2, $3::uuid))
ORDER BY created_at, repo_id
LIMIT $4

-- name: delete_repository
DELETE FROM repositories WHERE repo_id = $1::uuid RETURNING repo_id

-- name: forget_repository_index
-- After DELETE /repos/{id} sent its documents' deletion job: the indexer's rows of the branch.
WITH runs AS (DELETE FROM repo_index_runs WHERE repo = $1 AND branch = $2),
     files AS (DELETE FROM repo_files WHERE repo = $1 AND branch = $2),
     deletions AS (DELETE FROM repo_doc_deletions WHERE repo = $1 AND branch = $2)
DELETE FROM repo_index_state WHERE repo = $1 AND branch = $2

-- name: select_repository_state
SELECT s.indexed_commit, s.updated_at,
       (SELECT count(*) FROM repo_files f WHERE f.repo = s.repo AND f.branch = s.branch)
         AS indexed_files
FROM repo_index_state s WHERE s.repo = $1 AND s.branch = $2

-- name: select_last_run
SELECT run_id, status, base_commit, commit, error, created_at, finished_at, unchanged, skipped,
       (SELECT count(*) FROM repo_index_runs r2 WHERE r2.repo = $1 AND r2.branch = $2) AS runs
FROM repo_index_runs WHERE repo = $1 AND branch = $2
ORDER BY created_at DESC, run_id DESC LIMIT 1

-- name: select_last_run_error
SELECT error, finished_at FROM repo_index_runs
WHERE repo = $1 AND branch = $2 AND error IS NOT NULL
ORDER BY created_at DESC LIMIT 1

-- name: count_run_files
-- The changed files of one run by change and by state.
SELECT 'change' AS kind, change AS name, count(*) AS n FROM repo_run_files
WHERE run_id = $1::uuid GROUP BY change
UNION ALL
SELECT 'state', state, count(*) FROM repo_run_files WHERE run_id = $1::uuid GROUP BY state

-- name: select_repository_documents
-- Every document of (repo, branch) in the graph: the manifest's files and the pending
-- deletions, with the chunk count of the job that ingested each (its documents).
SELECT f.path, f.blob_sha, f.job_id, COALESCE(j.chunks_total, 0) AS chunks_total
FROM repo_files AS f LEFT JOIN jobs AS j ON j.job_id = f.job_id
WHERE f.repo = $1 AND f.branch = $2
UNION
SELECT d.path, d.blob_sha, d.job_id, COALESCE(j.chunks_total, 0)
FROM repo_doc_deletions AS d LEFT JOIN jobs AS j ON j.job_id = d.job_id
WHERE d.repo = $1 AND d.branch = $2 AND d.state = 'pending'
ORDER BY 1, 2
