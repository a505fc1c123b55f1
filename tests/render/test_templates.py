"""The templates themselves: listed, values rendered safely (Jinja only in the constants block:
tests/repo/test_template_constants.py, over every role)."""

from __future__ import annotations

import pytest

from tests.render.templates import (
    APP_ROLES,
    KNOB,
    SAFE_FILTERS,
    listed_templates,
    template_dir,
    templates_on_disk,
)


@pytest.mark.parametrize("role", sorted(APP_ROLES))
def test_every_template_is_rendered_by_its_role(role: str) -> None:
    assert sorted(listed_templates(role)) == templates_on_disk(role)


def _templates() -> list[tuple[str, str]]:
    return [(role, rel) for role in sorted(APP_ROLES) for rel in templates_on_disk(role)]


@pytest.mark.parametrize(("role", "rel"), _templates())
def test_values_are_rendered_through_a_safe_filter(role: str, rel: str) -> None:
    for line in (template_dir(role) / f"{rel}.j2").read_text().splitlines():
        m = KNOB.match(line)
        if m:
            assert m["filter"] in SAFE_FILTERS, f"{rel}.j2: {m['name']} uses | {m['filter']}"
            assert not line.split("=", 1)[1].strip().startswith(("'{{", '"{{'))
