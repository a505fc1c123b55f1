"""Each rendered constant equals the value the tree was rendered with (defaults or alt)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.render.templates import Knob, knobs, role_values


@pytest.fixture(scope="module")
def values(rendered_root: Path) -> dict[str, object]:
    return role_values("alt" if rendered_root.name == "alt" else "default")


def test_the_templates_have_knobs() -> None:
    assert len(knobs()) >= 10


@pytest.mark.parametrize("knob", knobs(), ids=lambda k: f"{k.module}.{k.name}")
def test_constant_matches_its_variable(knob: Knob, values: dict[str, object]) -> None:
    assert knob.var in values, f"{knob.var} is not in the role defaults"
    expected = values[knob.var]
    if knob.filter == "int":
        expected = int(expected)  # type: ignore[call-overload]
    elif knob.filter == "float":
        expected = float(expected)  # type: ignore[arg-type]
    elif knob.filter == "bool":
        expected = bool(expected)
    module = importlib.import_module(knob.module)
    assert getattr(module, knob.name) == expected
