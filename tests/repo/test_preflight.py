"""Bad input fails in preflight, before anything changes, with the variable, value and fix.

Runs playbooks/preflight.yml (what site.yml runs first) against localhost with the local
connection: the play only gathers facts, asserts and sets facts, so nothing on this machine
changes. Each case overrides one variable with -e and checks the failure message names it,
its value and the fix; the sandbox defaults pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from secrets import token_hex

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "playbooks" / "preflight.yml"
TOKENIZER_FILE = "<an o200k_base.tiktoken file>"  # replaced by a real file on the controller


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """localhost in all four groups, local connection, this interpreter, random secrets."""
    path = tmp_path_factory.mktemp("inv") / "hosts.yml"
    host = {
        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    }
    groups = {
        g: {"hosts": host}
        for g in ("redis", "postgresql", "orchestrator_api", "orchestrator_workers")
    }
    # the roles hold no secret: the inventory gives them, as a real one does
    secrets = {
        "redis_password": token_hex(20),
        "redis_app_password": token_hex(20),
        "postgresql_password": token_hex(20),
        "orchestrator_api_keys": [token_hex(20)],
    }
    path.write_text(yaml.safe_dump({"all": {"children": groups, "vars": secrets}}))
    return path


def run_preflight(inventory: Path, extra: dict[str, object]) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        str(PLAYBOOK),
        "-i",
        str(inventory),
        "-e",
        json.dumps({"orchestrator_wheelhouse_dir": "", **extra}),
    ]
    return subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def assert_refused(
    result: subprocess.CompletedProcess[str], case: str, expected: Sequence[str]
) -> str:
    """The preflight run failed, its output names every ``expected`` text (whitespace folded),
    and nothing changed; the folded output, for further checks."""
    out = result.stdout + result.stderr
    assert result.returncode != 0, f"{case}: preflight passed\n{out[-2000:]}"
    flat = " ".join(out.split())
    missing = [e for e in expected if " ".join(e.split()) not in flat]
    assert not missing, f"{case}: message lacks {missing}\n{out[-3000:]}"
    assert "changed=0" in out, f"{case}: something changed\n{out[-2000:]}"
    return flat


def test_sandbox_defaults_pass(inventory: Path) -> None:
    """The role defaults plus the inventory's secrets: nothing to refuse."""
    result = run_preflight(inventory, {})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "changed=0" in result.stdout, result.stdout[-2000:]


