"""One job through the API on worker1, its chunks processed by the pools of both worker hosts
(consumers of the group and their heartbeats' processed counters name both hosts)."""

from __future__ import annotations

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")
PREFIX = "shield:worker:"  # heartbeat hash per consumer


def _consumer_of(consumer: str, worker: str) -> bool:
    """Consumers are named <host>:<instance> (ARCHITECTURE.md)."""
    return consumer == worker or consumer.startswith(f"{worker}:")


def test_one_job_spread_over_both_worker_hosts(host):
    env = tc.environment_file(host)
    tc.ingest_and_wait(host, tc.api_key(env), chunks=60)
    data = tc.host(tc.hosts_in("redis")[0])
    password = env["SHIELD_REDIS_PASSWORD"]
    consumers = tc.redis_cli(data, password, "XINFO", "CONSUMERS", tc.STREAM, tc.GROUP).splitlines()
    names = [consumers[i + 1] for i, v in enumerate(consumers[:-1]) if v == "name"]
    processed = {}
    for key in tc.redis_cli(data, password, "--scan", "--pattern", PREFIX + "*").split():
        fields = tc.redis_cli(data, password, "HGETALL", key).splitlines()
        processed[key] = dict(zip(fields[::2], fields[1::2], strict=False)).get("processed", "0")
    for worker in tc.hosts_in("orchestrator_workers"):
        mine = [v for k, v in processed.items() if _consumer_of(k.removeprefix(PREFIX), worker)]
        assert any(_consumer_of(n, worker) for n in names), f"{worker}: no consumer in {names}"
        assert any(int(v) > 0 for v in mine), f"{worker} processed nothing: {processed}"
