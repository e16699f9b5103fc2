"""The plan of one request: route, translation, text tool calls, slot, the one max_tokens clamp."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from ccproxy.config import Settings
from ccproxy.errors import PromptTooLongError
from ccproxy.llama_server import BackendInfo
from ccproxy.plan import (
    ANONYMOUS,
    Session,
    answer,
    clamp_max_tokens,
    count_body,
    fit,
    plan,
    session_key,
    stream_translator,
)
from ccproxy.slots import SlotOffer
from ccproxy.streamed_calls import StreamedCalls
from ccproxy.text_tool_calls import TextToolCalls, TextToolCallTranslator
from ccproxy.translate_stream import StreamTranslator
from ccproxy.types_anthropic import MessagesRequest, parse_count_tokens_request, parse_messages_request

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code"
SETTINGS = Settings(model="qwen2.5-coder", max_tokens=4096)
LLAMA = replace(SETTINGS, backend_features="llama-server")
INFO = BackendInfo(n_ctx=8192, n_slots=3)
SLOTS = Session("session:s", SlotOffer(main=1, side=2))
TOOL = {"name": "Read", "description": "read", "input_schema": {"type": "object"}}


def request(**fields: Any) -> MessagesRequest:
    body: dict[str, Any] = {"model": "claude-opus-5-5", "max_tokens": 1000, "messages": []}
    body.update(fields)
    return parse_messages_request(body)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def test_session_key_sources() -> None:
    assert session_key({"x-claude-code-session-id": "abc"}, {"user_id": "u"}) == "session:abc"
    assert session_key({}, {"user_id": '{"device_id":"d"}'}) == 'user:{"device_id":"d"}'
    assert session_key({}, None) == ANONYMOUS
    assert session_key({}, {"user_id": 5}) == ANONYMOUS


def test_recorded_first_turn_max_tokens_clamped() -> None:
    raw = json.loads((FIXTURES / "01-turn1.json").read_text())["body"]
    body = plan(parse_messages_request(raw), SETTINGS, None, Session()).body
    assert body["max_tokens"] == 4096  # 128000 requested, clamped
    assert body["model"] == "qwen2.5-coder"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [({"max_tokens": 100}, {"max_tokens": 100}), ({"max_tokens": 100000}, {"max_tokens": 4096})],
    ids=["max_tokens", "clamp"],
)
def test_parameters(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = plan(request(messages=[user("x")], **fields), SETTINGS, None, Session()).body
    assert {k: body.get(k) for k in expected} == expected


def test_accepted_and_ignored_fields() -> None:
    req = request(
        messages=[user([{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}}])],
        metadata={"user_id": '{"session_id":"s"}'},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        thinking={"type": "adaptive", "display": "updates"},
        output_config={"effort": "high"},
        service_tier="auto",
        some_future_field={"x": 1},
    )
    body = plan(req, SETTINGS, None, Session()).body
    assert set(body) == {"model", "messages", "max_tokens"}
    assert body["model"] == "qwen2.5-coder"


@pytest.mark.parametrize(
    ("requested", "caps", "expected"),
    [(100, (), 100), (100, (None, 50), 50), (100, (4096, 256, 30), 30), (5, (4096,), 5), (100, (0,), 1)],
)
def test_the_one_max_tokens_clamp(requested: int, caps: tuple[int | None, ...], expected: int) -> None:
    assert clamp_max_tokens(requested, *caps) == expected


def test_main_request_on_llama_server() -> None:
    p = plan(request(messages=[user("x")], stream=True), LLAMA, INFO, SLOTS)
    assert (p.side, p.slot, p.session, p.upstream_model, p.reply_model) == (
        False,
        1,
        "session:s",
        "qwen2.5-coder",
        "claude-opus-5-5",
    )
    assert p.count_first
    assert p.prepare_prefix
    assert p.stream
    assert p.body["id_slot"] == 1
    assert p.body["cache_prompt"] is True
    assert p.body["return_progress"] is True
    assert p.body["max_tokens"] == 1000


def test_side_request_takes_the_side_slot_and_the_side_clamp() -> None:
    p = plan(request(model="claude-haiku-4-5", messages=[user("x")]), LLAMA, INFO, SLOTS)
    assert (p.side, p.slot, p.body["id_slot"], p.body["max_tokens"]) == (True, 2, 2, 256)
    assert p.body["cache_prompt"] is True
    assert "return_progress" not in p.body


def test_side_request_to_a_side_model_runs_elsewhere() -> None:
    settings = replace(LLAMA, side_model="small")
    p = plan(request(model="claude-haiku-4-5", messages=[user("x")]), settings, INFO, SLOTS)
    assert (p.upstream_model, p.slot, p.count_first, p.prepare_prefix) == ("small", None, False, False)
    assert "id_slot" not in p.body


def test_one_server_queues_on_the_slot_without_headers() -> None:
    p = plan(request(messages=[user("x")]), LLAMA, INFO, SLOTS)
    assert (p.queue, p.headers) == (True, {})


@pytest.mark.parametrize("model", ["claude-opus-5-5", "claude-haiku-4-5"])
def test_behind_a_pool_the_session_travels_as_a_header_and_slots_do_not_queue(model: str) -> None:
    """Main and side requests carry the session key, so the balancer sends both to the session's server,
    where the slot numbers stay valid; no queue per slot number, no prefix cache."""
    pool = replace(LLAMA, upstream_pool="on")
    p = plan(request(model=model, messages=[user("x")], stream=True), pool, INFO, SLOTS)
    assert p.headers == {"x-claude-code-session-id": "session:s"}
    assert p.body["id_slot"] == (2 if p.side else 1)
    assert (p.queue, p.prepare_prefix) == (False, False)
    anonymous = plan(request(messages=[user("x")]), pool, None, Session())
    assert (anonymous.headers, anonymous.slot) == ({"x-claude-code-session-id": ANONYMOUS}, None)


def test_fit_clamps_to_what_the_context_leaves_or_rejects() -> None:
    p = plan(request(messages=[user("x")]), LLAMA, INFO, SLOTS)
    fitted = fit(p, 8000)
    assert fitted.body["max_tokens"] == 192
    assert p.body["max_tokens"] == 1000  # a new plan; the first one is unchanged
    assert fit(p, None) is p
    with pytest.raises(PromptTooLongError):
        fit(p, 8192)


@pytest.mark.parametrize(
    ("mode", "marked", "tool_choice", "expected"),
    [
        ("auto", True, None, frozenset({"Read"})),
        ("auto", False, None, frozenset()),
        ("on", False, None, frozenset({"Read"})),
        ("off", True, None, frozenset()),
        ("auto", True, {"type": "any"}, frozenset()),
    ],
)
def test_text_tool_calls(mode: str, marked: bool, tool_choice: Any, expected: frozenset[str]) -> None:
    settings = replace(LLAMA, text_tool_calls=mode)
    fields: dict[str, Any] = {"messages": [user("x")], "tools": [TOOL]}
    if tool_choice is not None:
        fields["tool_choice"] = tool_choice
    p = plan(request(**fields), settings, replace(INFO, text_tool_calls=marked), SLOTS)
    assert p.text_tools == expected
    if expected:
        assert p.body["tool_choice"] == "none"
    translator = stream_translator(p, message_id="msg_1", input_tokens=3)
    assert isinstance(translator, TextToolCallTranslator if expected else StreamTranslator)


@pytest.mark.parametrize("grammar", ["on", "off"])
def test_recovered_calls_stream_as_written_only_under_the_grammar(grammar: str) -> None:
    """Under the tool grammar a call is decided by its first bytes, so it streams as it is written;
    without it a call goes out only once it is complete and valid."""
    settings = replace(LLAMA, text_tool_calls="on", tool_grammar=grammar)
    p = plan(request(messages=[user("x")], tools=[TOOL]), settings, INFO, SLOTS)
    assert ("grammar" in p.body) is (grammar == "on")
    assert p.streamed_calls is (grammar == "on")
    translator = stream_translator(p, message_id="msg_1", input_tokens=3)
    assert isinstance(translator, TextToolCallTranslator)
    assert isinstance(translator.rewriter._calls, StreamedCalls if grammar == "on" else TextToolCalls)


def test_answer_echoes_the_client_model() -> None:
    p = plan(request(messages=[user("x")]), SETTINGS, None, Session())
    completion = {"choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    message = answer(p, completion, message_id="msg_1")
    assert message["model"] == "claude-opus-5-5"
    assert message["content"] == [{"type": "text", "text": "hi"}]


def test_count_body_has_the_upstream_model_and_no_max_tokens() -> None:
    req = parse_count_tokens_request({"model": "claude-opus-5-5", "messages": [user("x")]})
    body = count_body(req, SETTINGS)
    assert body["model"] == "qwen2.5-coder"
    assert "max_tokens" not in body


@pytest.mark.parametrize("grammar", ["on", "off"])
def test_text_tool_calls_carry_the_tool_grammar_when_on(grammar: str) -> None:
    settings = replace(LLAMA, text_tool_calls="on", tool_grammar=grammar)
    p = plan(request(messages=[user("x")], tools=[TOOL]), settings, INFO, SLOTS)
    assert ("grammar" in p.body) == (grammar == "on")
    no_tools = plan(request(messages=[user("x")]), settings, INFO, SLOTS)
    assert "grammar" not in no_tools.body


@pytest.mark.parametrize("hint", ["on", "off"])
def test_repeat_hint_stage(hint: str) -> None:
    use = {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "a"}}
    again = {**use, "id": "t2"}
    messages = [
        user("Read a"),
        {"role": "assistant", "content": [use]},
        user([{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]),
        {"role": "assistant", "content": [again]},
        user([{"type": "tool_result", "tool_use_id": "t2", "content": "x"}]),
    ]
    body = plan(
        request(messages=messages, tools=[TOOL]), replace(SETTINGS, repeat_hint=hint), None, Session()
    ).body
    last = body["messages"][-1]
    reminded = last["role"] == "user" and "same arguments 2 times" in str(last["content"])
    assert reminded == (hint == "on")
