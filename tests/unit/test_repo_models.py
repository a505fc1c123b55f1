"""api/routes/repos.py validates RepoOut, RepoIndexOut and RepoRunOut from the service's
dataclasses (``model_validate(obj, from_attributes=True)``): a model's field that is not an
attribute of its dataclass (one renamed there) would silently take the model's default, or
fail only at request time. Every field of each model must be a field of its dataclass, or a
property of it (RepoOut.workflow_id is Repository's)."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import BaseModel


def _missing(model: type[BaseModel], cls: type) -> list[str]:
    """The model's fields that are neither a dataclass field nor a property of ``cls``."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return [
        name
        for name in model.model_fields
        if name not in fields and not isinstance(getattr(cls, name, None), property)
    ]


def _pairs() -> list[tuple[type[BaseModel], type]]:
    from shield_orchestrator.api.models import RepoIndexOut, RepoOut, RepoRunOut
    from shield_orchestrator.services.repositories import IndexState, LastRun, Repository

    return [(RepoOut, Repository), (RepoIndexOut, IndexState), (RepoRunOut, LastRun)]


@pytest.mark.parametrize("index", range(3), ids=["RepoOut", "RepoIndexOut", "RepoRunOut"])
def test_every_model_field_is_an_attribute_of_its_dataclass(index: int) -> None:
    model, cls = _pairs()[index]
    assert dataclasses.is_dataclass(cls)
    missing = _missing(model, cls)
    assert not missing, f"{model.__name__} fields not on {cls.__name__}: {missing}"


def test_a_renamed_attribute_is_named() -> None:
    """The check itself: a dataclass without one of the model's fields is caught, by name."""

    class Out(BaseModel):
        repo_id: str
        workflow_id: str
        branch: str = "main"

    @dataclasses.dataclass
    class Renamed:
        repo_id: str
        branch_name: str

        @property
        def workflow_id(self) -> str:
            return f"repo-index:{self.repo_id}"

    assert _missing(Out, Renamed) == ["branch"]
    # what the check prevents: the renamed attribute's value is silently lost
    assert Out.model_validate(Renamed("r", "dev"), from_attributes=True).branch == "main"
