"""Fault 7 (issue 9): a rolling restart of both worker hosts during an ingestion loses nothing.

The scenario's side effect (molecule/cluster/side_effect.yml) submitted a job through the API,
waited until the pool was processing it, and ran playbooks/rolling_restart.yml: every worker
host in turn drained (SIGTERM: in-flight chunks finished, the rest left pending), started and
consuming again before the next. It left ``<job id> <chunks>`` in ``JOB_FILE`` on the API host.
Here: the job completes with every chunk counted once, nothing is left pending in the consumer
group, nothing of the job was dead-lettered, and every worker instance was really restarted.
"""

from __future__ import annotations

import shlex
import time

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")
JOB_FILE = "/var/tmp/shield-rolling-restart-job"
DEAD_LETTER = "shield:dead_letter"  # the role's default dead-letter stream (ARCHITECTURE.md)
TERMINAL = ("completed", "completed_with_errors", "failed")


def _wait_for(h, key: str, job_id: str, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    job: dict = {}
    while time.monotonic() < deadline:
        status, job = tc.http(h, "GET", f"/jobs/{job_id}", key)
        if status == 200 and job.get("status") in TERMINAL:
            return job
        time.sleep(2)
    tc.fail_with_journal(h, f"{tc.WORKER_UNIT}1", f"job {job_id} unfinished after restarts: {job}")
    return job


def test_rolling_restart_during_ingestion_loses_nothing(host):
    job_file = host.file(JOB_FILE)
    assert job_file.exists, f"{JOB_FILE} missing: the side effect (rolling restart) did not run"
    job_id, chunks = job_file.content_string.split()
    env = tc.environment_file(host)
    job = _wait_for(host, tc.api_key(env), job_id)
    if job.get("status") != "completed":
        tc.fail_with_journal(host, f"{tc.WORKER_UNIT}1", f"job {job_id} after restarts: {job}")
    counts = (job["chunks_total"], job["chunks_processed"], job["chunks_failed"])
    assert counts == (int(chunks), int(chunks), 0)

    data = tc.host(tc.hosts_in("redis")[0])
    summary = tc.redis_cli(data, env, "XPENDING", tc.STREAM, tc.GROUP).splitlines()
    assert summary, "XPENDING answered nothing"
    assert summary[0].strip() == "0", f"entries left pending: {summary}"
    letters = tc.redis_cli(data, env, "XRANGE", DEAD_LETTER, "-", "+").split()
    assert job_id not in letters, "a chunk of the job was dead-lettered during the restarts"


def test_every_worker_instance_was_restarted():
    """The side effect's restart really happened: each instance started after the job file."""
    written = int(tc.host(testinfra_hosts[0]).check_output(f"stat -c %Y {JOB_FILE}"))
    for name in tc.hosts_in("orchestrator_workers"):
        worker = tc.host(name)
        units = tc.worker_instances(worker)
        assert units, f"{name}: no {tc.WORKER_UNIT}N unit loaded"
        for unit in units:
            props = tc.unit_properties(worker, unit, ["ActiveEnterTimestamp"])
            started = worker.check_output(
                f"date -d {shlex.quote(props['ActiveEnterTimestamp'])} +%s"
            )
            assert int(started) >= written, f"{name} {unit} was not restarted by the side effect"
