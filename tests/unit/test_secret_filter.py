"""shield.orchestrator.secret_problem: the one definition of a secret too weak to deploy."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

PLUGIN = (
    Path(__file__).resolve().parents[2]
    / "collections/ansible_collections/shield/orchestrator/plugins/filter/secrets.py"
)


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shield_secret_filter", PLUGIN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


secrets = load()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "is not set"),
        ("", "is not set"),
        ("Zq8v2Lk0Pw3n", "is shorter than 16 characters"),
        ("changeme12345678", "is a placeholder (it contains 'changeme')"),
        ("CHANGE-ME-redis-password", "is a placeholder (it contains 'change-me')"),
        ("my-example-value-123", "is a placeholder (it contains 'example')"),
        ("abababababababababab", "has fewer than 6 distinct characters"),
    ],
)
def test_weak_values_are_named(value: object, problem: str) -> None:
    assert secrets.secret_problem(value) == problem


@pytest.mark.parametrize("value", ["Zq8v2Lk0Pw3nR7tY", "3f9a1c07d2b84e6f5a0c9e21"])
def test_random_values_pass(value: str) -> None:
    assert secrets.secret_problem(value) == ""


def test_published_values_are_refused_when_named() -> None:
    published = ["shield-sandbox-api-key"]
    assert secrets.secret_problem("shield-sandbox-api-key", published=published) == (
        "is a value published in this repository (a sandbox default)"
    )
    assert secrets.secret_problem("shield-sandbox-api-key") == ""


def test_named_secrets_report_every_problem_without_the_values() -> None:
    problems = secrets.secret_problems(
        {
            "orchestrator_redis_password": "Zq8v2Lk0Pw3nR7tY",
            "orchestrator_postgres_password": "",
            "orchestrator_api_keys": ["3f9a1c07d2b84e6f5a0c9e21", "changeme-changeme-1"],
        }
    )
    assert problems == [
        "orchestrator_postgres_password is not set",
        "orchestrator_api_keys[1] is a placeholder (it contains 'changeme')",
    ]
    assert secrets.secret_problems({"orchestrator_api_keys": []}) == [
        "orchestrator_api_keys is not set (an empty list)"
    ]


def test_the_filters_are_registered_under_their_names() -> None:
    assert secrets.FilterModule().filters() == {
        "secret_problem": secrets.secret_problem,
        "secret_problems": secrets.secret_problems,
    }
