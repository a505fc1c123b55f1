"""Repository runs through indexer faults complete with exact counts (issue 17).

The worker pool of every host is stopped (gracefully) first, so that a run, once its
``persist_kg`` activity has queued its chunks, certainly waits on them whatever the fault
takes. A repository of FILES files is made on every indexer host (the same commits at the same
local path), registered and indexed through the API, and its ``persist_kg`` activity (the
workflow's pending activity, read with Temporal's CLI on the Temporal host) is waited for.
Then:

- **kill**: the indexer process that runs the activity (``lastWorkerIdentity`` =
  ``<MainPID>@<host>``) is SIGKILLed: no graceful shutdown, its heartbeats stop. Temporal
  retries the activity on a live indexer (the other host's, or the killed unit once systemd
  restarted it).
- **rolling restart**: ``playbooks/rolling_restart.yml -t indexer``, the play operators run,
  restarts every indexer instance of every host, one host at a time.

The pools are then started again (on every host, whatever happened) and the run completes as
one run: every file indexed once, each file's job completed with all its chunks, each chunk one
LightRAG document, no document twice, nothing dead-lettered; the two workspaces are again owned
one per host (what the later tests of the scenario expect).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")

FILES = 12  # the pool is stopped: persist_kg waits on these chunks whatever the fault takes
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


def indexer_hosts() -> dict[str, Any]:
    """hostname -> testinfra host, for every host of the indexer group."""
    return {tc.host(n).check_output("hostname").strip(): tc.host(n) for n in tc.hosts_in("indexer")}


def indexer_pids(h: Any) -> dict[str, str]:
    """unit -> MainPID of every indexer instance of ``h``."""
    out = h.check_output(f"systemctl list-units --plain --no-legend '{INDEXER_UNIT}*.service'")
    units = [line.split()[0] for line in out.splitlines() if line.strip()]
    return {u: tc.unit_properties(h, u, ["MainPID"])["MainPID"] for u in units}


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


@contextmanager
def pools_stopped() -> Iterator[None]:
    """Every active worker instance of every pool host stopped (SIGTERM, drained) for the body,
    then started again on every host, whatever the body did; a start that fails fails the test
    (after the body's own error, if any)."""
    pools = {name: tc.host(name) for name in tc.hosts_in("orchestrator_workers")}
    active = {
        name: [u for u in tc.worker_instances(h) if h.run(f"systemctl is-active {u}").rc == 0]
        for name, h in pools.items()
    }
    assert all(active.values()), f"a pool host has no active worker instance: {active}"
    try:
        for name, h in pools.items():
            h.check_output("systemctl stop " + " ".join(map(shlex.quote, active[name])))
        yield
    finally:
        failed = {}
        for name, h in pools.items():
            started = h.run("systemctl start " + " ".join(map(shlex.quote, active[name])))
            if started.rc != 0:
                failed[name] = started.stderr
        print(f"worker instances started again: {active}; failures: {failed}")
    assert not failed, f"worker instances did not start again: {failed}"


def wait_spread(host: Any, key: str, timeout_s: float = 120) -> None:
    """Until /health/detailed shows every workspace owned by one process, on different hosts."""
    deadline = time.monotonic() + timeout_s
    owners: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        status, health = tc.http(host, "GET", "/health/detailed", key)
        owners = (
            {w["name"]: w["owners"] for w in health.get("workspaces", [])} if status == 200 else {}
        )
        hosts = {o[0].rsplit(":", 1)[0] for o in owners.values() if len(o) == 1}
        if owners and all(len(o) == 1 for o in owners.values()) and len(hosts) == len(owners):
            return
        time.sleep(1)
    raise AssertionError(
        f"workspaces not owned one per host again within {timeout_s:.0f} s: {owners}"
    )


def start_run(host: Any, key: str, name: str) -> tuple[str, str, dict[str, Any]]:
    """A fresh repository registered and indexed through the API, its run waited for until an
    indexer runs its persist_kg activity: (repo id, commit, that activity)."""
    token = f"{name}{time.time_ns()}"
    path = f"/srv/shield-molecule/fleet-{token}"
    commit = tc.git_repo(list(indexer_hosts().values()), path, fixture_files(token))
    status, repo = tc.http(host, "POST", "/repos", key, {"url": path, "branch": "main"})
    assert status == 201, repo
    status, answer = tc.http(host, "POST", f"/repos/{repo['repo_id']}/index", key, {})
    assert status == 202, answer
    temporal = tc.host(tc.hosts_in("temporal")[0])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        activity = pending_activity(temporal, repo["workflow_id"])
        if activity:
            return repo["repo_id"], commit, activity
        time.sleep(0.5)
    raise AssertionError(f"no indexer ran persist_kg of {repo['workflow_id']} within 180 s")


def assert_running(host: Any, key: str, repo_id: str, when: str) -> None:
    state = tc.http(host, "GET", f"/repos/{repo_id}", key)[1]["index"]
    assert state["state"] == "running", f"the run ended {when}: raise FILES: {state}"


def assert_completed_once(host: Any, key: str, repo_id: str, commit: str) -> dict[str, Any]:
    """The run completed as one run with exact counts; its last_run."""
    indexed = tc.wait_indexed(host, key, repo_id, commit, timeout_s=600)["index"]
    run = indexed["last_run"]
    assert (run["status"], run["commit"]) == ("completed", commit), run
    assert run["changes"] == {"added": FILES}, run
    assert run["files"] == {"completed": FILES}, run
    assert indexed["indexed_files"] == FILES, indexed
    assert indexed["runs"] == 1, f"the fault cost a second run: {indexed}"

    # every file's job completed with all its chunks; one document per chunk, none twice. The
    # jobs' rows in PostgreSQL are written behind Redis (the pool's flusher): the run can end a
    # moment before its last job's row says so, so the rows are read until they agree (60 s).
    data = tc.host(tc.hosts_in("postgresql")[0])
    query = (
        "SELECT count(*), count(DISTINCT j.job_id), sum(j.chunks_total),"  # noqa: S608
        " sum(j.chunks_processed), sum(j.chunks_failed),"
        " count(*) FILTER (WHERE j.status <> 'completed')"
        " FROM repo_files m JOIN jobs j ON j.job_id = m.job_id"
        f" WHERE m.repo = '{tc.sql_name(repo_id)}' AND m.branch = 'main'"
    )
    deadline = time.monotonic() + 60
    while True:
        jobs = tc.sql(data, query)
        n, distinct, total, processed, failed, unfinished = (int(v) for v in jobs.split("|"))
        if unfinished == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
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
    return dict(run)


def test_a_killed_indexer_s_run_completes_with_exact_counts(host):
    key = tc.api_key(tc.environment_file(host))
    indexers = indexer_hosts()
    with pools_stopped():
        repo_id, commit, activity = start_run(host, key, "K")
        pid, _, hostname = activity["lastWorkerIdentity"].partition("@")
        assert hostname in indexers, f"{activity['lastWorkerIdentity']}: not an indexer host"
        victim = indexers[hostname]
        unit = next((u for u, main_pid in indexer_pids(victim).items() if main_pid == pid), None)
        assert unit, f"{activity['lastWorkerIdentity']}: no indexer unit of {hostname} has that PID"
        assert_running(host, key, repo_id, "before the kill")
        victim.check_output(f"kill -KILL {int(pid)}")
        tc.wait_active(victim, unit)  # the killed unit comes back (Restart=on-failure)

    run = assert_completed_once(host, key, repo_id, commit)
    wait_spread(host, key)
    print(f"killed {unit} on {hostname} (pid {pid}) in persist_kg; the run completed: {run}")


def test_a_run_survives_a_rolling_restart_of_every_indexer_host(host):
    key = tc.api_key(tc.environment_file(host))
    with pools_stopped():
        repo_id, commit, _ = start_run(host, key, "R")
        before = {name: indexer_pids(h) for name, h in indexer_hosts().items()}
        tc.playbook("rolling_restart.yml", "-t", "indexer")
        after = {name: indexer_pids(h) for name, h in indexer_hosts().items()}
        assert_running(host, key, repo_id, "during the rolling restart")
    for name, pids in before.items():
        assert after[name].keys() == pids.keys(), f"{name}: indexer instances {before} -> {after}"
        kept = [u for u, pid in pids.items() if after[name][u] == pid]
        assert not kept, f"{name}: {kept} not restarted by rolling_restart.yml -t indexer"

    run = assert_completed_once(host, key, repo_id, commit)
    wait_spread(host, key)
    print(f"every indexer host restarted ({before} -> {after}); the run completed: {run}")
