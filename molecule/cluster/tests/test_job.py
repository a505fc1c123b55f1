"""One shared graph, two workspaces spread over the two worker hosts (issue 15).

The cluster runs the in-process offline engine with every LightRAG storage in PostgreSQL on
data1 (Debian 13: pgvector), so a workspace's graph is one, whichever process writes it; each
workspace has one owner at a time (a fleet-wide lease). Checked through the API on worker1 and
PostgreSQL on data1: the two workspaces are owned by processes on different hosts; a job sent to
each workspace completes, and its documents are in that workspace's rows of the shared tables
exactly once.
"""

from __future__ import annotations

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")
CHUNKS = 30
WORKSPACES = ("default", "team_b")  # molecule.yml: orchestrator_workspaces


def _docs(job_id: str, workspace: str) -> int:
    data = tc.host(tc.hosts_in("postgresql")[0])
    return int(
        tc.sql(
            data,
            "SELECT count(*) FROM lightrag_doc_status WHERE status = 'processed'"  # noqa: S608
            f" AND workspace = '{tc.sql_name(workspace)}'"
            f" AND id LIKE 'shield-{tc.sql_name(job_id)}-%'",
        )
    )


def test_the_hosts_own_one_workspace_each(host):
    key = tc.api_key(tc.environment_file(host))
    status, health = tc.http(host, "GET", "/health/detailed", key)
    assert status == 200, health
    owners = {w["name"]: w["owners"] for w in health["workspaces"]}
    assert sorted(owners) == sorted(WORKSPACES), health
    assert all(len(o) == 1 for o in owners.values()), f"one owner each: {owners}"
    hosts = {o[0].rsplit(":", 1)[0] for o in owners.values()}
    assert hosts == set(tc.hosts_in("orchestrator_workers")), f"spread over both hosts: {owners}"
    assert health["warnings"] == [], health["warnings"]


def test_each_workspaces_job_lands_in_its_own_rows_of_the_one_graph(host):
    key = tc.api_key(tc.environment_file(host))
    for workspace in WORKSPACES:
        job = tc.ingest_and_wait(host, key, chunks=CHUNKS, workspace=workspace)
        assert (job["chunks_processed"], job["chunks_failed"]) == (CHUNKS, 0), job
        assert _docs(job["job_id"], workspace) == CHUNKS
        other = next(w for w in WORKSPACES if w != workspace)
        assert _docs(job["job_id"], other) == 0, f"job of {workspace} stored in {other}"
