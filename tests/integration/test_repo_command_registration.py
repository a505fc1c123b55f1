"""A registration's operator command (issue 16, seed 000's runner): POST /repos's ``command``,
``command_timeout_s`` and ``command_mode`` (api/models.py RepoIn) are stored (migration 0006),
replaced when given again, and reach the workflow in RepoSpec (indexing/runner.py runs them:
tests/integration/test_indexing_runner.py). Real PostgreSQL (conftest)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration

URL = "https://git.example.invalid/tools.git"


async def test_command_is_stored_replaced_when_given_and_in_the_spec(pg_pool: Any) -> None:
    from shield_orchestrator.services import repositories
    from shield_orchestrator.services.repositories import NewRepository

    new = NewRepository(URL, "main", "code", command=("/opt/idx/bin/index", "--full"),
                        command_timeout_s=120, command_mode="instead")  # fmt: skip
    repo, created = await repositories.register(pg_pool, new)
    assert created
    assert (repo.command, repo.command_timeout_s, repo.command_mode) == (
        ("/opt/idx/bin/index", "--full"), 120, "instead",
    )  # fmt: skip
    spec = repo.spec()
    assert (spec.command, spec.command_timeout_s, spec.command_mode) == (
        ["/opt/idx/bin/index", "--full"], 120, "instead",
    )  # fmt: skip
    assert (await repositories.get(pg_pool, repo.repo_id)).command == repo.command

    # Registered again: only the fields given replace the stored ones.
    again = NewRepository(URL, "main", "code", command=("/opt/idx/bin/index",))
    repo2, created = await repositories.register(pg_pool, again, frozenset({"command"}))
    assert not created
    assert (repo2.repo_id, repo2.command, repo2.command_timeout_s, repo2.command_mode) == (
        repo.repo_id, ("/opt/idx/bin/index",), 120, "instead",
    )  # fmt: skip
    plain, _ = await repositories.register(pg_pool, NewRepository(URL, "dev", "code"))
    assert (plain.command, plain.command_timeout_s, plain.command_mode) == ((), 600, "after")
    assert plain.spec().command == []  # the built-in indexer only


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"command_mode": "sometimes"}, "command_mode"),
        ({"command_timeout_s": 0}, "command_timeout_s"),
        ({"command_timeout_s": 86_401}, "command_timeout_s"),
        ({"command": ["ok", ""]}, "command"),
        ({"command": ["bad\x00word"]}, "command"),
        ({"command": ["x"] * 65}, "command"),
    ],
)
def test_bad_command_fields_name_the_field(body: dict[str, Any], field: str) -> None:
    from pydantic import ValidationError
    from shield_orchestrator.api.models import RepoIn

    with pytest.raises(ValidationError) as refused:
        RepoIn.model_validate({"url": URL, "branch": "main", **body})
    assert {e["loc"][0] for e in refused.value.errors()} == {field}
