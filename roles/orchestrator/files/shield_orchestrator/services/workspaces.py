"""Each declared workspace as operators see it: who serves it since when, what waits for it.

Built from what /health/detailed and shieldctl read anyway (services/queue_stats: one pipeline
for every workspace's stream; services/heartbeat: each worker process's hash, whose
``workspaces`` field names the workspaces it serves and since when), so it costs no extra round
trip. With a single-writer engine (LightRAG in-process) a workspace has one server, its owner,
and the others stand by; with other engines every live process serves every workspace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shield_orchestrator.services.heartbeat import WorkerBeat
from shield_orchestrator.services.queue_stats import QueueStats


@dataclass(frozen=True, slots=True)
class WorkspaceState:
    name: str
    servers: tuple[str, ...]  # consumers (host:instance) serving it now
    served_for_s: float | None  # since the longest-serving one took it (lease age); None: none
    depth: int  # entries on its stream (queued + in flight)
    pending: int  # delivered, not acknowledged yet


def workspace_states(
    stats: QueueStats, beats: Sequence[WorkerBeat], now: float
) -> list[WorkspaceState]:
    """One state per workspace of ``stats`` (the declared ones), in declaration order."""
    out = []
    for ws in stats.workspaces:
        since = {
            b.consumer: b.workspaces[ws.workspace] for b in beats if ws.workspace in b.workspaces
        }
        first = min(since.values(), default=None)
        out.append(
            WorkspaceState(
                name=ws.workspace,
                servers=tuple(sorted(since)),
                served_for_s=None if first is None else round(max(0.0, now - first), 3),
                depth=ws.depth,
                pending=ws.pending,
            )
        )
    return out


def warnings(states: Sequence[WorkspaceState]) -> list[str]:
    """A sentence for each workspace whose work waits with no process serving it."""
    return [
        f"workspace {s.name!r}: {s.depth} chunks wait and no worker process serves it (every "
        "process owns orchestrator_workers_workspaces_per_process workspaces already, or none "
        "is running): nothing is lost, they are processed once a process takes it; add worker "
        "processes or raise orchestrator_workers_workspaces_per_process"
        for s in states
        if not s.servers and s.depth > 0
    ]
