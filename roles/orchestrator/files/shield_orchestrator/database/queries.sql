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
