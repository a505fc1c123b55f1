"""The production inventory with a vault made here: its preflight passes real secrets and
refuses the example's placeholders, a weak value and a missing one, naming the variable.

The inventory is copied into tmp (the repository never holds a real vault), its vault.yml is
made from vault.yml.example and encrypted with ansible-vault, and playbooks/preflight.yml runs
with ``--vault-password-file``. Every host runs with the local connection (``-e
ansible_connection=local``): the production addresses are never contacted; the existing Redis
(redis_manage false) is not contacted by its role anyway. The preflight only gathers facts and
asserts, so nothing on this machine changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from secrets import token_hex

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _good_vault() -> dict[str, object]:
    return {
        "vault_redis_password": token_hex(20),
        "vault_redis_app_password": token_hex(20),
        "vault_postgresql_password": token_hex(20),
        "vault_orchestrator_api_keys": [token_hex(20)],
        "vault_orchestrator_ollama_api_key": "",
    }


def _example_vault() -> dict[str, object]:
    example = REPO / "inventories" / "production" / "group_vars" / "all" / "vault.yml.example"
    return dict(yaml.safe_load(example.read_text()))


CASES: dict[str, tuple[dict[str, object], list[str]]] = {
    "good": (_good_vault(), []),
    "unedited_example": (_example_vault(), ["redis_password", "placeholder"]),
    "weak_postgres": (
        {**_good_vault(), "vault_postgresql_password": "changeme1234"},
        ["postgresql_password"],
    ),
    "missing_app_password": (
        {k: v for k, v in _good_vault().items() if k != "vault_redis_app_password"},
        ["vault_redis_app_password"],
    ),
}


def _run(case: str, vault: dict[str, object], root: Path) -> subprocess.CompletedProcess[str]:
    inventory = root / case / "production"
    shutil.copytree(REPO / "inventories" / "production", inventory)
    vault_file = inventory / "group_vars" / "all" / "vault.yml"
    vault_file.write_text(yaml.safe_dump(vault))
    password_file = root / case / "vault-pass"
    password_file.write_text(token_hex(16))
    password_file.chmod(0o600)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    subprocess.run(
        [
            str(BIN / "ansible-vault"),
            "encrypt",
            str(vault_file),
            "--vault-password-file",
            str(password_file),
        ],
        check=True,
        capture_output=True,
        env=env,
        cwd=REPO,
    )
    assert vault_file.read_text().startswith("$ANSIBLE_VAULT;")
    tokenizer = root / case / "o200k_base.tiktoken"
    tokenizer.write_text("aGVsbG8= 0\n")  # preflight checks presence and name only
    extra = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "orchestrator_wheelhouse_dir": "",
        "orchestrator_engine_tiktoken_file": str(tokenizer),
    }
    cmd = [
        str(BIN / "ansible-playbook"),
        str(REPO / "playbooks" / "preflight.yml"),
        "-i",
        str(inventory),
        "--vault-password-file",
        str(password_file),
        "-e",
        yaml.safe_dump(extra, default_flow_style=True).strip(),
    ]
    return subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("production")
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {case: pool.submit(_run, case, vault, root) for case, (vault, _) in CASES.items()}
        return {case: run.result() for case, run in runs.items()}


def test_a_real_vault_passes(results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    run = results["good"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


@pytest.mark.parametrize("case", [c for c in CASES if c != "good"])
def test_each_refusal_names_the_variable(
    case: str, results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    run = results[case]
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    for needle in CASES[case][1]:
        assert needle in output, f"{case}: {needle!r} not in\n{output[-3000:]}"
