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


@pytest.mark.parametrize("managed", [True, False])
def test_given_ca_material_passes_the_tls_checks(
    inventory: Path, tmp_path: Path, managed: bool
) -> None:
    """A CA that the play makes (managed servers) or the operator's certificate: no refusal."""
    extra: dict[str, object] = {"orchestrator_tls_enabled": True,
                                "orchestrator_tls_ca_dir": str(tmp_path / "ca")}  # fmt: skip
    if not managed:
        extra |= {"redis_manage": False, "postgresql_manage": False,
                  "orchestrator_tls_ca_cert": CA_PEM}  # fmt: skip
    result = run_preflight(inventory, extra)
    out = result.stdout + result.stderr
    task = "Check the CA certificate the app verifies Redis and PostgreSQL with (TLS)"
    assert f"TASK [orchestrator : {task}]" in out, out[-3000:]
    assert "no CA certificate" not in out
    assert "the key of the CA" not in out
