"""Claude model names -> upstream models, and recognising Claude Code's side requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ccproxy.model_map import ModelMap, ModelRule, is_side_payload, is_side_request, model_family, side_kind
from ccproxy.types_anthropic import parse_messages_request

pytestmark = pytest.mark.unit

RULES = [
    {"match": "claude-*haiku*", "upstream": "small"},
    {"match": "sonnet", "upstream": "medium"},
    {"match": "claude-opus-4-?", "upstream": "old-opus"},
]


@pytest.mark.parametrize(
    ("name", "side", "expected"),
    [
        ("claude-haiku-4-5-20251001", False, "small"),
        ("CLAUDE-HAIKU-5", False, "small"),
        ("claude-sonnet-5", False, "medium"),
        ("claude-sonnet-4-5-20250929", False, "medium"),
        ("claude-opus-4-8", False, "old-opus"),
        ("claude-opus-5-5", False, "default-model"),
        ("totally-unknown", False, "default-model"),
        ("", False, "default-model"),
        ("claude-opus-5-5", True, "side-model"),
        ("claude-haiku-4-5", True, "side-model"),
    ],
)
def test_resolve(name: str, side: bool, expected: str) -> None:
    models = ModelMap.from_config(RULES, default="default-model", side="side-model")
    assert models.resolve(name, side=side) == expected


def test_mapping_form_keeps_order_and_first_match_wins() -> None:
    models = ModelMap.from_config({"opus": "a", "claude-*": "b"}, default="d")
    assert models.rules == (ModelRule("opus", "a"), ModelRule("claude-*", "b"))
    assert models.resolve("claude-opus-5-5") == "a"
    assert models.resolve("claude-sonnet-5") == "b"


def test_no_config_passes_names_through() -> None:
    assert ModelMap().resolve("claude-sonnet-5") == "claude-sonnet-5"
    assert ModelMap.from_config(None).resolve("x", side=True) == "x"
    assert ModelMap.from_config(None, default="d").resolve("x", side=True) == "d"


@pytest.mark.parametrize(
    ("rules", "kwargs", "message"),
    [
        ("haiku", {}, "models.rules"),
        (42, {}, "models.rules"),
        ([["haiku", "small"]], {}, r"rules\[0\]"),
        ([{"match": "haiku"}], {}, r"rules\[0\].upstream"),
        ([{"match": "", "upstream": "x"}], {}, r"rules\[0\].match"),
        ([{"match": "a", "upstream": "b", "extra": 1}], {}, "unknown keys"),
        ({"haiku": 3}, {}, "upstream"),
        (None, {"default": 5}, "models.default"),
        (None, {"side": ""}, "models.side"),
    ],
)
def test_bad_config_raises_value_error_naming_the_entry(
    rules: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ModelMap.from_config(rules, **kwargs)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("claude-opus-5-5", "opus"),
        ("claude-sonnet-4-5-20250929", "sonnet"),
        ("claude-haiku-4-5-20251001", "haiku"),
        ("claude-3-5-haiku-latest", "haiku"),
        ("qwen2.5-coder", None),
    ],
)
def test_model_family(name: str, family: str | None) -> None:
    assert model_family(name) == family


# --- side requests ---------------------------------------------------------------------------------

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


FORMAT = {"format": {"type": "json_schema", "schema": {"type": "object"}}}


@pytest.mark.parametrize(
    ("extra", "side"),
    [
        ({"max_tokens": 1}, True),
        ({"model": "claude-haiku-4-5-20251001"}, True),
        ({"tools": [], "output_config": FORMAT}, True),
        ({"tools": []}, False),
        ({}, False),
    ],
)
def test_is_side_payload_agrees_with_the_parsed_rule(extra: dict[str, Any], side: bool) -> None:
    tool = {"name": "Write", "input_schema": {"type": "object"}}
    payload = {"model": "claude-opus-4-8", "max_tokens": 512, "tools": [tool]}
    payload |= {"messages": [{"role": "user", "content": "hi"}], **extra}
    assert is_side_payload(payload) is side
    assert is_side_request(parse_messages_request(payload)) is side
