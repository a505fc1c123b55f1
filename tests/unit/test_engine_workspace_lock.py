"""engines/workspace_lock.py: the lease's scope and key (pure; Redis in the integration test)."""

from __future__ import annotations

import socket

from shield_orchestrator import keys
from shield_orchestrator.engines.workspace_lock import lease_host


def test_file_storages_lease_per_host_postgres_fleet_wide() -> None:
    assert lease_host(shared_storage=False, host="worker-b") == "worker-b"
    assert lease_host(shared_storage=False, host="") == socket.gethostname()
    assert lease_host(shared_storage=True, host="worker-b") == ""


def test_lease_key_names_workspace_and_host() -> None:
    assert keys.lightrag_workspace("ws", "h1") == f"{keys.KEY_PREFIX}lightrag:workspace:ws@h1"
    assert keys.lightrag_workspace("ws") == f"{keys.KEY_PREFIX}lightrag:workspace:ws"
