"""The temporal and orchestrator_indexer roles: tags, unit contents, the cache trim script.

- Every task of each role carries its purpose tag through tasks/main.yml, so
  `site.yml -t indexer` reaches the indexers and only them (`-t temporal` likewise).
- The rendered units (templated here with the roles' defaults) say what the READMEs promise:
  the dev server pinned to loopback ports with the version check off, SQLite in WAL under the
  state directory; the indexer's TimeoutStopSec = graceful shutdown + margin and no secret on
  its command line, the TLS key by path only.
- The cache trim script removes the least recently fetched mirrors down to the cap, skips a
  mirror whose lock an indexer holds, and removes interrupted clones.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import jinja2.nativetypes
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TRIM = REPO / "roles" / "orchestrator_indexer" / "files" / "shield-indexer-cache-trim"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("role", "tag"), [("temporal", "temporal"), ("orchestrator_indexer", "indexer")]
)
def test_every_task_carries_the_purpose_tag(role: str, tag: str) -> None:
    [main] = _yaml(REPO / "roles" / role / "tasks" / "main.yml")
    for imp in main["block"]:
        assert tag in imp.get("tags", []), f"{role}: {imp['name']} lacks tag {tag}"


def _render(role: str, template: str, **overrides: Any) -> str:
    """The template with the role's defaults and vars (plus the app's names it reads)."""
    values: dict[str, Any] = {
        "ansible_managed": "managed",
        "orchestrator_user": "shield",
        "orchestrator_group": "shield",
        "orchestrator_config_dir": "/etc/shield-orchestrator",
        "orchestrator_state_dir": "/var/lib/shield-orchestrator",
        "orchestrator_base_dir": "/opt/shield-orchestrator",
    }
    for r in ("temporal", role):
        values.update(_yaml(REPO / "roles" / r / "defaults" / "main.yml"))
        values.update(_yaml(REPO / "roles" / r / "vars" / "main.yml"))
    values.update(overrides)
    # systemd units, not HTML: nothing to escape; trim_blocks as the template module
    env = jinja2.Environment(  # noqa: S701
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True
    )
    # Variables resolve to native values, as in ansible-core (a list default stays a list).
    native = jinja2.nativetypes.NativeEnvironment(undefined=jinja2.StrictUndefined)
    for e in (env, native):
        e.filters["comment"] = lambda s: f"# {s}"
        e.filters["bool"] = lambda v: str(v).lower() in ("true", "yes", "1")
        e.tests["match"] = lambda v, pattern: re.match(pattern, str(v)) is not None

    # The defaults refer to each other: passes until each one's references are resolved (one
    # whose references are not yet, or that needs lookups or role_path, waits or stays as is:
    # the units do not use those).
    resolved = dict(values)
    for _ in range(6):
        for name, value in resolved.items():
            if isinstance(value, str) and "{{" in value:
                with contextlib.suppress(jinja2.TemplateError, TypeError):
                    resolved[name] = native.from_string(value).render(resolved)
    text = (REPO / "roles" / role / "templates" / template).read_text(encoding="utf-8")
    return env.from_string(text).render(resolved)


def _exec_start(unit: str) -> str:
    lines = unit.split("ExecStart=", 1)[1].splitlines()
    out = []
    for line in lines:
        out.append(line.rstrip("\\").strip())
        if not line.endswith("\\"):
            break
    return " ".join(out)


def test_dev_server_unit_pins_loopback_ports_and_never_calls_home() -> None:
    unit = _render(
        "temporal",
        "shield-temporal.service.j2",
        __temporal_version="1.9.1",
        __temporal_tls_env={},
        __temporal_tls=False,
    )
    start = _exec_start(unit)
    for flag in (
        "--ip 127.0.0.1", "--port 7233", "--http-port 7243", "--metrics-port 7235", "--headless",
        "--db-filename /var/lib/shield-temporal/temporal.sqlite",
        "--sqlite-pragma journal_mode=wal",
        "--dynamic-config-value frontend.enableServerVersionCheck=false", "--namespace shield",
    ):  # fmt: skip
        assert flag in start, f"ExecStart lacks {flag!r}: {start}"
    assert "TEMPORAL_VERSION_CHECK_DISABLED=1" in unit
    for line in ("DynamicUser=yes", "StateDirectory=shield-temporal", "ProtectSystem=strict"):
        assert line in unit.splitlines(), f"the unit lacks {line}"


def test_dev_server_unit_with_the_ui() -> None:
    start = _exec_start(
        _render(
            "temporal",
            "shield-temporal.service.j2",
            temporal_ui_port=8233,
            __temporal_version="1.9.1",
            __temporal_tls_env={},
            __temporal_tls=False,
        )
    )
    assert "--ui-port 8233 --ui-disable-news-fetch" in start, start
    assert "--headless" not in start, start


def test_indexer_unit_stops_after_the_grace_and_keeps_secrets_off_argv() -> None:
    unit = _render(
        "orchestrator_indexer",
        "shield-orchestrator-indexer@.service.j2",
        orchestrator_indexer_graceful_shutdown_timeout=90,
        orchestrator_temporal_tls_key="-----BEGIN PRIVATE KEY-----secret",
        # the IP firewall's lines (the orchestrator role's allow-lists, from the inventory) are
        # rendered by Ansible itself in tests/render/test_ip_firewall.py
        orchestrator_ip_firewall=False,
    )
    lines = unit.splitlines()
    assert "TimeoutStopSec=105" in lines, "TimeoutStopSec must be the grace (90) + margin (15)"
    assert "KillMode=mixed" in lines
    start = _exec_start(unit)
    for flag in ("--cache-dir /var/cache/shield-orchestrator/mirrors", "--graceful-shutdown-s 90"):
        assert flag in start, f"ExecStart lacks {flag!r}: {start}"
    # Temporal's address, namespace, queue and TLS files come from the Settings, as the API's
    # (tests/render/test_temporal_settings.py): none on the command line
    for flag in ("--temporal", "--namespace", "--task-queue", "--tls-"):
        assert flag not in start, f"ExecStart names {flag!r}: {start}"
    assert "secret" not in unit
    assert "EnvironmentFile=/etc/shield-orchestrator/shield-orchestrator.env" in lines
    rw = next(x for x in lines if x.startswith("ReadWritePaths="))
    assert "/var/cache/shield-orchestrator/mirrors" in rw, rw


def _mirror(cache: Path, name: str, size: int, age_s: int) -> Path:
    path = cache / name
    path.mkdir()
    (path / "pack").write_bytes(os.urandom(size))
    fetch_head = path / "FETCH_HEAD"
    fetch_head.touch()
    t = 1_700_000_000 - age_s
    os.utime(fetch_head, (t, t))
    return path


def test_cache_trim_removes_least_recently_fetched_and_skips_locked(tmp_path: Path) -> None:
    mib = 1024 * 1024
    busy = _mirror(tmp_path, "busy-bbbbbbbbbbbb.git", 2 * mib, age_s=3000)  # the oldest
    old = _mirror(tmp_path, "old-aaaaaaaaaaaa.git", 2 * mib, age_s=2000)
    recent = _mirror(tmp_path, "recent-cccccccccccc.git", 1 * mib, age_s=10)
    partial = tmp_path / "half-dddddddddddd.partial"
    partial.mkdir()
    (partial / "objects").write_bytes(os.urandom(1024))
    with (tmp_path / "busy-bbbbbbbbbbbb.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # an indexer fetching it (mirrors.py's lock)
        result = subprocess.run(
            ["/bin/sh", str(TRIM), str(tmp_path), "4"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not partial.exists(), result.stdout
    assert not old.exists(), result.stdout
    assert busy.exists(), result.stdout
    assert recent.exists(), result.stdout
    assert "kept busy-bbbbbbbbbbbb.git (an indexer is fetching it)" in result.stdout
    assert "(cap 4096 KiB)" in result.stdout


def test_cache_trim_leaves_a_cache_under_the_cap(tmp_path: Path) -> None:
    mirror = _mirror(tmp_path, "small-eeeeeeeeeeee.git", 1024, age_s=5000)
    result = subprocess.run(
        ["/bin/sh", str(TRIM), str(tmp_path), "10"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert mirror.exists()
    assert "removed" not in result.stdout
