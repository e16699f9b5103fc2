"""Inbound Anthropic models: tolerant of new fields and block types, precise about errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ccproxy.errors import InvalidRequestError
from ccproxy.types_anthropic import (
    Base64ImageSource,
    ImageBlock,
    ServerTool,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolResultBlock,
    ToolUseBlock,
    UnknownBlock,
    UnknownImageSource,
    URLImageSource,
    parse_count_tokens_request,
    parse_messages_request,
)

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code"
RECORDED = sorted(p for p in FIXTURES.rglob("[0-9][0-9]-*.json") if json.loads(p.read_text())["body"])


def body(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    out.update(fields)
    return out


def msg(content: Any, role: str = "user") -> list[dict[str, Any]]:
    return [{"role": role, "content": content}]


@pytest.mark.parametrize("path", RECORDED, ids=[f"{p.parent.name}/{p.name}" for p in RECORDED])
def test_recorded_requests_parse_and_round_trip(path: Path) -> None:
    raw = json.loads(path.read_text())["body"]
    req = parse_messages_request(raw)
    assert req.model == raw["model"]
    # nothing is lost: unknown fields (defer_loading, thinking.display, ...) survive a dump
    assert req.model_dump(exclude_unset=True) == raw


@pytest.mark.parametrize(
    ("block", "cls"),
    [
        ({"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}, TextBlock),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
            ImageBlock,
        ),
        ({"type": "tool_use", "id": "t", "name": "n", "input": {}}, ToolUseBlock),
        ({"type": "tool_result", "tool_use_id": "t", "content": "x", "is_error": True}, ToolResultBlock),
        ({"type": "thinking", "thinking": "hm", "signature": ""}, ThinkingBlock),
        ({"type": "thinking", "thinking": "hm"}, ThinkingBlock),
        ({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {"q": 1}}, UnknownBlock),
        ({"type": "brand_new_block"}, UnknownBlock),
    ],
)
def test_block_types(block: dict[str, Any], cls: type) -> None:
    req = parse_messages_request(body(messages=msg([block])))
    content = req.messages[0].content
    assert isinstance(content, list)
    parsed = content[0]
    assert isinstance(parsed, cls)
    assert parsed.model_dump(exclude_unset=True) == block


@pytest.mark.parametrize(
    ("source", "cls"),
    [
        ({"type": "base64", "media_type": "image/png", "data": "AA=="}, Base64ImageSource),
        ({"type": "url", "url": "https://x/y.png"}, URLImageSource),
        ({"type": "file", "file_id": "file_1"}, UnknownImageSource),
    ],
)
def test_image_sources(source: dict[str, Any], cls: type) -> None:
    req = parse_messages_request(body(messages=msg([{"type": "image", "source": source}])))
    block = req.messages[0].content[0]
    assert isinstance(block, ImageBlock)
    assert isinstance(block.source, cls)


def test_tool_result_content_blocks_and_unknown_inside() -> None:
    content = [{"type": "text", "text": "a"}, {"type": "tool_reference", "tool_name": "WebFetch"}]
    req = parse_messages_request(
        body(messages=msg([{"type": "tool_result", "tool_use_id": "t", "content": content}]))
    )
    block = req.messages[0].content[0]
    assert isinstance(block, ToolResultBlock)
    assert isinstance(block.content, list)
    assert isinstance(block.content[1], UnknownBlock)
    assert block.content[1].model_extra == {"tool_name": "WebFetch"}


def test_tools_client_and_server() -> None:
    req = parse_messages_request(
        body(
            tools=[
                {"name": "a", "input_schema": {"type": "object"}, "defer_loading": True},
                {"type": "custom", "name": "b", "input_schema": {"type": "object"}},
                {"type": "web_search_20250305", "name": "web_search"},
            ]
        )
    )
    assert req.tools is not None
    assert [type(t) for t in req.tools] == [Tool, Tool, ServerTool]


def test_count_tokens_request_needs_no_max_tokens() -> None:
    req = parse_count_tokens_request({"model": "m", "messages": msg("hi")})
    assert req.model == "m"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "body: expected a JSON object"),
        ("x", "body: expected a JSON object"),
        ({"messages": []}, "model: Field required"),
        (body(max_tokens=None), "max_tokens: Input should be a valid integer"),
        (body(max_tokens="many"), "max_tokens: Input should be a valid integer"),
        (body(messages="hi"), "messages: Input should be a valid list"),
        (
            body(messages=msg("hi", role="robot")),
            "messages.0.role: Input should be 'user', 'assistant' or 'system'",
        ),
        (body(messages=[{"role": "user"}]), "messages.0.content: Field required"),
        (body(messages=msg([{"type": "text"}])), "messages.0.content.0.text: Field required"),
        (
            body(messages=msg([{"text": "no type"}])),
            "messages.0.content.0: a content block needs a string 'type'",
        ),
        (
            body(messages=msg([{"type": "tool_use", "id": "t", "name": "n", "input": "str"}])),
            "messages.0.content.0.input: Input should be a valid dictionary",
        ),
        (
            body(messages=msg([{"type": "image", "source": {"type": "base64", "data": "x"}}])),
            "messages.0.content.0.source.media_type: Field required",
        ),
        (
            body(messages=msg([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text"}]}])),
            "messages.0.content.0.content.0.text: Field required",
        ),
        (body(system=[{"type": "text"}]), "system.0.text: Field required"),
        (body(tools=[{"name": "a"}]), "tools.0.input_schema: Field required"),
        (body(tool_choice={"type": "sometimes"}), "tool_choice.type: Input should be"),
        (body(stop_sequences="END"), "stop_sequences: Input should be a valid list"),
        (body(temperature="hot"), "temperature: Input should be a valid number"),
    ],
)
def test_invalid_requests_name_the_field(payload: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_messages_request(payload)
    assert info.value.message.startswith(message), info.value.message
    assert info.value.status == 400


def test_count_tokens_invalid() -> None:
    with pytest.raises(InvalidRequestError, match="messages: Field required"):
        parse_count_tokens_request({"model": "m"})
    with pytest.raises(InvalidRequestError, match="body"):
        parse_count_tokens_request(None)


# --- as strict as the Anthropic API -------------------------------------------------------------------


def image(media_type: str) -> list[dict[str, Any]]:
    return msg([{"type": "image", "source": {"type": "base64", "media_type": media_type, "data": "AA=="}}])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (body(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
        (body(max_tokens=-5), "max_tokens: Input should be greater than or equal to 1"),
        (body(max_tokens="100"), "max_tokens: Input should be a valid integer"),
        (body(max_tokens=100.0), "max_tokens: Input should be a valid integer"),
        (body(max_tokens=True), "max_tokens: Input should be a valid integer"),
        (body(stream="yes"), "stream: Input should be a valid boolean"),
        (body(stream=1), "stream: Input should be a valid boolean"),
        (body(temperature=5), "temperature: Input should be less than or equal to 1"),
        (body(temperature=-0.1), "temperature: Input should be greater than or equal to 0"),
        (body(temperature="0.5"), "temperature: Input should be a valid number"),
        (body(top_p=2), "top_p: Input should be less than or equal to 1"),
        (body(top_k=-1), "top_k: Input should be greater than or equal to 0"),
        (body(top_k=2.5), "top_k: Input should be a valid integer"),
        (body(stop_sequences=["a", 3]), "stop_sequences.1: Input should be a valid string"),
        (body(messages=[]), "messages: List should have at least 1 item"),
        (body(model=""), "model: String should have at least 1 character"),
        (body(tools=[{"name": "bad name", "input_schema": {}}]), "tools.0.name: String should match pattern"),
        (body(tools=[{"name": "x" * 129, "input_schema": {}}]), "tools.0.name: String should match pattern"),
        (body(tools=[{"name": "", "input_schema": {}}]), "tools.0.name: String should match pattern"),
        (body(tools=[{"name": "mcp.tool", "input_schema": {}}]), "tools.0.name: String should match pattern"),
        (body(messages=image("image/jpg")), "messages.0.content.0.source.media_type: Input should be"),
        (body(messages=image("application/pdf")), "messages.0.content.0.source.media_type: Input should be"),
        (body(tool_choice={"type": "tool"}), "tool_choice: Value error, tool_choice of type 'tool' needs"),
        (
            body(messages=msg([{"type": "tool_result", "tool_use_id": "t", "is_error": "true"}])),
            "messages.0.content.0.is_error: Input should be a valid boolean",
        ),
    ],
)
def test_out_of_range_and_wrongly_typed_values_are_errors_not_coerced(payload: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_messages_request(payload)
    assert info.value.message.startswith(message), info.value.message


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 0, "top_p": 1, "top_k": 0, "max_tokens": 1},
        {"temperature": 1.0, "top_p": 0.0, "stream": False, "stop_sequences": []},
        {"tools": [{"name": "mcp__my-server__do_thing_2", "input_schema": {"type": "object"}}]},
        {"tools": [{"name": "x" * 128, "input_schema": {}}]},
        {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]},
        {"tool_choice": {"type": "tool", "name": "Write"}},
        {"messages": image("image/webp") + image("image/gif") + image("image/jpeg")},
        {"max_tokens": 128000, "stream": True},
    ],
)
def test_what_the_api_accepts_is_accepted(fields: dict[str, Any]) -> None:
    parse_messages_request(body(**fields))


def test_count_tokens_has_no_generation_parameters_to_check() -> None:
    parse_count_tokens_request({"model": "m", "messages": [], "max_tokens": "ignored"})
