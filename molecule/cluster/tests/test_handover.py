"""A SIGKILLed owner's workspace is taken over by the other host (issue 15).

The scenario's side effect (molecule/cluster/side_effect.yml, last play) submitted a job to the
first workspace, SIGKILLed its owner's worker process while the job ran and kept that unit down
(no drain, no lease release: as a lost host), waited for the job to end, then started the unit
again. It left ``<job> <chunks> <workspace> <killed owner> <processed at the kill>`` in JOB_FILE.
Here: the job completed with every chunk counted once; the shared graph holds each of its
documents once; the other host read the workspace's stream after the kill; nothing is left
pending or dead-lettered.
"""

from __future__ import annotations

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")
JOB_FILE = "/var/tmp/shield-handover-job"
DEAD_LETTER = "shield:dead_letter"


def test_the_standby_host_finished_the_killed_owners_job(host):
    job_file = host.file(JOB_FILE)
    assert job_file.exists, f"{JOB_FILE} missing: the side effect (hand-over) did not run"
    job_id, chunks, workspace, killed, at_kill = job_file.content_string.split()
    assert int(at_kill) < int(chunks), "the job was over before the kill"
    env = tc.environment_file(host)
    status, job = tc.http(host, "GET", f"/jobs/{job_id}", tc.api_key(env))
    assert status == 200, job
    counts = (job["status"], job["chunks_processed"], job["chunks_failed"])
    assert counts == ("completed", int(chunks), 0), job

    data = tc.host(tc.hosts_in("postgresql")[0])
    docs = tc.sql(
        data,
        "SELECT count(*), count(DISTINCT id) FROM lightrag_doc_status"  # noqa: S608
        f" WHERE status = 'processed' AND workspace = '{tc.sql_name(workspace)}'"
        f" AND id LIKE 'shield-{tc.sql_name(job_id)}-%'",
    )
    assert docs == f"{chunks}|{chunks}", f"documents of the job in the shared graph: {docs}"

    stream = f"{tc.STREAM_PREFIX}:{workspace}"
    redis = tc.host(tc.hosts_in("redis")[0])
    consumers = tc.redis_cli(redis, env, "XINFO", "CONSUMERS", stream, tc.GROUP).splitlines()
    names = [consumers[i + 1] for i, v in enumerate(consumers[:-1]) if v == "name"]
    killed_host = killed.rsplit(":", 1)[0]
    assert any(n.rsplit(":", 1)[0] != killed_host for n in names), (
        f"no process of another host read {stream} after {killed} was killed: {names}"
    )
    summary = tc.redis_cli(redis, env, "XPENDING", stream, tc.GROUP).splitlines()
    assert summary[0].strip() == "0", f"entries left pending: {summary}"
    letters = tc.redis_cli(redis, env, "XRANGE", DEAD_LETTER, "-", "+").split()
    assert job_id not in letters, "a chunk of the job was dead-lettered during the hand-over"
