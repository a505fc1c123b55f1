"""Which of this host's indexers poll the task queue (roles/orchestrator_indexer validation).

    <venv>/bin/python indexer_pollers.py --pid 1234 --pid 1240

A process's poller identity is the SDK's default, ``<pid>@<hostname>``: each process given by
its systemd MainPID must appear among the pollers of both the workflow and the activity task
queue. Runs with the app venv's python and asks the Temporal the indexers use: the address,
namespace, task queue and TLS files of the app's Settings (indexing/client.py). Prints one JSON
line; exit 0 when every process polls both, 1 when one does not, 2 when Temporal could not
be asked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys

from shield_orchestrator.indexing.client import TemporalTarget, connect  # the indexers' own
from shield_orchestrator.settings import load_settings
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

KINDS = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


async def pollers(target: TemporalTarget) -> dict[str, list[str]]:
    client: Client = await connect(target)
    out = {}
    for kind, queue_type in KINDS.items():
        reply = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=target.namespace,
                task_queue=TaskQueue(name=target.task_queue),
                task_queue_type=queue_type,
            )
        )
        out[kind] = sorted(p.identity for p in reply.pollers)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid", action="append", type=int, default=[])
    args = parser.parse_args()
    expected = [f"{pid}@{socket.gethostname()}" for pid in args.pid]
    try:
        target = TemporalTarget.from_settings(load_settings())
        seen = asyncio.run(pollers(target))
    except Exception as exc:  # the message is the result: the task names the fix
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "expected": expected}))
        return 2
    missing = {k: [e for e in expected if e not in v] for k, v in seen.items()}
    ok = not any(missing.values()) and bool(expected)
    print(json.dumps({"expected": expected, "pollers": seen, "missing": missing, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
