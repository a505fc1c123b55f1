"""The all-in-one host: every unit up and hardened, loopback-only sockets, a real ingestion."""

from __future__ import annotations

import json
import re
import shlex

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")


def test_units_active_and_enabled(host):
    for unit in ("redis-server", "postgresql", tc.API_UNIT):
        tc.assert_active_enabled(host, unit)
    workers = tc.worker_instances(host)
    assert workers, f"no {tc.WORKER_UNIT}N.service instance is loaded"
    for unit in workers:
        tc.assert_active_enabled(host, unit)


def test_app_units_hardened(host):
    for unit in (tc.API_UNIT, *tc.worker_instances(host)):
        props = tc.unit_properties(host, unit, list(tc.HARDENING))
        wrong = {k: props.get(k) for k, v in tc.HARDENING.items() if props.get(k) != v}
        assert not wrong, f"{unit}: hardening not applied, got {wrong}, want {tc.HARDENING}"


def security_exposure(host, unit: str) -> float:
    """systemd-analyze security's overall exposure of a unit (0 safest, 10 least)."""
    out = host.check_output(f"systemd-analyze security --no-pager {unit}")
    last = out.strip().splitlines()[-1]
    assert "Overall exposure level" in last, out[-500:]
    return float(last.split(":")[1].split()[0])


def test_units_score_within_the_hardening_goal(host):
    """The app units and PostgreSQL's (its drop-in: 9.6 UNSAFE without it) score <= 5."""
    instances = host.check_output("systemctl list-units --plain --no-legend 'postgresql@*'")
    [pg_unit] = [line.split()[0] for line in instances.splitlines() if line.strip()]
    scores = {
        unit: security_exposure(host, unit)
        for unit in (tc.API_UNIT + ".service", *tc.worker_instances(host), pg_unit)
    }
    assert all(score <= 5.0 for score in scores.values()), scores
    assert scores[pg_unit] <= 2.0, scores


def test_sockets_on_loopback_only(host):
    ports = {"redis": tc.REDIS_PORT, "postgresql": tc.POSTGRES_PORT, "api": tc.API_PORT}
    for name, port in ports.items():
        addrs = tc.listening_addresses(host, port)
        assert addrs, f"{name}: nothing listens on port {port}"
        assert addrs <= tc.LOOPBACK, f"{name} listens on {sorted(addrs)}, not on loopback only"


def test_consumer_group_has_consumers(host):
    env = tc.environment_file(host)
    groups = tc.redis_cli(host, env, "XINFO", "GROUPS", tc.STREAM).splitlines()
    assert tc.GROUP in groups, f"consumer group {tc.GROUP} missing on {tc.STREAM}: {groups}"
    consumers = tc.redis_cli(host, env, "XINFO", "CONSUMERS", tc.STREAM, tc.GROUP)
    assert "name" in consumers.splitlines(), f"no consumer in {tc.GROUP} yet"


def test_redis_refuses_without_password(host):
    out = host.run(f"redis-cli --raw -h 127.0.0.1 -p {tc.REDIS_PORT} PING")
    reply = out.stdout + out.stderr
    assert "NOAUTH" in reply, f"redis without a password answered {reply!r}"


def test_the_app_logs_in_as_its_own_least_privileged_redis_user(host):
    env = tc.environment_file(host)
    assert env.get("SHIELD_REDIS_USERNAME"), "the app logs in as Redis's default user"
    assert tc.redis_cli(host, env, "ACL", "WHOAMI").strip() == env["SHIELD_REDIS_USERNAME"]
    for command in ("FLUSHALL", "CONFIG SET maxmemory-policy allkeys-lru", "ACL LIST", "KEYS *"):
        out = host.run(tc.redis_cli_command(host, env, *command.split()))
        assert "NOPERM" in out.stdout + out.stderr, f"{command}: {out.stdout}{out.stderr}"
    assert tc.redis_cli(host, env, "CONFIG", "GET", "maxmemory-policy") != "allkeys-lru"


def test_ingestion_through_the_api(host):
    key = tc.api_key(tc.environment_file(host))
    job = tc.ingest_and_wait(host, key, chunks=5)
    assert job["chunks_processed"] == 5, job
    assert job["chunks_failed"] == 0, job


def _sql(host, query: str) -> str:
    return tc.sql(host, query)


