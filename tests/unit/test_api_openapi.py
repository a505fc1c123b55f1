"""The served OpenAPI document equals the committed docs/openapi.json, and declares everything.

The committed file describes the default rendered tree; on another tree the request-shape
limits (chunk count, chunk size, the workspaces of ingest and query) are the rendered ones,
patched in before comparing.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.support.api import OPENAPI_FILE, REGENERATE, dump, served_schema


def _expected() -> dict[str, Any]:
    from shield_orchestrator import keys
    from shield_orchestrator.api import config

    schema: dict[str, Any] = json.loads(OPENAPI_FILE.read_text())
    expected = copy.deepcopy(schema)
    comps = expected["components"]["schemas"]
    comps["IngestRequest"]["properties"]["chunks"]["maxItems"] = config.MAX_CHUNKS_PER_REQUEST
    comps["ChunkIn"]["properties"]["text"]["maxLength"] = config.MAX_CHUNK_CHARS
    for model in ("IngestRequest", "QueryIn", "RepoIn"):  # the declared ones, the first default
        workspace = comps[model]["properties"]["workspace"]
        workspace["enum"] = list(keys.WORKSPACES)
        workspace["default"] = keys.WORKSPACES[0]
    for param in expected["paths"]["/repos"]["get"]["parameters"]:  # GET /repos?workspace=
        if param["name"] == "workspace":
            param["schema"]["anyOf"][0]["enum"] = list(keys.WORKSPACES)
    return expected


def test_served_schema_equals_the_committed_one() -> None:
    served = served_schema()
    assert dump(served) == dump(_expected()), (
        f"the API's OpenAPI schema changed: regenerate {OPENAPI_FILE.name} with `{REGENERATE}`"
    )


def test_every_response_of_every_operation_declares_its_content() -> None:
    for path, ops in served_schema()["paths"].items():
        for method, op in ops.items():
            for code, response in op["responses"].items():
                assert response.get("content"), f"{method.upper()} {path} {code}: no declared body"


def test_every_operation_but_liveness_requires_a_key() -> None:
    for path, ops in served_schema()["paths"].items():
        for method, op in ops.items():
            secured = {"ApiKey", "Bearer"} <= {k for req in op.get("security", []) for k in req}
            assert secured == (path != "/health"), f"{method.upper()} {path}"
            assert ("401" in op["responses"]) == (path != "/health")
