"""The Temporal connection and the indexers polling its task queue, as /health/detailed shows them.

One probe (:func:`temporal_status`) through the API's own gateway (services/repositories.py
``TemporalGateway``: the client is dialled on first use and kept, the address, namespace, task
queue and TLS are the Settings' that the indexers read too), bounded as a whole by
:data:`HEALTH_TIMEOUT_S` so that a Temporal that does not answer never holds the health
request: it then reads ``no answer within 2 s``. What it asks is the workflow service's
DescribeTaskQueue, once for the workflow and once for the activity task queue: Temporal
lists the pollers that asked for work lately (an indexer process polls both; its identity is
the SDK's ``<pid>@<host>``). The reason of a failure is the gateway's message (address,
namespace and the first line of the error), never a credential: TLS material is given by file
paths and read at connect time.

Temporal is indexing's dependency only: its state is reported beside Redis and PostgreSQL and
never makes the health ``degraded`` (chunk ingestion and queries do not use it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from shield_orchestrator.services.repositories import TemporalGateway, TemporalUnavailable

if TYPE_CHECKING:
    from temporalio.client import Client

HEALTH_TIMEOUT_S = 2.0  # the whole probe: connect (if not connected yet) and both describes
PollKind = Literal["workflow", "activity"]
POLL_KINDS: tuple[PollKind, ...] = ("workflow", "activity")


@dataclass(frozen=True, slots=True)
class Poller:
    """One indexer process as Temporal saw it: which task queues it polled, and when."""

    identity: str  # <pid>@<host>
    polls: tuple[PollKind, ...]
    last_seen_age_s: float


@dataclass(frozen=True, slots=True)
class TemporalStatus:
    ok: bool
    address: str
    namespace: str
    task_queue: str
    latency_ms: float | None = None
    error: str | None = None  # why it could not be asked (None when ok)
    pollers: tuple[Poller, ...] = field(default=())


async def _describe(client: Client, namespace: str, task_queue: str) -> list[Poller]:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    kinds = {
        "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    }
    seen: dict[str, tuple[list[PollKind], float]] = {}
    now = time.time()
    for kind in POLL_KINDS:
        reply = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=kinds[kind],
            )
        )
        for p in reply.pollers:
            age = max(0.0, now - p.last_access_time.ToDatetime().timestamp())
            polls, best = seen.get(p.identity, ([], age))
            seen[p.identity] = ([*polls, kind], min(best, age))
    return [
        Poller(identity, tuple(polls), round(age, 3))
        for identity, (polls, age) in sorted(seen.items())
    ]


async def temporal_status(
    gateway: TemporalGateway, timeout_s: float = HEALTH_TIMEOUT_S
) -> TemporalStatus:
    """Whether Temporal answers, and the indexers it saw polling; never raises, never waits
    longer than ``timeout_s``."""
    from temporalio.service import RPCError

    target = gateway.target
    down = TemporalStatus(False, target.address, target.namespace, target.task_queue)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            client = await gateway.client()
            pollers = await _describe(client, target.namespace, target.task_queue)
    except TemporalUnavailable as exc:  # the gateway's reason, without its 503 advice
        return dataclasses.replace(down, error=str(exc).split("; chunk ingestion")[0])
    except TimeoutError:
        return dataclasses.replace(down, error=_reason(down, f"no answer within {timeout_s:g} s"))
    except (RPCError, RuntimeError, OSError) as exc:
        first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        return dataclasses.replace(down, error=_reason(down, first))
    latency = round(1000 * (time.perf_counter() - started), 3)
    return TemporalStatus(True, target.address, target.namespace, target.task_queue, latency,
                          None, tuple(pollers))  # fmt: skip


def _reason(where: TemporalStatus, why: str) -> str:
    return f"temporal unavailable at {where.address} (namespace {where.namespace!r}): {why}"
