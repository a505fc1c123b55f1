"""Fault 7 (issue 9): a rolling restart of both worker hosts during an ingestion loses nothing.

A job is submitted through the API on worker1; while it is being processed, every worker
instance is restarted host by host (``systemctl restart`` = SIGTERM: the pool finishes its
in-flight chunks, leaves the rest pending, and the new process rereads its own pending
entries), the next host only once the previous one's units are active again, as
playbooks/rolling_restart.yml does. Afterwards the job is completed with every chunk counted
once, nothing is pending in the consumer group and nothing was dead-lettered.
"""

from __future__ import annotations

import time

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")
CHUNKS = 150
DEAD_LETTER = "shield:dead_letter"  # the role's default dead-letter stream (ARCHITECTURE.md)


def _submit(h, key: str) -> str:
    body = {
        "chunks": [
            {
                "text": f"Rolling restart chunk {i}: Harbor meets Granite near Meridian {i}.",
                "source_uri": f"molecule://rolling/{time.time_ns()}/{i}",
            }
            for i in range(CHUNKS)
        ]
    }
    status, answer = tc.http(h, "POST", "/lightrag/ingest-async", key, body)
    if status != 202:
        tc.fail_with_journal(h, tc.API_UNIT, f"POST /lightrag/ingest-async answered {status}")
    return str(answer["job_id"])


def _restart_host(name: str) -> int:
    """Restart every worker instance of one host; wait until all are active; return how many."""
    worker = tc.host(name)
    units = tc.worker_instances(worker)
    assert units, f"{name}: no {tc.WORKER_UNIT}N unit loaded"
    for unit in units:
        worker.check_output(f"systemctl restart {unit}")
    for unit in units:
        tc.wait_active(worker, unit, timeout_s=120)
    return len(units)


def test_rolling_restart_during_ingestion_loses_nothing(host):
    env = tc.environment_file(host)
    key = tc.api_key(env)
    job_id = _submit(host, key)
    restarted = sum(_restart_host(w) for w in tc.hosts_in("orchestrator_workers"))
    assert restarted >= 2

    deadline = time.monotonic() + 600
    job: dict = {}
    while time.monotonic() < deadline:
        status, job = tc.http(host, "GET", f"/jobs/{job_id}", key)
        if status == 200 and job.get("status") in ("completed", "completed_with_errors", "failed"):
            break
        time.sleep(2)
    if job.get("status") != "completed":
        tc.fail_with_journal(host, f"{tc.WORKER_UNIT}1", f"job {job_id} after restarts: {job}")
    assert (job["chunks_total"], job["chunks_processed"], job["chunks_failed"]) == (
        CHUNKS, CHUNKS, 0)  # fmt: skip

    data = tc.host(tc.hosts_in("redis")[0])
    password = env["SHIELD_REDIS_PASSWORD"]
    summary = tc.redis_cli(data, password, "XPENDING", tc.STREAM, tc.GROUP).splitlines()
    assert summary, "XPENDING answered nothing"
    assert summary[0].strip() == "0", f"entries left pending: {summary}"
    letters = tc.redis_cli(data, password, "XRANGE", DEAD_LETTER, "-", "+").split()
    assert job_id not in letters, "a chunk of the job was dead-lettered during the restarts"
