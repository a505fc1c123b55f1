"""Filters ``shield.orchestrator.secret_problem`` (why one secret must not be deployed, or '')
and ``secret_problems`` (the same for named secrets: a list of "NAME PROBLEM" lines).

    - ansible.builtin.assert:
        that: redis_password | shield.orchestrator.secret_problem == ''
        fail_msg: "redis_password {{ redis_password | shield.orchestrator.secret_problem }}: ..."
    - ansible.builtin.assert:
        that: __problems | length == 0
        fail_msg: "{{ __problems | join('; ') }}: ..."
      vars:
        __problems: "{{ {'api_keys': api_keys} | shield.orchestrator.secret_problems }}"

One list of what counts as weak, for every role's preflight: unset or empty, shorter than
MIN_LENGTH characters, fewer than MIN_DISTINCT distinct characters, or containing a
placeholder marker (``CHANGE-ME`` in inventories/production/group_vars/all/vault.yml.example,
``changeme1234``, ...). Values published in this repository (the old sandbox defaults) are
refused by the orchestrator role's preflight outside the sandbox.
"""

from __future__ import annotations

from typing import Any

MIN_LENGTH = 16
MIN_DISTINCT = 6
PLACEHOLDERS = ("change-me", "changeme", "change_me", "placeholder", "example", "xxxxxx", "todo")


def secret_problem(value: Any, min_length: int = MIN_LENGTH, published: Any = ()) -> str:
    """'' for a usable secret, else the reason, phrased to follow the variable's name.
    ``published``: values written in this repository (refused where they must not be used)."""
    if value is None or str(value) == "":
        return "is not set"
    if str(value) in {str(p) for p in published}:
        return "is a value published in this repository (a sandbox default)"
    text = str(value)
    if len(text) < min_length:
        return f"is shorter than {min_length} characters"
    lowered = text.lower()
    for marker in PLACEHOLDERS:
        if marker in lowered:
            return f"is a placeholder (it contains '{marker}')"
    if len(set(text)) < MIN_DISTINCT:
        return f"has fewer than {MIN_DISTINCT} distinct characters"
    return ""


def secret_problems(named: dict[str, Any], published: Any = ()) -> list[str]:
    """ "NAME PROBLEM" for every weak secret of ``named``; a list value is a list of secrets
    (NAME[i]), and an empty list is unset. The values never appear in the result."""
    problems: list[str] = []
    for name, value in named.items():
        if isinstance(value, list | tuple):
            if not value:
                problems.append(f"{name} is not set (an empty list)")
            for i, item in enumerate(value):
                if reason := secret_problem(item, published=published):
                    problems.append(f"{name}[{i}] {reason}")
        elif reason := secret_problem(value, published=published):
            problems.append(f"{name} {reason}")
    return problems


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"secret_problem": secret_problem, "secret_problems": secret_problems}
