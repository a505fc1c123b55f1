"""The roles' closed lists agree with the code that decides (one source per fact, issue 19).

Ansible validates `choices:` of meta/argument_specs.yml at role start and the preflight lists
in vars/main.yml name the engines; the rendered package decides at run time. Each pair must
be equal, or an operator gets a value accepted by one and refused by the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _choices(role: str, name: str) -> list[Any]:
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return list(spec["argument_specs"]["main"]["options"][name]["choices"])


def _role_var(role: str, name: str) -> Any:
    return yaml.safe_load((REPO / "roles" / role / "vars" / "main.yml").read_text())[name]


def test_engine_names_agree() -> None:
    from shield_orchestrator.engines.factory import ENGINES

    assert sorted(_choices("orchestrator", "orchestrator_engine")) == sorted(ENGINES)
    assert sorted(_role_var("orchestrator", "__orchestrator_engines")) == sorted(ENGINES)
    assert sorted(_role_var("orchestrator_workers", "__orchestrator_workers_engines")) == sorted(
        ENGINES
    )


@pytest.mark.parametrize(
    ("variable", "constant"),
    [
        ("orchestrator_engine_storage", "STORAGES"),
        ("orchestrator_engine_vector_storage", "VECTOR_STORAGES"),
        ("orchestrator_engine_postgres_vector_index", "VECTOR_INDEXES"),
    ],
)
def test_storage_choices_agree(variable: str, constant: str) -> None:
    from shield_orchestrator.engines import config, lightrag_setup

    assert _choices("orchestrator", variable) == list(getattr(config, constant))
    if constant == "VECTOR_STORAGES":
        assert sorted(lightrag_setup.VECTOR_STORAGES) == sorted(config.VECTOR_STORAGES)
