"""The preflight refuses TLS without CA material, naming the variable and the fix (issue 20).

playbooks/preflight.yml on localhost in the four groups (tests/repo/test_preflight.py's
inventory), with ``orchestrator_tls_enabled: true``: only facts and asserts, nothing changes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.repo.test_preflight import inventory, run_preflight

__all__ = ["inventory"]  # the module-scoped fixture, shared with test_preflight.py

CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CA_KEY_PEM = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"


def test_no_ca_and_no_managed_server_is_refused(inventory: Path, tmp_path: Path) -> None:
    """Nothing would make a CA (Redis and PostgreSQL unmanaged) and none is given."""
    result = run_preflight(inventory, {
        "orchestrator_tls_enabled": True, "orchestrator_tls_ca_dir": str(tmp_path / "ca"),
        "redis_manage": False, "postgresql_manage": False,
    })  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert "the app has no CA certificate" in out, out[-3000:]
    assert "orchestrator_tls_ca_cert" in out
    assert "vault_orchestrator_tls_ca_cert" in out


def test_a_ca_certificate_without_its_key_is_refused_where_a_server_is_managed(
    inventory: Path, tmp_path: Path
) -> None:
    """The play would have to issue Redis's certificate, but has only the CA's certificate."""
    result = run_preflight(inventory, {
        "orchestrator_tls_enabled": True, "orchestrator_tls_ca_dir": str(tmp_path / "ca"),
        "orchestrator_tls_ca_cert": CA_PEM,
    })  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert "the key of the CA" in out, out[-3000:]
    assert "orchestrator_tls_ca_key" in out


def test_a_ca_certificate_that_is_not_pem_is_refused(inventory: Path, tmp_path: Path) -> None:
    result = run_preflight(inventory, {
        "orchestrator_tls_enabled": True, "orchestrator_tls_ca_dir": str(tmp_path / "ca"),
        "orchestrator_tls_ca_cert": "CHANGE-ME", "redis_manage": False, "postgresql_manage": False,
    })  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert "orchestrator_tls_ca_cert is not a PEM certificate" in out, out[-3000:]


def test_an_api_host_needs_the_key_of_the_ca(inventory: Path, tmp_path: Path) -> None:
    """Redis and PostgreSQL unmanaged (the operator's CA verifies them), but this host serves the
    API, whose HTTPS certificate the play issues: the CA's key is needed there too."""
    result = run_preflight(inventory, {
        "orchestrator_tls_enabled": True, "orchestrator_tls_ca_dir": str(tmp_path / "ca"),
        "orchestrator_tls_ca_cert": CA_PEM, "redis_manage": False, "postgresql_manage": False,
    })  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert "serves the API, whose HTTPS" in out, out[-3000:]
    assert "the key of the CA is missing" in out
    assert "vault_orchestrator_tls_ca_key" in out


@pytest.mark.parametrize("managed", [True, False])
def test_given_ca_material_passes_the_tls_checks(
    inventory: Path, tmp_path: Path, managed: bool
) -> None:
    """A CA that the play makes (managed servers) or the operator's (its certificate, and its key
    for the API's certificate): no refusal."""
    extra: dict[str, object] = {"orchestrator_tls_enabled": True,
                                "orchestrator_tls_ca_dir": str(tmp_path / "ca")}  # fmt: skip
    if not managed:
        extra |= {"redis_manage": False, "postgresql_manage": False,
                  "orchestrator_tls_ca_cert": CA_PEM,
                  "orchestrator_tls_ca_key": CA_KEY_PEM}  # fmt: skip
    result = run_preflight(inventory, extra)
    out = result.stdout + result.stderr
    task = "Check the CA certificate the app verifies Redis and PostgreSQL with (TLS)"
    assert f"TASK [orchestrator : {task}]" in out, out[-3000:]
    assert "no CA certificate" not in out
    assert "the key of the CA" not in out
    assert "Check that the CA can issue the API's certificate (HTTPS)" in out
