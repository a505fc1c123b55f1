"""shield.orchestrator.redis_stream_group against a real redis-server (session `redis_srv`).

The module's `run()` is exercised directly (report, create, idempotence, check mode, consumers,
absent, wrong password, a key of another type), then once through ansible-playbook so the
Ansible wiring (argument spec, no_log, check mode) is covered too. Names come from the
rendered keys module, so both rendered trees exercise their own stream and group names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.servers import RedisServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "collections"))
from ansible_collections.shield.orchestrator.plugins.modules import (  # noqa: E402
    redis_stream_group as mod,
)


@pytest.fixture
def names() -> dict[str, str]:
    """A fresh stream and group for each test (both trees' odd characters included)."""
    tag = uuid.uuid4().hex[:8]
    return {"stream": f"test{{rsg}}:ingest 'q' \"{tag}\"", "group": f"light\"rag' workers {tag}"}


@pytest.fixture
def client(redis_srv: RedisServer) -> Iterator[redis.Redis]:
    c = redis.Redis(port=redis_srv.port, password=redis_srv.password, decode_responses=True)
    yield c
    c.close()


def params(srv: RedisServer, names: dict[str, str], **over: Any) -> dict[str, Any]:
    base = {
        "host": "127.0.0.1",
        "port": srv.port,
        "db": 0,
        "username": "",
        "password": srv.password,
        "state": "present",
        "start_id": "0",
        "timeout": 5.0,
        **names,
    }
    base.update(over)
    return base


def test_check_mode_reports_a_missing_group_without_creating_it(
    redis_srv: RedisServer, names: dict[str, str], client: redis.Redis
) -> None:
    result = mod.run(params(redis_srv, names), check_mode=True)
    assert result["changed"]
    assert not result["exists"]
    assert not result["stream_exists"]
    assert client.exists(names["stream"]) == 0


def test_present_creates_once_then_is_idempotent(
    redis_srv: RedisServer, names: dict[str, str], client: redis.Redis
) -> None:
    first = mod.run(params(redis_srv, names), check_mode=False)
    second = mod.run(params(redis_srv, names), check_mode=False)
    assert first["changed"]
    assert first["exists"]
    assert first["stream_exists"]
    assert not second["changed"]
    assert second["exists"]
    groups = client.xinfo_groups(names["stream"])
    assert [g["name"] for g in groups] == [names["group"]]


def test_consumers_are_reported_with_their_pending_entries(
    redis_srv: RedisServer, names: dict[str, str], client: redis.Redis
) -> None:
    mod.run(params(redis_srv, names), check_mode=False)
    client.xadd(names["stream"], {"v": "1"})
    client.xadd(names["stream"], {"v": "2"})
    client.xreadgroup(names["group"], "host-a:1", {names["stream"]: ">"}, count=2)
    client.xgroup_createconsumer(names["stream"], names["group"], "host-b:1")
    result = mod.run(params(redis_srv, names), check_mode=True)
    assert not result["changed"]
    pending = {c["name"]: c["pending"] for c in result["consumers"]}
    assert pending == {"host-a:1": 2, "host-b:1": 0}
    assert result["stream_length"] == 2
    assert result["group_info"]["pending"] == 2


def test_absent_destroys_and_check_mode_only_reports(
    redis_srv: RedisServer, names: dict[str, str], client: redis.Redis
) -> None:
    mod.run(params(redis_srv, names), check_mode=False)
    dry = mod.run(params(redis_srv, names, state="absent"), check_mode=True)
    assert dry["changed"]
    assert len(client.xinfo_groups(names["stream"])) == 1
    done = mod.run(params(redis_srv, names, state="absent"), check_mode=False)
    assert done["changed"]
    assert not done["exists"]
    assert client.xinfo_groups(names["stream"]) == []


def test_wrong_password_and_wrong_type_are_errors(
    redis_srv: RedisServer, names: dict[str, str], client: redis.Redis
) -> None:
    with pytest.raises(mod.RespError, match=r"WRONGPASS|invalid password"):
        mod.run(params(redis_srv, names, password="not-the-password"), check_mode=True)
    client.set(names["stream"], "a string")
    with pytest.raises(mod.RespError, match="WRONGTYPE"):
        mod.run(params(redis_srv, names), check_mode=True)


def test_through_ansible_check_mode_changes_nothing(
    redis_srv: RedisServer, names: dict[str, str], client: redis.Redis, tmp_path: Path
) -> None:
    play = [
        {
            "name": "probe",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Read the group",
                    "shield.orchestrator.redis_stream_group": {
                        "port": redis_srv.port,
                        "password": redis_srv.password,
                        **names,
                    },
                    "check_mode": True,
                    "register": "g",
                    "no_log": True,
                },
                {"name": "Show", "ansible.builtin.debug": {"msg": "RESULT={{ g | to_json }}"}},
            ],
        }
    ]
    playbook = tmp_path / "probe.yml"
    playbook.write_text(json.dumps(play))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(playbook),
            "-i",
            "localhost,",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert redis_srv.password not in out.stdout
    assert "RESULT=" in out.stdout
    assert '\\"exists\\": false' in out.stdout.replace("\\\\", "\\")
    assert client.exists(names["stream"]) == 0
