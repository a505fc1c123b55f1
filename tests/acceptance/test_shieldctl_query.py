"""``shieldctl query`` against the real API process and a real worker process
(``shield_orchestrator.workers``, engine noop: it serves every declared workspace, and answers
each one's queries through services/query_server.serve_queries, workers/workspaces.py).

What is proved: the answer (and with --context the context) is printed on stdout, the engine's
label and the answering process on stderr; a workspace nobody serves is one line naming it and
exit 2; an undeclared workspace is refused by the API naming the declared ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shield_orchestrator.api.models import WORKSPACES

from tests.acceptance.test_shieldctl import shieldctl
from tests.support.procs import WorkerProc, worker_processes

pytestmark = pytest.mark.acceptance

NO_GRAPH = "noop engine: no graph (it stores nothing; deploy the offline or lightrag engine)"


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[WorkerProc]:
    with worker_processes(env, tmp_path) as spawn:
        yield spawn("1")


def test_shieldctl_query_prints_the_workspaces_answer(
    api_proc: tuple[Any, str], worker: WorkerProc, tmp_path: Path
) -> None:
    _, base = api_proc
    asked = shieldctl(base, tmp_path, "query", "What does the graph hold?")
    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert asked.stdout.strip() == NO_GRAPH
    assert asked.stderr.strip() == (
        f"workspace {WORKSPACES[0]}, mode mix, answered by acceptance:1: "
        "noop engine (does no processing; tests and benchmarks only)"
    )
    last = WORKSPACES[-1]
    context = shieldctl(base, tmp_path, "query", "Who?", "--workspace", last, "--mode", "local",
                        "--context", "--top-k", "3")  # fmt: skip
    assert context.returncode == 0, context.stderr
    assert context.stdout.strip() == NO_GRAPH
    assert context.stderr.startswith(f"workspace {last}, mode local, answered by acceptance:1")

    unknown = shieldctl(base, tmp_path, "query", "Who?", "--workspace", "nope")
    assert unknown.returncode == 2
    assert "answered 422" in unknown.stderr
    assert f"known: {', '.join(WORKSPACES)}" in unknown.stderr


def test_a_workspace_nobody_serves_is_one_line_naming_it(
    api_proc: tuple[Any, str], tmp_path: Path
) -> None:
    _, base = api_proc
    result = shieldctl(base, tmp_path, "query", "anyone?", "--timeout", "1")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("shieldctl: POST /lightrag/query answered 504")
    assert f"serving workspace {WORKSPACES[0]!r}" in line
