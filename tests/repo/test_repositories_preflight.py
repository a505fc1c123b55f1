"""Repositories declared in the inventory (orchestrator_repositories) are checked in preflight.

playbooks/preflight.yml against localhost in every group (tests/repo/test_temporal_preflight.py's
inventory): a declaration without a branch, with credentials in its URL, with an unknown
workspace or key, or with a schedule that is not a period fails before anything changes, the
message naming orchestrator_repositories[i] and the fix; the credentials are never printed.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.repo.test_preflight import assert_refused, run_preflight
from tests.repo.test_temporal_preflight import inventory  # noqa: F401 (the fixture)

GOOD = {"url": "https://git.example.test/team/app.git", "branch": "main"}
SECRET = "s3cr3t-token-value"
# One preflight run checks every entry (the assert loops over all of them and reports each
# refusal): entry i + 1 of the list below is CASES' i-th (entry 0 is GOOD).
CASES: dict[str, tuple[dict[str, object], list[str]]] = {
    "no_branch": (
        {"url": "https://git.example.test/team/app.git"},
        ["has no branch", "branch: main"],
    ),
    "credentials_in_url": (
        {"url": f"https://user:{SECRET}@git.example.test/app.git", "branch": "main"},
        ["carries credentials", "credential_ref"],
    ),
    "token_as_user": (
        {"url": f"https://{SECRET}@git.example.test/app.git", "branch": "main"},
        ["carries credentials"],
    ),
    "unknown_workspace": (
        {**GOOD, "workspace": "nowhere"},
        ['workspace "nowhere" is not declared', "orchestrator_workspaces"],
    ),
    "bad_schedule": (
        {**GOOD, "schedule": "hourly"},
        ['schedule "hourly" is not a period', "15m, 1h"],
    ),
    "credential_ref_not_lent": (
        {**GOOD, "credential_ref": "SHIELD_POSTGRES_PASSWORD"},
        ['credential_ref "SHIELD_POSTGRES_PASSWORD" is not a name', "REPO_CREDENTIAL_<NAME>"],
    ),
    "credential_ref_undeclared": (
        {**GOOD, "credential_ref": "REPO_CREDENTIAL_NOPE"},
        [
            'credential_ref "REPO_CREDENTIAL_NOPE" is not a key of',
            "orchestrator_indexer_repo_credentials",
        ],
    ),
    "unknown_key": (
        {**GOOD, "brnch": "main"},
        ["unknown key(s) brnch", "the keys are url, branch"],
    ),
}
ORDER = list(CASES)


@pytest.fixture(scope="module")
def results(inventory: Path) -> dict[str, subprocess.CompletedProcess[str]]:  # noqa: F811
    bad = [GOOD, *(CASES[case][0] for case in ORDER)]
    good = [GOOD, {**GOOD, "schedule": "1h30m", "include": ["*"], "workspace": "default",
                   "credential_ref": "REPO_CREDENTIAL_APP"}]  # fmt: skip
    credentials = {"REPO_CREDENTIAL_APP": f"x-access-token:{SECRET}"}
    bad_credentials = {"GIT_TOKEN": SECRET, "REPO_CREDENTIAL_TWO_LINES": f"{SECRET}\nmore"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        refused = pool.submit(run_preflight, inventory, {"orchestrator_repositories": bad})
        declared = {"orchestrator_repositories": good,
                    "orchestrator_indexer_repo_credentials": credentials}  # fmt: skip
        passed = pool.submit(run_preflight, inventory, declared)
        refused_credentials = pool.submit(
            run_preflight, inventory, {"orchestrator_indexer_repo_credentials": bad_credentials}
        )
        return {"bad": refused.result(), "good": passed.result(),
                "credentials": refused_credentials.result()}  # fmt: skip


def test_good_declarations_pass(results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = results["good"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "changed=0" in result.stdout


@pytest.mark.parametrize("case", ORDER)
def test_bad_declaration_is_refused_naming_the_fix(
    results: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    index = ORDER.index(case) + 1
    expected = [f"orchestrator_repositories[{index}]", *CASES[case][1]]
    flat = assert_refused(results["bad"], case, expected)
    assert SECRET not in flat, f"{case}: the credentials were printed"
    assert "orchestrator_repositories[0] (" not in flat, "the good entry was refused"


def test_bad_credentials_are_refused_by_name_never_printed(
    results: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    flat = assert_refused(results["credentials"], "credentials", [
        'orchestrator_indexer_repo_credentials["GIT_TOKEN"]', "REPO_CREDENTIAL_<NAME>",
        'orchestrator_indexer_repo_credentials["REPO_CREDENTIAL_TWO_LINES"]', "on one line",
    ])  # fmt: skip
    assert SECRET not in flat, "a credential was printed"
