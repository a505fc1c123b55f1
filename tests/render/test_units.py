"""The shield units' hardening lines, rendered with the role defaults and with alt_values.

PYTHONSAFEPATH=1 beside an ExecStart that runs ``python -m`` from the service-writable state
directory (without it that directory is first on sys.path); LimitNOFILE sized from the
concurrency that the unit's process serves.
"""

from __future__ import annotations

import jinja2
import pytest

from tests.render.templates import REPO, role_values

UNITS = {
    "api": REPO / "roles/orchestrator/templates/shield-orchestrator-api.service.j2",
    "worker": REPO / "roles/orchestrator_workers/templates/shield-orchestrator-worker@.service.j2",
}
MODULES = {"api": "shield_orchestrator.api", "worker": "shield_orchestrator.workers"}
RENDERED = ("Environment", "LimitNOFILE")  # ExecStart names role vars: read, not rendered


def unit_lines(unit: str, variant: str) -> dict[str, list[str]]:
    """Directive -> its values, for the lines whose Jinja uses only role defaults."""
    values = role_values(variant)
    found: dict[str, list[str]] = {}
    for line in UNITS[unit].read_text().splitlines():
        key, sep, value = line.partition("=")
        if not sep or key not in (*RENDERED, "ExecStart"):
            continue
        if key in RENDERED:
            value = jinja2.Template(value, undefined=jinja2.StrictUndefined).render(values)
        found.setdefault(key, []).append(value)
    return found


@pytest.mark.parametrize("variant", ["default", "alt"])
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_python_m_never_imports_from_the_working_directory(unit: str, variant: str) -> None:
    lines = unit_lines(unit, variant)
    assert [e.split()[-2:] for e in lines["ExecStart"]] == [["-m", MODULES[unit]]]
    assert any("PYTHONSAFEPATH=1" in e.split() for e in lines["Environment"])


@pytest.mark.parametrize("variant", ["default", "alt"])
def test_the_api_may_open_a_descriptor_per_allowed_connection(variant: str) -> None:
    limit = int(role_values(variant)["orchestrator_api_limit_concurrency"])  # type: ignore[call-overload]
    assert unit_lines("api", variant)["LimitNOFILE"] == [str(limit + 1024)]


@pytest.mark.parametrize("variant", ["default", "alt"])
def test_a_worker_may_open_descriptors_for_every_chunk_in_flight(variant: str) -> None:
    pool = int(role_values(variant)["orchestrator_workers_pool_size"])  # type: ignore[call-overload]
    assert unit_lines("worker", variant)["LimitNOFILE"] == [str(1024 + 8 * pool)]
