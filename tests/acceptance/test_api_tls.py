"""The API over HTTPS (issue 20): ``python -m shield_orchestrator.api`` as the service runs it
(two uvicorn processes on one socket, api/processes.py), given a certificate and key issued by a
CA made here with the roles' own issuing tasks (roles/redis tasks/tls_issue.yml, openssl), as
``orchestrator_tls_enabled`` renders them (api/config.py TLS_CERT_FILE / TLS_KEY_FILE).

What is proved, on real processes over the loopback:
- a client that verifies the chain against the deployment's CA and the name 127.0.0.1 (or
  localhost) gets its answers over TLS 1.2 or 1.3, one new connection after another on the
  socket the processes share, and the API key is still required; a TLS 1.2 client is served;
- plaintext HTTP on the same port gets no HTTP answer; a client trusting another CA, and a
  client that speaks only TLS 1.1, fail their handshake;
- scripts/shieldctl reaches it with the CA (--cacert, SHIELD_CA_FILE), and without it says
  which variable gives the CA; an http:// URL is told that the API answers https only;
- a missing key, or one that is not the certificate's, stops the service before any process
  starts: exit 2, one line naming the file and the fix, no key material in the output.
"""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_shieldctl import shieldctl
from tests.support.api import HEADERS
from tests.support.servers import LOOPBACK, TlsFiles, _stop, free_port, issue_certificate

pytestmark = pytest.mark.acceptance

PROCESSES = 2
TLS1_2 = ssl.TLSVersion.TLSv1_2


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """The deployment CA and the API's certificate, for the names the role gives a loopback API."""
    ca_dir = tmp_path_factory.mktemp("tls") / "ca"
    return issue_certificate(ca_dir, "api-test", ["IP:127.0.0.1", "DNS:localhost"])


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return issue_certificate(tmp_path_factory.mktemp("tls") / "ca", "x", ["IP:127.0.0.1"]).ca


def https_client(ca: Path, **kwargs: Any) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=10, **kwargs)


@pytest.fixture
def https_api(
    env: dict[str, str], tmp_path: Path, tls_files: TlsFiles, redis_client: Any
) -> Iterator[str]:
    """The API service with HTTPS on a free port; its base URL once a verified GET answers."""
    port = free_port()
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shield_orchestrator.api", "--host", LOOPBACK,
             "--port", str(port), "--processes", str(PROCESSES),
             "--tls-cert", str(tls_files.cert), "--tls-key", str(tls_files.key)],
            env=env | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"https://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 60
        with https_client(tls_files.ca) as client:
            while True:
                assert proc.poll() is None, log_path.read_text(errors="replace")
                try:
                    if client.get(f"{base}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, log_path.read_text(errors="replace")
                    time.sleep(0.2)
        yield base
    finally:
        _stop(proc, signal.SIGTERM, 30)
        assert "PRIVATE KEY" not in log_path.read_text(errors="replace")


def served_by(client: httpx.Client, base: str, requests: int) -> set[str]:
    """The protocol versions of ``requests`` verified requests, each on its own connection."""
    versions = set()
    for _ in range(requests):
        headers = HEADERS | {"Connection": "close"}
        with client.stream("GET", f"{base}/health/detailed", headers=headers) as response:
            stream = response.extensions["network_stream"]
            versions.add(stream.get_extra_info("ssl_object").version())
            response.read()
        assert response.status_code in (200, 503), response.text  # 503: no worker runs here
    return versions


def test_https_is_served_and_verified(https_api: str, tls_files: TlsFiles) -> None:
    with https_client(tls_files.ca) as client:
        assert served_by(client, https_api, 2 * PROCESSES) <= {"TLSv1.2", "TLSv1.3"}
        assert client.get(f"{https_api}/health/detailed").status_code == 401  # the key still
    # the certificate names localhost too (the role's names for a loopback API)
    with https_client(tls_files.ca) as client:
        local = https_api.replace(LOOPBACK, "localhost")
        assert client.get(f"{local}/health").status_code == 200


def test_plaintext_gets_no_http_answer(https_api: str) -> None:
    port = int(https_api.rsplit(":", 1)[1])
    with socket.create_connection((LOOPBACK, port), timeout=10) as plain:
        plain.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = b""
        try:
            while chunk := plain.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    assert not answer.startswith(b"HTTP/"), answer[:200]
    with pytest.raises(httpx.TransportError):
        httpx.get(https_api.replace("https://", "http://") + "/health", timeout=10)


def test_another_ca_and_old_tls_are_refused(
    https_api: str, tls_files: TlsFiles, other_ca: Path
) -> None:
    with https_client(other_ca) as client, pytest.raises(httpx.ConnectError) as refused:
        client.get(f"{https_api}/health")
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    with httpx.Client(verify=client_context(tls_files.ca, TLS1_2), timeout=10) as client:
        assert client.get(f"{https_api}/health").status_code == 200
    old = client_context(tls_files.ca, ssl.TLSVersion.TLSv1_1)
    with httpx.Client(verify=old, timeout=10) as client, pytest.raises(httpx.ConnectError):
        client.get(f"{https_api}/health")


def client_context(ca: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    """A verifying client that speaks ``version`` only (TLS 1.1 allowed by its own settings:
    only the server can refuse it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # ssl deprecates TLS 1.1 itself
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    return context


def test_shieldctl_over_https(https_api: str, tls_files: TlsFiles, tmp_path: Path) -> None:
    done = shieldctl(https_api, tmp_path, "--cacert", str(tls_files.ca), "jobs")
    assert done.returncode == 0, done.stderr
    done = shieldctl(https_api, tmp_path, "jobs", SHIELD_CA_FILE=str(tls_files.ca))
    assert done.returncode == 0, done.stderr
    done = shieldctl(https_api, tmp_path, "jobs")  # no CA: the system's CAs do not know it
    assert done.returncode == 2
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr
    assert "--cacert or SHIELD_CA_FILE" in done.stderr
    plain = https_api.replace("https://", "http://")
    done = shieldctl(plain, tmp_path, "jobs")
    assert done.returncode == 2
    assert "an API with TLS on answers https:// only" in done.stderr, done.stderr


@pytest.mark.parametrize("problem", ["missing", "another certificate's"])
def test_an_unusable_key_stops_the_service_naming_the_file(
    env: dict[str, str], tmp_path: Path, tls_files: TlsFiles, other_ca: Path, problem: str
) -> None:
    key = tmp_path / "absent.key" if problem == "missing" else other_ca.parent / "x.key"
    done = subprocess.run(
        [sys.executable, "-m", "shield_orchestrator.api", "--host", LOOPBACK,
         "--port", str(free_port()), "--tls-cert", str(tls_files.cert), "--tls-key", str(key)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert str(key) in done.stderr
    assert "Cannot serve HTTPS with them" in done.stderr
    assert "PRIVATE KEY" not in done.stdout + done.stderr
