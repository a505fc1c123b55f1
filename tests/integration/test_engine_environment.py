"""What an engine's start writes to its process environment: exactly the variables LightRAG
reads from nowhere else (issue 19).

The engine hands LightRAG everything it takes as an argument; the rest (the PG storages' pool,
Milvus Lite's URI, tiktoken's cache) LightRAG 1.5.7 reads only from ``os.environ``, so the engine
exports those once at its start (settings.export_lightrag_environment, names listed with their
readers in settings.LIGHTRAG_ENVIRONMENT). An engine is started in a process of its own, with a
small environment this test chooses, and that process's environment after the start is compared
with the one it had before it imported anything (Python itself may add LC_CTYPE at its start,
PEP 538): the only differences are the documented variables, with the values computed from the
engine's configuration.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from shield_orchestrator import settings
from shield_orchestrator.engines import lightrag_setup
from shield_orchestrator.engines.config import STORAGES, VECTOR_STORAGES, EngineConfig

from tests.support.servers import PostgresServer

pytestmark = pytest.mark.integration

# Reads the EngineConfig's fields on stdin (the password is on no command line), starts the
# offline engine, prints its environment before any import and after the start, and closes it.
CHILD = """
import os
BEFORE = dict(os.environ)
import asyncio, json, sys
from shield_orchestrator.engines.config import EngineConfig
from shield_orchestrator.engines.offline import OfflineEngine

async def main() -> None:
    engine = OfflineEngine(EngineConfig(**json.load(sys.stdin)))
    await engine.start()
    try:
        print("ENVIRONMENT " + json.dumps([BEFORE, dict(os.environ)]), flush=True)
    finally:
        await engine.close()

asyncio.run(main())
"""


def _start_in_own_process(
    config: EngineConfig, rendered_root: Path, cwd: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """A new process's environment (before its imports, after the engine's start)."""
    given = {"PATH": os.environ["PATH"], "HOME": str(cwd), "PYTHONPATH": str(rendered_root)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(dataclasses.asdict(config)),
        env=given,
        cwd=cwd,  # no config.ini here: LightRAG would read one from the working directory
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("ENVIRONMENT ")]
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(lines) == 1, done.stdout
    before, after = json.loads(lines[0].removeprefix("ENVIRONMENT "))
    assert {k: before.get(k) for k in given} == given  # the child got what we gave
    return before, after


def _changes(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    assert set(before) <= set(after), f"removed: {sorted(set(before) - set(after))}"
    return {k: v for k, v in after.items() if before.get(k) != v}


def _config(tmp_path: Path, postgres_srv: PostgresServer, database: str) -> EngineConfig:
    return EngineConfig(
        workspace="environment",
        working_dir=str(tmp_path / "lightrag"),
        tokenizer="bytes",  # the offline engine's
        postgres_host="127.0.0.1",
        postgres_port=postgres_srv.port,
        postgres_user=postgres_srv.user,
        postgres_password=postgres_srv.password,
        postgres_db=database,
        storage="postgres",
        vector_storage="milvus",  # this machine's default (Debian 12: no pgvector)
    )


def test_postgres_and_milvus_storages_add_exactly_their_documented_variables(
    rendered_root: Path, postgres_srv: PostgresServer, pg_database: str, tmp_path: Path
) -> None:
    config = _config(tmp_path, postgres_srv, pg_database)
    before, after = _start_in_own_process(config, rendered_root, tmp_path)
    changed = _changes(before, after)
    assert changed == lightrag_setup.lightrag_environment(config)
    assert set(changed) <= settings.LIGHTRAG_ENVIRONMENT
    assert changed["POSTGRES_DATABASE"] == pg_database
    assert changed["POSTGRES_WORKSPACE"] == changed["MILVUS_WORKSPACE"] == ""
    assert {k for k in changed if not k.startswith(("POSTGRES_", "MILVUS_"))} == set()


def test_file_storages_leave_the_environment_as_it_was(rendered_root: Path, tmp_path: Path) -> None:
    config = EngineConfig(
        workspace="environment",
        working_dir=str(tmp_path / "lightrag"),
        tokenizer="bytes",
        storage="file",
        vector_storage="file",
    )
    before, after = _start_in_own_process(config, rendered_root, tmp_path)
    assert _changes(before, after) == {}


def test_every_documented_variable_is_exported_by_some_configuration() -> None:
    """settings.LIGHTRAG_ENVIRONMENT is the union of what the configurations export: no name
    is exported without being documented, and none is documented that nothing exports."""
    exported: set[str] = set()
    for storage, vectors, tokenizer in itertools.product(
        STORAGES, VECTOR_STORAGES, ("tiktoken", "bytes")
    ):
        config = EngineConfig(
            storage=storage, vector_storage=vectors, tokenizer=tokenizer, postgres_password="pw"
        )
        names = set(lightrag_setup.lightrag_environment(config))
        assert names <= settings.LIGHTRAG_ENVIRONMENT, (storage, vectors, tokenizer)
        assert ("TIKTOKEN_CACHE_DIR" in names) == (tokenizer == "tiktoken")
        exported |= names
    assert exported == settings.LIGHTRAG_ENVIRONMENT


def test_another_name_is_refused_and_nothing_is_written() -> None:
    before = dict(os.environ)
    with pytest.raises(ValueError, match="SHIELD_NOT_LIGHTRAGS") as caught:
        settings.export_lightrag_environment(
            {"POSTGRES_HOST": "elsewhere", "SHIELD_NOT_LIGHTRAGS": "x"}
        )
    assert "LIGHTRAG_ENVIRONMENT" in str(caught.value)
    assert dict(os.environ) == before
