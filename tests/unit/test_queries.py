"""The query protocol's wire format (services/queries.py): requests and replies, both ways,
and what a malformed entry or reply becomes. The modes are LightRAG's retrieval modes."""

from __future__ import annotations

import json
import typing

import pytest
from shield_orchestrator.errors import MalformedMessage
from shield_orchestrator.services import queries
from shield_orchestrator.services.queries import QueryFailed, QueryRejected, QueryRequest


def test_a_request_round_trips() -> None:
    request = QueryRequest("Who talks to Redis?", "docs", "local", True, 7, 1234.5, "q1")
    fields = queries.encode_request(request)
    assert set(fields) == {"v", "id", "body"}
    assert queries.parse_request(fields) == request
    default = QueryRequest("What is LightRAG?", "default", deadline=1.0, id="q2")
    assert queries.parse_request(queries.encode_request(default)) == default


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"mode": "bypass"}, "body.mode"),
        ({"query": "   "}, "body.query"),
        ({"top_k": 0}, "body.top_k"),
        ({"top_k": True}, "body.top_k"),
        ({"only_need_context": "yes"}, "body.only_need_context"),
        ({"deadline": "soon"}, "body.deadline"),
    ],
)
def test_a_malformed_request_names_the_field(change: dict[str, object], named: str) -> None:
    fields = queries.encode_request(QueryRequest("a question", "default", deadline=1, id="q"))
    body = {**json.loads(fields["body"]), **change}
    with pytest.raises(MalformedMessage, match=f"invalid {named}"):
        queries.parse_request({**fields, "body": json.dumps(body)})


def test_a_request_of_another_version_or_without_json_is_malformed() -> None:
    fields = queries.encode_request(QueryRequest("a question", "default", id="q"))
    with pytest.raises(MalformedMessage, match="version '2'"):
        queries.parse_request({**fields, "v": "2"})
    with pytest.raises(MalformedMessage, match="not JSON"):
        queries.parse_request({**fields, "body": "{"})


class _Answer(typing.NamedTuple):
    text: str
    context_only: bool
    label: str


def test_replies_round_trip_and_carry_the_engines_error() -> None:
    raw = queries.encode_reply("q1", "host:1", _Answer("the context", True, "offline"), None, 2.5)
    reply = queries.parse_reply(raw)
    assert (reply.id, reply.text, reply.context_only, reply.label, reply.served_by) == (
        "q1",
        "the context",
        True,
        "offline",
        "host:1",
    )
    rejected = queries.encode_reply("q2", "host:1", None, QueryRejected("too short"), 0)
    with pytest.raises(QueryRejected, match=r"too short \(answered by host:1\)"):
        queries.parse_reply(rejected)
    failed = queries.encode_reply("q3", "host:2", None, QueryFailed("LLM down"), 0)
    with pytest.raises(QueryFailed, match="LLM down"):
        queries.parse_reply(failed)
    with pytest.raises(QueryFailed, match="unreadable reply"):
        queries.parse_reply("not json")


def test_the_modes_are_lightrags_retrieval_modes() -> None:
    from lightrag import QueryParam

    modes = typing.get_args(typing.get_type_hints(QueryParam)["mode"])
    # bypass asks the LLM without the graph: not a question about the graph
    assert set(queries.MODES) == set(modes) - {"bypass"}
    assert queries.MODES[0] == QueryParam().mode  # the same default
