"""An indexer SIGKILLed in the middle of a run: the run completes with exact counts (issue 17).

A repository of FILES files is made on every indexer host (the same commits at the same local
path), registered and indexed through the API. While its ``persist_kg`` activity runs (the
workflow's pending activity, read with Temporal's CLI on the Temporal host), the indexer process
that runs it (``lastWorkerIdentity`` = ``<MainPID>@<host>``) is SIGKILLed: no graceful
shutdown, its heartbeats stop. Temporal retries the activity on a live indexer (the other
host's, or the killed unit once systemd restarted it) and the run completes: every file indexed
once, each file's job completed with all its chunks, each chunk one LightRAG document, no
document twice, nothing dead-lettered.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")

FILES = 40  # enough chunks that persist_kg is still waiting on the pool when it is killed
TEMPORAL_CLI = "/opt/shield-temporal/venv/bin/temporal"
TEMPORAL = ("--address", "127.0.0.1:7233", "-n", "shield")  # on the Temporal host
INDEXER_UNIT = "shield-orchestrator-indexer@"
DEAD_LETTER = "shield:dead_letter"


def fixture_files(run: str) -> dict[str, str]:
    """FILES small Python modules, three functions each (a module chunk + three), every chunk
    new text (``run`` in each: LightRAG stores identical text once)."""
    return {
        f"fleet/ship_{n:03d}.py": "".join(
            f"def ship_{n}_step_{k}_{run}(knots: int) -> int:\n"
            f"    '''Ship {n} of the fleet, step {k}: Harbor {n} to Meridian {k}.'''\n"
            f"    return knots * {k + 1} + {n}\n\n\n"
            for k in range(3)
        )
        + f"FLAG_{n} = 'pennant {n} {run}'\n"
        for n in range(FILES)
    }


def pending_activity(temporal: Any, workflow_id: str) -> dict[str, Any] | None:
    """The workflow's pending ``persist_kg`` activity, once a worker has it, else None."""
    argv = [TEMPORAL_CLI, "workflow", "describe", "-w", workflow_id, *TEMPORAL, "-o", "json"]
    out = temporal.run(shlex.join(argv))
    if out.rc != 0:  # not started yet
        return None
    described = json.loads(out.stdout)
    for activity in described.get("pendingActivities") or []:
        name = (activity.get("activityType") or {}).get("name")
        if name == "persist_kg" and activity.get("lastWorkerIdentity"):
            return dict(activity)
    return None


def test_a_killed_indexer_s_run_completes_with_exact_counts(host):
    key = tc.api_key(tc.environment_file(host))
    indexers = {tc.host(n).check_output("hostname").strip(): tc.host(n)
                for n in tc.hosts_in("indexer")}  # fmt: skip
    temporal = tc.host(tc.hosts_in("temporal")[0])
    data = tc.host(tc.hosts_in("postgresql")[0])
    token = f"R{time.time_ns()}"
    files = fixture_files(token)
    path = f"/srv/shield-molecule/fleet-{token}"
    commit = tc.git_repo(list(indexers.values()), path, files)
    status, repo = tc.http(host, "POST", "/repos", key, {"url": path, "branch": "main"})
    assert status == 201, repo
    repo_id, workflow_id = repo["repo_id"], repo["workflow_id"]
    status, answer = tc.http(host, "POST", f"/repos/{repo_id}/index", key, {})
    assert status == 202, answer

    deadline = time.monotonic() + 180
    activity = None
    while activity is None and time.monotonic() < deadline:
        activity = pending_activity(temporal, workflow_id)
        time.sleep(0.5)
    assert activity, f"no indexer ran persist_kg of {workflow_id} within 180 s"
    pid, _, hostname = activity["lastWorkerIdentity"].partition("@")
    assert hostname in indexers, f"{activity['lastWorkerIdentity']}: not an indexer host"
    victim = indexers[hostname]
    units = victim.check_output(
        f"systemctl list-units --plain --no-legend '{INDEXER_UNIT}*.service'"
    ).split()
    unit = next(u for u in units if tc.unit_properties(victim, u, ["MainPID"])["MainPID"] == pid)
    state = tc.http(host, "GET", f"/repos/{repo_id}", key)[1]["index"]
    assert state["state"] == "running", f"the run ended before the kill: raise FILES: {state}"
    victim.check_output(f"kill -KILL {int(pid)}")

    indexed = tc.wait_indexed(host, key, repo_id, commit, timeout_s=600)["index"]
    run = indexed["last_run"]
    assert (run["status"], run["commit"]) == ("completed", commit), run
    assert run["changes"] == {"added": FILES}, run
    assert run["files"] == {"completed": FILES}, run
    assert indexed["indexed_files"] == FILES, indexed
    assert indexed["runs"] == 1, f"the kill cost a second run: {indexed}"
    # the killed unit came back (Restart=on-failure) and polls again
    tc.wait_active(victim, unit)

    # every file's job completed with all its chunks; one document per chunk, none twice
    jobs = tc.sql(
        data,
        "SELECT count(*), count(DISTINCT j.job_id), sum(j.chunks_total),"  # noqa: S608
        " sum(j.chunks_processed), sum(j.chunks_failed),"
        " count(*) FILTER (WHERE j.status <> 'completed')"
        " FROM repo_files m JOIN jobs j ON j.job_id = m.job_id"
        f" WHERE m.repo = '{tc.sql_name(repo_id)}' AND m.branch = 'main'",
    )
    n, distinct, total, processed, failed, unfinished = (int(v) for v in jobs.split("|"))
    assert (n, distinct, processed, failed, unfinished) == (FILES, FILES, total, 0, 0), jobs
    docs = tc.sql(
        data,
        "SELECT count(*), count(DISTINCT d.id) FROM lightrag_doc_status d"  # noqa: S608
        " JOIN repo_files m ON d.id LIKE 'shield-' || m.job_id || '-%'"
        f" WHERE m.repo = '{tc.sql_name(repo_id)}' AND d.status = 'processed'",
    )
    assert docs == f"{total}|{total}", f"documents of the repository ({total} chunks): {docs}"
    env = tc.environment_file(host)
    redis = tc.host(tc.hosts_in("redis")[0])
    letters = tc.redis_cli(redis, env, "XRANGE", DEAD_LETTER, "-", "+")
    query = f"SELECT job_id FROM repo_files WHERE repo = '{tc.sql_name(repo_id)}'"  # noqa: S608
    lettered = [j for j in tc.sql(data, query).split() if j in letters]
    assert not lettered, f"chunks of jobs {lettered} were dead-lettered"
    print(f"killed {unit} on {hostname} (pid {pid}) in persist_kg; the run completed: {run}")
