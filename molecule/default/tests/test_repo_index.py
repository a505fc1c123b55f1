"""A repository indexed end to end through the deployed API, then a commit re-indexed (issue 17).

A fixture repository is made on the indexer host (a local path, owned by the indexers' user),
registered with POST /repos and indexed with POST /repos/{id}/index; then one commit modifies
one file, deletes one and adds one, and the repository is indexed again. GET /repos/{id} must
say that the indexed commit moved and that exactly those three files changed; LightRAG's
document set (lightrag_doc_status, read on the PostgreSQL host) must have changed by exactly
their documents: the old documents of the modified and the deleted file gone, new ones for the
modified and the added file, every other file's documents untouched (same ids, same job).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")

# RUN becomes a token of the run in every file and symbol: each verify run's chunks are new
# text (LightRAG stores identical text once: a chunk an earlier run ingested makes no document)
FIXTURE = {
    "README.md": "# Lighthouse RUN\n\nThe keeper logs every ship that passes Granite Point.\n",
    "lighthouse/__init__.py": '"""The lighthouse package, RUN."""\n',
    "lighthouse/keeper.py": (
        '"""The keeper."""\n\n\nclass KeeperRUN:\n    """Keeps the lamp lit."""\n\n'
        "    def light(self) -> str:\n        return 'lit RUN'\n\n\n"
        "def log_ship_RUN(name: str) -> str:\n    return f'{name} passed Granite Point'\n"
    ),
    "lighthouse/tides.py": (
        '"""Tides."""\n\n\ndef high_tide_RUN(hour: int) -> bool:\n    return hour % 12 == 6\n'
    ),
    "harbor/main.go": (
        'package main\n\nimport "fmt"\n\n// DockRUN moors a ship at the harbor.\n'
        'func DockRUN(ship string) string {\n\treturn fmt.Sprintf("%s docked", ship)\n}\n'
    ),
}
MODIFIED = "lighthouse/keeper.py"
DELETED = "lighthouse/tides.py"
ADDED = "lighthouse/fog.py"


def index(h: Any, key: str, repo_id: str, commit: str) -> dict[str, Any]:
    status, answer = tc.http(h, "POST", f"/repos/{repo_id}/index", key, {})
    if status != 202:
        problem = f"POST /repos/{repo_id}/index answered {status}: {answer}"
        tc.fail_with_journal(h, tc.API_UNIT, problem)
    return tc.wait_indexed(h, key, repo_id, commit)


@pytest.fixture(scope="module")
def reindexed(host: Any) -> dict[str, Any]:
    """The fixture indexed, then modified, deleted, added and indexed again: what each said."""
    key = tc.api_key(tc.environment_file(host))
    indexers = [tc.host(n) for n in tc.hosts_in("indexer")]
    data = tc.host(tc.hosts_in("postgresql")[0])
    run = f"R{time.time_ns()}"
    files = {name: text.replace("RUN", run) for name, text in FIXTURE.items()}
    path = f"/srv/shield-molecule/lighthouse-{run}"  # a new repository per run
    first = tc.git_repo(indexers, path, files)
    status, repo = tc.http(host, "POST", "/repos", key, {"url": path, "branch": "main"})
    assert status == 201, repo
    repo_id = repo["repo_id"]
    before_api = index(host, key, repo_id, first)
    before = tc.repo_documents(data, repo_id)

    h = indexers[0]
    bell = f"\n\ndef ring_bell_{run}() -> None:\n    print('fog bell')\n"
    fog = f'"""Fog."""\n\n\ndef fog_horn_{run}() -> str:\n    return "blast"\n'
    tc.write_files(h, path, {MODIFIED: files[MODIFIED] + bell, ADDED: fog})
    h.check_output(f"rm {path}/{DELETED}")
    second = tc.git_commit(h, path, "fixture: modify one file, delete one, add one")
    for other in indexers[1:]:
        tc.copy_repo(h, other, path)
    after_api = index(host, key, repo_id, second)
    after = tc.repo_documents(data, repo_id)
    return {"commits": (first, second), "api": (before_api, after_api), "docs": (before, after),
            "data": data}  # fmt: skip


def test_the_first_run_indexed_every_fixture_file(reindexed):
    first, _ = reindexed["commits"]
    state = reindexed["api"][0]["index"]
    assert (state["state"], state["indexed_commit"]) == ("indexed", first), state
    assert state["indexed_files"] == len(FIXTURE), state
    assert state["last_run"]["changes"] == {"added": len(FIXTURE)}, state["last_run"]
    before = reindexed["docs"][0]
    assert set(before) == set(FIXTURE), before
    empty = sorted(p for p, (_, docs) in before.items() if not docs)
    assert not empty, f"files without a processed LightRAG document: {empty}"


def test_the_reindex_moved_the_commit_and_changed_exactly_three_files(reindexed):
    first, second = reindexed["commits"]
    state = reindexed["api"][1]["index"]
    assert (state["state"], state["indexed_commit"]) == ("indexed", second), state
    run = state["last_run"]
    assert (run["base_commit"], run["commit"], run["status"]) == (first, second, "completed"), run
    assert run["changes"] == {"added": 1, "modified": 1, "removed": 1}, run
    assert run["unchanged"] == len(FIXTURE) - 2, run
    assert state["indexed_files"] == len(FIXTURE), state


def test_exactly_the_changed_files_documents_changed_in_lightrag(reindexed):
    before, after = reindexed["docs"]
    data = reindexed["data"]
    assert set(after) == (set(before) - {DELETED}) | {ADDED}, sorted(after)
    unchanged = set(before) - {MODIFIED, DELETED}
    moved = {p: (before[p], after[p]) for p in unchanged if before[p] != after[p]}
    assert not moved, f"documents of unchanged files changed: {moved}"
    for path in (MODIFIED, DELETED):  # the old documents left LightRAG, every one of them
        job, docs = before[path]
        left = tc.job_documents(data, job)
        assert docs, f"{path}: its old job {job} had no processed document"
        assert not left, f"{path}: documents of its old job {job} still there: {left}"
    for path in (MODIFIED, ADDED):  # new documents, of a job of the second run
        job, docs = after[path]
        assert docs, f"{path}: no processed LightRAG document of job {job}"
        assert job != before.get(path, ("", None))[0], f"{path}: not re-ingested"
    documents_before = set().union(*(d for _, d in before.values()))
    documents_after = set().union(*(d for _, d in after.values()))
    gone = before[MODIFIED][1] | before[DELETED][1]
    new = after[MODIFIED][1] | after[ADDED][1]
    assert documents_after == (documents_before - gone) | new, (documents_before, documents_after)
