"""The API and the indexers reach the same Temporal: one source, the Settings (issue 17).

Before, the indexer unit passed --temporal/--namespace/--task-queue/--tls-* on its command
line while the API's gateway used built-in defaults (127.0.0.1:7233, namespace ``default``):
a deployed API answered 503 to POST /repos/{id}/index. Now both build their
``TemporalTarget`` from the rendered settings.py (the inventory's orchestrator_temporal_*):
the API in api/app.py, an indexer from the arguments its unit gives it. Checked on both
rendered trees: the role defaults, and alt_values (another address, namespace, task queue
and mutual TLS files).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import jinja2
import yaml

from tests.render.templates import REPO, role_values

UNIT = REPO / "roles/orchestrator_indexer/templates/shield-orchestrator-indexer@.service.j2"
MODULE = "shield_orchestrator.indexing.worker"
KEY = "k" * 32  # an API key of the right length (create_app refuses none)


def _variant(rendered_root: Path) -> str:
    return "alt" if rendered_root.name == "alt" else "default"


def indexer_argv(variant: str) -> list[str]:
    """The arguments after ``-m shield_orchestrator.indexing.worker`` in the unit's ExecStart."""
    lines = UNIT.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ExecStart="))
    command = ""
    for line in lines[start:]:
        command += line.rstrip("\\").removeprefix("ExecStart=") + " "
        if not line.endswith("\\"):
            break
    indexer = yaml.safe_load((REPO / "roles/orchestrator_indexer/defaults/main.yml").read_text())
    values = {**indexer, **role_values(variant), "__orchestrator_indexer_venv_dir": "/venv"}
    rendered = jinja2.Template(command, undefined=jinja2.StrictUndefined).render(values)
    argv = shlex.split(rendered)
    return argv[argv.index(MODULE) + 1 :]


def test_the_unit_names_no_temporal_setting() -> None:
    argv = indexer_argv("default")
    for flag in ("--temporal", "--namespace", "--task-queue", "--tls-cert", "--tls-key"):
        assert flag not in argv, f"the indexer unit passes {flag}: the Settings are the source"


def test_api_and_indexer_read_the_same_temporal(rendered_root: Path) -> None:
    from shield_orchestrator.api.app import create_app
    from shield_orchestrator.indexing.worker import arg_parser, temporal_target
    from shield_orchestrator.settings import load_settings

    variant = _variant(rendered_root)
    settings = load_settings({"SHIELD_API_KEYS": KEY})  # the rendered constants alone
    api = create_app(settings).state.temporal.target
    indexer = temporal_target(settings, arg_parser().parse_args(indexer_argv(variant)))

    assert api == indexer
    values = role_values(variant)
    assert (api.address, api.namespace, api.task_queue, api.tls_server_name) == (
        values["orchestrator_temporal_address"],
        values["orchestrator_temporal_namespace"],
        values["orchestrator_temporal_task_queue"],
        values["orchestrator_temporal_tls_server_name"],
    )
    tls = f"{values['orchestrator_config_dir']}/temporal-tls"
    expected_tls = {
        "tls_cert_file": f"{tls}/client.pem" if values["orchestrator_temporal_tls_cert"] else "",
        "tls_key_file": f"{tls}/client.key" if values["orchestrator_temporal_tls_key"] else "",
        "tls_ca_file": f"{tls}/ca.pem" if values["orchestrator_temporal_tls_ca"] else "",
    }
    assert {name: getattr(api, name) for name in expected_tls} == expected_tls
    if variant == "alt":  # the alt tree dials mutual TLS: the test would prove nothing otherwise
        assert api.uses_tls
        assert (api.tls_cert_file, api.tls_key_file) == (f"{tls}/client.pem", f"{tls}/client.key")


def test_the_environment_overrides_both(rendered_root: Path) -> None:
    """SHIELD_TEMPORAL_* (a test, a one-off run) moves the API and the indexers together."""
    from shield_orchestrator.api.app import create_app
    from shield_orchestrator.indexing.worker import arg_parser, temporal_target
    from shield_orchestrator.settings import load_settings

    env = {
        "SHIELD_API_KEYS": KEY,
        "SHIELD_TEMPORAL_ADDRESS": "10.9.8.7:7999",
        "SHIELD_TEMPORAL_NAMESPACE": "other",
        "SHIELD_TEMPORAL_TASK_QUEUE": "q2",
        "SHIELD_TEMPORAL_TLS_CERT_FILE": "",
        "SHIELD_TEMPORAL_TLS_KEY_FILE": "",
    }
    settings = load_settings(env)
    api = create_app(settings).state.temporal.target
    args = arg_parser().parse_args(indexer_argv(_variant(rendered_root)))
    assert api == temporal_target(settings, args)
    assert (api.address, api.namespace, api.task_queue) == ("10.9.8.7:7999", "other", "q2")
    assert (api.tls_cert_file, api.tls_key_file) == ("", "")
