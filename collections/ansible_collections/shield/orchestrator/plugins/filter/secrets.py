"""Filter ``shield.orchestrator.secret_problem``: why a secret must not be deployed, or ''.

    - ansible.builtin.assert:
        that: redis_password | shield.orchestrator.secret_problem == ''
        fail_msg: "redis_password {{ redis_password | shield.orchestrator.secret_problem }}: ..."

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


def secret_problem(value: Any, min_length: int = MIN_LENGTH) -> str:
    """'' for a usable secret, else the reason, phrased to follow the variable's name."""
    if value is None or str(value) == "":
        return "is not set"
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


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"secret_problem": secret_problem}
