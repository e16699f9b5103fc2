"""Recognising Claude Code's side requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ccproxy.side_requests import is_side_request, side_kind
from ccproxy.types_anthropic import parse_messages_request

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code"

TITLE_FORMAT = {
    "type": "json_schema",
    "schema": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
}
TOOL = {"name": "Bash", "input_schema": {"type": "object"}}


def req(**fields: Any) -> Any:
    body: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "max_tokens": 32000,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(fields)
    return parse_messages_request(body)


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"tools": [TOOL]}, None),
        ({}, None),
        ({"tools": []}, None),
        ({"tools": [], "output_config": {"format": TITLE_FORMAT}, "thinking": {"type": "disabled"}}, "title"),
        ({"tools": [], "output_format": TITLE_FORMAT}, "title"),
        ({"tools": [TOOL], "output_config": {"format": TITLE_FORMAT}}, None),
        ({"model": "claude-haiku-4-5-20251001", "tools": [TOOL]}, "haiku"),
        ({"max_tokens": 1}, "count"),
        ({"max_tokens": 1, "model": "claude-haiku-4-5"}, "count"),
    ],
    ids=[
        "main",
        "no-tools-field",
        "empty-tools",
        "title",
        "title-old-format",
        "format-with-tools",
        "haiku",
        "count",
        "count-haiku",
    ],
)
def test_side_kind(fields: dict[str, Any], kind: str | None) -> None:
    request = req(**fields)
    assert side_kind(request) == kind
    assert is_side_request(request) is (kind is not None)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("01-turn1.json", None),
        ("02-turn2-tool-result.json", None),
        ("interactive/02-side.json", "title"),
        ("interactive/03-turn1.json", None),
        ("interactive/04-turn2-tool-result.json", None),
    ],
)
def test_recorded_requests(name: str, kind: str | None) -> None:
    path = FIXTURES / name
    assert side_kind(parse_messages_request(json.loads(path.read_text())["body"])) == kind
