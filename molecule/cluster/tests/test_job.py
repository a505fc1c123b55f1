"""One job through the API on worker1, its chunks processed by the pools of both worker hosts.

Each worker host keeps its LightRAG file storages (offline engine, `orchestrator_engine_storage:
file`) under the working dir; a processed chunk is a document ``shield-<job>-<chunk>`` in that
host's doc status. Every chunk of the job is there exactly once across the two hosts, and each
host has some: the job was spread over both, and no chunk was processed twice.
"""

from __future__ import annotations

import json
import shlex
import time

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")
CHUNKS = 60
WORKING_DIR = "/var/lib/shield-orchestrator/lightrag"  # orchestrator_engine_working_dir's default
_COUNT = r"""
import json, pathlib, sys
prefix = sys.argv[2]
n = 0
for f in pathlib.Path(sys.argv[1]).rglob("kv_store_doc_status.json"):
    docs = json.loads(f.read_text() or "{}")
    n += sum(1 for k, v in docs.items() if k.startswith(prefix) and v.get("status") == "processed")
print(json.dumps(n))
"""


def _processed_on(name: str, job_id: str) -> int:
    """Documents of the job that this worker host's LightRAG storage holds as processed."""
    args = " ".join(shlex.quote(a) for a in (_COUNT, WORKING_DIR, f"shield-{job_id}-"))
    return int(json.loads(tc.host(name).check_output(f"python3 -c {args}")))


def test_one_job_spread_over_both_worker_hosts(host):
    env = tc.environment_file(host)
    job = tc.ingest_and_wait(host, tc.api_key(env), chunks=CHUNKS)
    workers = tc.hosts_in("orchestrator_workers")
    assert len(workers) >= 2, f"the cluster needs two worker hosts: {workers}"
    # LightRAG writes its file storages after each pipeline batch: allow them to catch up
    deadline = time.monotonic() + 120
    while True:
        counts = {w: _processed_on(w, job["job_id"]) for w in workers}
        if sum(counts.values()) >= CHUNKS or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sum(counts.values()) == CHUNKS, f"documents of job {job['job_id']} per host: {counts}"
    idle = [w for w, n in counts.items() if n == 0]
    assert not idle, f"{idle} processed no chunk of job {job['job_id']}: {counts}"

    data = tc.host(tc.hosts_in("redis")[0])
    consumers = tc.redis_cli(data, env, "XINFO", "CONSUMERS", tc.STREAM, tc.GROUP).splitlines()
    names = [consumers[i + 1] for i, v in enumerate(consumers[:-1]) if v == "name"]
    for worker in workers:  # consumers are named <host>:<instance> (ARCHITECTURE.md)
        assert any(n.startswith(f"{worker}:") for n in names), f"{worker}: no consumer in {names}"
