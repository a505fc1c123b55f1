"""A registration's credential_ref: the API, the play's preflight and the indexers agree.

The indexers lend git only variables named ``settings.REPO_CREDENTIAL_PREFIX<NAME>``
(settings.repo_credential); the API's model refuses any other name with a 422 naming
``credential_ref``, and the indexer role's preflight refuses an inventory entry with another
name. The preflight's pattern is a copy (Ansible cannot import the package): this test proves
it accepts and refuses what the settings do.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.render.templates import REPO

# name -> accepted (API and preflight); each accepted name is one the indexers lend
NAMES = {
    "REPO_CREDENTIAL_APP": True,
    "REPO_CREDENTIAL_A_1": True,
    "REPO_CREDENTIAL_": False,
    "GIT_TOKEN": False,
    "SHIELD_POSTGRES_PASSWORD": False,
    "repo_credential_app": False,
    "REPO_CREDENTIAL_a": False,
}


def _preflight_pattern() -> re.Pattern[str]:
    values = yaml.safe_load((REPO / "roles/orchestrator_indexer/vars/main.yml").read_text())
    return re.compile(values["__orchestrator_indexer_repo_credential_ref_re"])


@pytest.mark.parametrize(("name", "accepted"), NAMES.items())
def test_the_api_and_the_preflight_accept_only_names_the_indexers_lend(
    rendered_root: Path, name: str, accepted: bool
) -> None:
    from pydantic import TypeAdapter, ValidationError
    from shield_orchestrator import settings
    from shield_orchestrator.api.models import CredentialRef

    try:
        TypeAdapter(CredentialRef).validate_python(name)
        api = True
    except ValidationError:
        api = False
    assert api is accepted, name
    assert (_preflight_pattern().match(name) is not None) is accepted, name
    if accepted:  # the indexers lend it
        assert settings.repo_credential(name, {name: "user:secret"}) == "user:secret"