def test_lightrag_graph_is_in_the_default_storages(host):
    """Issue 14: PostgreSQL holds KV, doc status and graph; vectors in pgvector (Debian 13) or
    Milvus Lite (Debian 12); no file storage (rewritten whole per document) is written."""
    key = tc.api_key(tc.environment_file(host))
    tc.ingest_and_wait(host, key, chunks=3)
    nodes = int(_sql(host, "SELECT count(*) FROM lightrag_graph_nodes WHERE workspace='default'"))
    assert nodes > 0
    found = _sql(
        host,
        "SELECT count(*) FROM lightrag_graph_nodes"
        " WHERE workspace='default' AND id ILIKE '%lightrag%'",
    )
    assert int(found) >= 1, "no entity of the ingested text ('LightRAG') in the graph"
    processed = _sql(
        host,
        "SELECT count(*) FROM lightrag_doc_status WHERE workspace='default' AND status='processed'",
    )
    assert int(processed) >= 3
    lightrag_dir = "/var/lib/shield-orchestrator/lightrag"
    whole = host.run(
        "find %s -name 'kv_store_*.json' -o -name 'vdb_*.json' -o -name '*.graphml'", lightrag_dir
    )
    assert whole.rc == 0, whole.stderr
    assert whole.stdout.strip() == "", f"file storages written: {whole.stdout}"
    if host.system_info.release.startswith("13"):
        assert _sql(host, "SELECT extname FROM pg_extension WHERE extname='vector'") == "vector"
        vdb = _sql(host, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'lightrag_vdb_%'")
        assert int(vdb) >= 3
    else:
        collections = host.run("ls %s/milvus.db/collections", lightrag_dir)
        assert collections.rc == 0, collections.stderr
        assert len([c for c in collections.stdout.split() if c.startswith("default_")]) >= 3


def test_a_lightrag_query_finds_an_entity_of_the_ingested_text(host):
    """Issue 14: the graph built with the default storages answers a LightRAG query (asked
    through the API, answered by the workspace's owner with its engine: Milvus Lite's directory
    is open in that process only), and the context names an entity of the ingested text."""
    key = tc.api_key(tc.environment_file(host))
    tc.ingest_and_wait(host, key, chunks=3)
    body = {
        "query": "What feeds the LightRAG workers?",
        "workspace": "default",
        "mode": "local",
        "only_need_context": True,
    }
    status, answer = tc.http(host, "POST", "/lightrag/query", key, body)
    assert status == 200, answer
    assert answer["workspace"] == "default"
    assert answer["engine"].startswith("offline"), answer["engine"]
    assert "lightrag" in (answer["context"] or "").lower(), answer


# --- the API's processes (issue 18) -----------------------------------------------------------
APP_PYTHON = "/opt/shield-orchestrator/venv/bin/python"  # orchestrator_base_dir's default
API_CONFIG = "/opt/shield-orchestrator/app/shield_orchestrator/api/config.py"
METRICS_DIR = "/run/shield-orchestrator-api"  # the unit's RuntimeDirectory (multiprocess files)
HEALTH_200 = {"route": "/health", "method": "GET", "status": "200"}
# Each process's own count of GET /health 200s, from its own counter file alone (the app's
# venv has prometheus-client); one "pid count" line per file.
_PER_PROCESS = r"""
import glob, json, shutil, sys, tempfile
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
for path in sorted(glob.glob(sys.argv[1] + "/counter_*.db")):
    alone = tempfile.mkdtemp()
    shutil.copy(path, alone)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=alone)
    count = registry.get_sample_value("shield_api_requests_total", json.loads(sys.argv[2])) or 0
    print(path.rsplit("_", 1)[1][: -len(".db")], int(count))
"""
# Bursts of concurrent GET /health, each on a new connection (so that any process may take it).
_BURSTS = r"""
import sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
def get(_):
    with urllib.request.urlopen(sys.argv[1], timeout=30) as r:
        return r.status
with ThreadPoolExecutor(max_workers=30) as pool:
    for _ in range(int(sys.argv[2])):
        assert set(pool.map(get, range(30))) == {200}
"""


def _api_children(host) -> set[str]:
    """The API's serving processes: the main process's children running spawn_main."""
    main = tc.unit_properties(host, tc.API_UNIT, ["MainPID"])["MainPID"]
    return set(host.check_output(f"pgrep -P {main} -f spawn_main").split())


def _per_process_health(host) -> dict[str, int]:
    args = " ".join(shlex.quote(a) for a in (_PER_PROCESS, METRICS_DIR, json.dumps(HEALTH_200)))
    out = host.check_output(f"{APP_PYTHON} -c {args}")
    return {pid: int(n) for pid, n in (line.split() for line in out.splitlines())}


def _scraped_health(host, key: str) -> float:
    status, text = tc.http(host, "GET", "/metrics", key)
    assert status == 200, text
    labels = '{method="GET",route="/health",status="200"}'
    for line in str(text).splitlines():
        if line.startswith("shield_api_requests_total") and all(
            f'{k}="{v}"' in line for k, v in HEALTH_200.items()
        ):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no shield_api_requests_total{labels} in /metrics")


def test_api_runs_its_processes_and_metrics_sum_them(host):
    """orchestrator_api_processes (api/config.py's PROCESSES) children of the unit's main
    process serve on the one port, each writes its own multiprocess counter file, and /metrics
    (whichever process answers) sums them: the GET /health 200s it counts grow by the requests
    sent, served by more than one process."""
    config = host.file(API_CONFIG).content_string
    wanted = re.search(r"^PROCESSES = (\d+)", config, re.MULTILINE)
    assert wanted, f"no PROCESSES line in {API_CONFIG}"
    children = _api_children(host)
    assert len(children) == int(wanted.group(1)), children
    key = tc.api_key(tc.environment_file(host))
    before, per_before = _scraped_health(host, key), _per_process_health(host)
    bursts = 10
    url = f"http://127.0.0.1:{tc.API_PORT}/health"
    host.check_output("python3 -c " + " ".join(shlex.quote(a) for a in (_BURSTS, url, str(bursts))))
    per_after = _per_process_health(host)
    assert _scraped_health(host, key) - before == bursts * 30
    grew = {pid: n - per_before.get(pid, 0) for pid, n in per_after.items()}
    assert sum(grew.values()) == bursts * 30, grew
    assert {pid for pid, n in grew.items() if n} <= children, (grew, children)
    assert len([n for n in grew.values() if n]) >= min(2, len(children)), grew