CASES = {
    "pool_size_zero": (
        {"orchestrator_workers_pool_size": 0},
        ["orchestrator_workers_pool_size", "0", "integer >= 1"],
    ),
    "ttl_not_integer": (
        {"orchestrator_workers_job_status_ttl": "1h"},
        ["orchestrator_workers_job_status_ttl", "1h", "must be an integer"],
    ),
    "lock_ttl_below_its_minimum": (
        {"orchestrator_engine_workspace_lock_ttl_s": 2},
        ["orchestrator_engine_workspace_lock_ttl_s=2", "integer >= 3"],
    ),
    "work_mem_zero": (
        {"postgresql_work_mem_mb": 0},
        ["postgresql_work_mem_mb=0", "integers >= 1"],
    ),
    "unknown_engine": (
        {"orchestrator_engine": "gpt"},
        ["orchestrator_engine=gpt", "offline, lightrag"],
    ),
    "stream_with_newline": (
        {"orchestrator_ingestion_stream": "shield:\nqueue"},
        ["orchestrator_ingestion_stream", "control characters"],
    ),
    "empty_group": (
        {"orchestrator_consumer_group": ""},
        ["orchestrator_consumer_group", "non-empty"],
    ),
    "same_streams": (
        {"orchestrator_events_stream": "shield:ingestion_queue"},
        ["three different keys"],
    ),
    "lightrag_many_processes": (
        {
            "orchestrator_engine": "lightrag",
            "orchestrator_workers_processes": 2,
            "orchestrator_engine_vector_storage": "milvus",
            "orchestrator_engine_tiktoken_file": TOKENIZER_FILE,
        },
        [
            "orchestrator_workers_processes=2",
            "orchestrator_engine_vector_storage=milvus",
            "pgvector",
            "lightrag_server",
        ],
    ),
    "workspace_name": (
        {"orchestrator_workspaces": [{"name": "default"}, {"name": "team-b"}]},
        ["orchestrator_workspaces=", "team-b", "letters, digits and _", "[{name: default}"],
    ),
    "workspace_twice": (
        {"orchestrator_workspaces": [{"name": "a"}, {"name": "a"}]},
        ["orchestrator_workspaces=", "no name twice"],
    ),
    "workspace_old_variable": (
        {"orchestrator_api_workspaces": ["default", "b"]},
        ["orchestrator_api_workspaces", "replaced", "orchestrator_workspaces"],
    ),
    "lightrag_without_tokenizer_file": (
        {"orchestrator_engine": "lightrag"},
        ["orchestrator_engine_tiktoken_file", "o200k_base", "without a download"],
    ),
    "production_without_vault": (
        {
            "orchestrator_deployment_environment": "production",
            "redis_password": "{{ vault_redis_password }}",
        },
        ["redis_password", "vault_redis_password", "ansible-vault"],
    ),
    "production_with_sandbox_secrets": (
        {
            "orchestrator_deployment_environment": "production",
            "redis_app_password": "shield-sandbox-redis-password",
        },
        ["production", "sandbox default", "ansible-vault"],
    ),
    "redis_password_placeholder": (
        {"redis_password": "changeme12345678"},
        ["redis_password is a placeholder", "changeme", "vault_redis_password"],
    ),
    "redis_password_short": (
        {"redis_password": "Zq8v2Lk0Pw3n"},
        ["redis_password is shorter than 16 characters", "openssl rand"],
    ),
    "postgresql_password_example_copy": (
        {"postgresql_password": "CHANGE-ME-postgresql-password"},
        ["postgresql_password is a placeholder", "change-me", "vault_postgresql_password"],
    ),
    "postgresql_password_repetitive": (
        {"postgresql_password": "abababababababababab"},
        ["postgresql_password has fewer than 6 distinct characters"],
    ),
    "redis_password_unset": (
        {"redis_password": ""},
        ["redis_password is not set", "openssl rand", "vault_redis_password"],
    ),
    "postgresql_password_unset": (
        {"postgresql_password": ""},
        ["postgresql_password is not set", "vault_postgresql_password"],
    ),
    "stream_outside_the_prefix": (
        {"orchestrator_events_stream": "other:events"},
        ["orchestrator_events_stream", "other:events", "orchestrator_key_prefix", "ACL"],
    ),
    "eviction_policy": (
        {"redis_maxmemory_policy": "allkeys-lru"},
        ["redis_maxmemory_policy=allkeys-lru", "noeviction"],
    ),
}


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tiktoken") / "o200k_base.tiktoken"
    path.write_text("aGVsbG8= 0\n")  # the format's shape; preflight checks presence and name only
    return str(path)


def with_file(extra: dict[str, object], tokenizer_file: str) -> dict[str, object]:
    return {k: tokenizer_file if v == TOKENIZER_FILE else v for k, v in extra.items()}


def test_lightrag_with_a_tokenizer_file_passes(inventory: Path, tokenizer_file: str) -> None:
    extra = {"orchestrator_engine": "lightrag", "orchestrator_engine_tiktoken_file": tokenizer_file}
    result = run_preflight(inventory, extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.fixture(scope="module")
def results(inventory: Path, tokenizer_file: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case's run, three at a time (each is an ansible-playbook start-up)."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            case: pool.submit(run_preflight, inventory, with_file(extra, tokenizer_file))
            for case, (extra, _) in CASES.items()
        }
        return {case: f.result() for case, f in futures.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_in_preflight_naming_the_fix(
    results: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    _, expected = CASES[case]
    assert_refused(results[case], case, expected)
