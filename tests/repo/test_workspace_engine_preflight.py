"""A workspace's own engine settings (orchestrator_workspaces[].engine) in preflight.

The same play as tests/repo/test_preflight.py (playbooks/preflight.yml on localhost, nothing
changes): a workspace may set the closed list of engine keys, each an integer >= 1, and its
max_parallel_insert may not fall below its llm_model_max_async; anything else fails naming the
workspace, the key or value, the keys a workspace may set, and the fix.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.repo.test_preflight import assert_refused, inventory, run_preflight

__all__ = ["inventory"]  # the module-scoped fixture, shared with test_preflight.py

ALLOWED = (
    "chunk_token_size, llm_model_max_async, max_parallel_insert, embedding_max_async,"
    " offline_max_entities"
)


def _two(engine: object) -> dict[str, object]:
    return {"orchestrator_workspaces": [{"name": "default"}, {"name": "code", "engine": engine}]}


CASES = {
    "unknown_key": (
        _two({"chunk_token_size": 1200, "storage": "file"}),
        ["Workspace code", "storage is not a setting a workspace may change", ALLOWED],
    ),
    "not_a_mapping": (
        _two(1200),
        ["Workspace code", "engine=1200", "must be a mapping", ALLOWED],
    ),
    "not_an_integer": (
        _two({"chunk_token_size": "big"}),
        ["Workspace code", '"chunk_token_size": "big"', "integer >= 1", ALLOWED],
    ),
    "zero": (
        _two({"embedding_max_async": 0}),
        ["Workspace code", '"embedding_max_async": 0', "integer >= 1"],
    ),
    "fewer_inserts_than_llm_calls": (
        _two({"max_parallel_insert": 2}),
        ["Workspace code", "max_parallel_insert=2", "llm_model_max_async=4", "raise"],
    ),
}


@pytest.fixture(scope="module")
def results(inventory: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case's run and one valid declaration's, three at a time."""
    runs = {case: extra for case, (extra, _) in CASES.items()}
    runs["valid"] = _two(
        {
            "chunk_token_size": 1200,
            "llm_model_max_async": 6,
            "max_parallel_insert": 6,
            "embedding_max_async": 4,
            "offline_max_entities": 5,
        }
    )
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            case: pool.submit(run_preflight, inventory, extra) for case, extra in runs.items()
        }
        return {case: f.result() for case, f in futures.items()}


def test_a_workspace_with_its_own_valid_settings_passes(
    results: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    result = results["valid"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "changed=0" in result.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_workspace_engine_settings_fail_naming_the_fix(
    results: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    _, expected = CASES[case]
    flat = assert_refused(results[case], case, expected)
    assert "Fix the workspace's entry in the inventory" in flat
