"""The indexing workflow's code still replays every recorded history (no server needed).

An indexer host restarted onto new code during a deploy (playbooks/rolling_restart.yml) replays
the runs in flight from their histories: a workflow change that issues other commands for the
same history (a new activity call, a reordered one, a removed timer) without
``workflow.patched()`` fails each of them with a non-determinism error. This test replays the
histories of tests/data/workflow_histories/ (real runs, recorded by
tests/support/record_histories.py: see its docstring for how and when) with the current
workflow classes, one test per file.
"""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

HISTORIES = Path(__file__).resolve().parents[1] / "data" / "workflow_histories"
FILES = sorted(HISTORIES.glob("*.json"))


def test_the_recorded_histories_cover_every_activity_the_workflow_calls() -> None:
    """A new activity (versioned with workflow.patched) comes with a history that calls it."""
    from shield_orchestrator.indexing.workflow import TIMEOUTS

    scheduled: set[str] = set()
    for path in FILES:
        for event in json.loads(path.read_text())["events"]:
            attrs = event.get("activityTaskScheduledEventAttributes")
            if attrs:
                scheduled.add(attrs["activityType"]["name"])
    assert scheduled == {*TIMEOUTS, "run_repo_command"}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_a_recorded_history_replays_with_the_current_workflow(path: Path) -> None:
    from shield_orchestrator.indexing.workflow import RepoIndexingWorkflow
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[RepoIndexingWorkflow])
    result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
    if result.replay_failure is not None:  # names the file and Temporal's reason (TMPRL1100)
        pytest.fail(f"{path.name} no longer replays: {result.replay_failure}")


def _strings(node: Any) -> list[str]:
    """Every string of a history, each payload's data decoded (JSON in base64)."""
    if isinstance(node, dict):
        out = [base64.b64decode(node["data"]).decode(errors="replace")] if "data" in node else []
        return out + [s for k, v in node.items() if k != "data" for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_the_histories_hold_no_path_of_the_recording_machine() -> None:
    """Recorded runs index a repository under the recorder's placeholder, never a tmp path,
    and name no checkout, venv or home of the machine that recorded them."""
    assert len(FILES) >= 10, FILES
    for path in FILES:
        events = json.loads(path.read_text())["events"]
        (payload,) = events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"]
        url = json.loads(base64.b64decode(payload["data"]))["spec"]["url"]
        assert url.startswith("/srv/shield-replay/"), (path.name, url)
        text = "\n".join(_strings(events))
        for machine in _machine_paths():
            assert machine not in text, f"{path.name} holds {machine!r}"


def _machine_paths() -> list[str]:
    """What a history recorded here would leak: this machine's temporary directory, home and
    checkout (read from the machine running the test, none written in the repository), and
    pytest's temporary-directory prefix."""
    checkout = Path(__file__).resolve().parents[2]
    dirs = [Path(tempfile.gettempdir()), Path.home(), checkout]
    return [f"{d}/" for d in dirs] + ["pytest-of-"]
