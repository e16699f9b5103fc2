"""Anthropic request -> OpenAI request: mapping tables, recorded Claude Code requests, determinism."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from ccproxy.translate_messages import is_billing_header
from ccproxy.translate_request import RequestOptions, encode_upstream, to_openai_request
from ccproxy.types_anthropic import MessagesRequest, parse_count_tokens_request, parse_messages_request

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "claude_code"
RECORDINGS = [FIXTURES, FIXTURES / "tool_search_off", FIXTURES / "interactive"]
OPTS = RequestOptions()
BILLING = "x-anthropic-billing-header: cc_version=2.1.330.f73; cc_entrypoint=sdk-cli;"


def recorded(directory: Path, name: str) -> dict[str, Any]:
    """A recorded request body; ``name`` may omit the NN- sequence prefix."""
    path = directory / name
    if not path.exists():
        (path,) = directory.glob(f"[0-9][0-9]-{name.split('-', 1)[1]}")
    body: dict[str, Any] = json.loads(path.read_text())["body"]
    return body


def common_prefix_len(a: bytes, b: bytes) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def request(**fields: Any) -> MessagesRequest:
    body: dict[str, Any] = {"model": "claude-opus-5-5", "max_tokens": 1000, "messages": []}
    body.update(fields)
    return parse_messages_request(body)


def translate(opts: RequestOptions = OPTS, *, stream: bool = False, **fields: Any) -> dict[str, Any]:
    return to_openai_request(request(**fields), opts, stream=stream)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


# --- recorded Claude Code requests --------------------------------------------------------------------


@pytest.fixture(params=RECORDINGS, ids=["print-mode", "tool-search-off", "interactive"])
def recording(request: pytest.FixtureRequest) -> Path:
    directory: Path = request.param
    return directory


def test_recorded_first_turn_has_no_system_role_left_and_no_billing_header(recording: Path) -> None:
    raw = recorded(recording, "01-turn1.json")
    assert any(m["role"] == "system" for m in raw["messages"]), "fixture should carry a role: system message"
    body = to_openai_request(parse_messages_request(raw), OPTS, stream=True)
    roles = [m["role"] for m in body["messages"]]
    assert roles[0] == "system"
    assert "system" not in roles[1:]
    system = body["messages"][0]["content"]
    assert BILLING.split(":")[0] not in system
    # the in-messages system text (environment section) is merged after the system prompt: verbatim
    # with the layout off, without its session-varying lines with the (default) stable layout
    env_text = raw["messages"][1]["content"]
    env_text = env_text if isinstance(env_text, str) else env_text[0]["text"]
    off = RequestOptions(prompt_layout="off")
    assert to_openai_request(parse_messages_request(raw), off, stream=True)["messages"][0][
        "content"
    ].endswith(env_text)
    assert env_text.partition(" - Primary working directory")[0] + " - Platform: linux\n" in system
    assert "Primary working directory" not in system
    assert "Today's date is" not in system
    assert system.startswith(("You are a Claude agent", "You are Claude Code"))
    assert body["messages"][1]["role"] == "user"
    assert body["max_tokens"] == 128000  # as requested: the plan clamps it (test_plan.py)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    # nothing Anthropic-only leaks upstream
    for key in ("metadata", "thinking", "context_management", "output_config", "system", "cache_control"):
        assert key not in body
    assert "cache_control" not in encode_upstream(body).decode()


def test_recorded_billing_header_present_in_default_recording() -> None:
    raw = recorded(FIXTURES, "01-turn1.json")
    assert is_billing_header(raw["system"][0]["text"])
    kept = to_openai_request(
        parse_messages_request(raw),
        RequestOptions(drop_billing_header=False),
        stream=False,
    )
    assert kept["messages"][0]["content"].startswith("x-anthropic-billing-header:")


def test_recorded_tools_translated(recording: Path) -> None:
    raw = recorded(recording, "01-turn1.json")
    body = to_openai_request(parse_messages_request(raw), OPTS, stream=True)
    expected = sorted(t["name"] for t in raw["tools"] if not t.get("defer_loading"))
    names = [t["function"]["name"] for t in body["tools"]]
    assert names == expected
    assert "Write" in names
    assert "Bash" in names
    assert "Read" in names
    for tool in body["tools"]:
        assert tool["type"] == "function"
        original = next(t for t in raw["tools"] if t["name"] == tool["function"]["name"])
        assert tool["function"]["parameters"] == original["input_schema"]
        assert tool["function"]["description"] == original["description"]


def test_recorded_title_request() -> None:
    raw = recorded(FIXTURES / "interactive", "02-side.json")
    body = to_openai_request(parse_messages_request(raw), OPTS, stream=True)
    assert "tools" not in body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": raw["output_config"]["format"]["schema"]},
    }
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert not body["messages"][0]["content"].startswith("x-anthropic-billing-header")


def test_recorded_tool_search_off_has_about_two_dozen_tools() -> None:
    body = to_openai_request(
        parse_messages_request(recorded(FIXTURES / "tool_search_off", "01-turn1.json")), OPTS, stream=True
    )
    assert 18 <= len(body["tools"]) <= 30


def test_recorded_deferred_placeholder_dropped_unless_asked() -> None:
    req = parse_messages_request(recorded(FIXTURES, "01-turn1.json"))
    names = [t["function"]["name"] for t in to_openai_request(req, OPTS, stream=False)["tools"]]
    assert "DeferredToolPlaceholder" not in names
    keep = RequestOptions(drop_deferred_tools=False)
    assert "DeferredToolPlaceholder" in [
        t["function"]["name"] for t in to_openai_request(req, keep, stream=False)["tools"]
    ]


def test_recorded_second_turn_tool_round_trip(recording: Path) -> None:
    raw = recorded(recording, "02-turn2-tool-result.json")
    body = to_openai_request(parse_messages_request(raw), OPTS, stream=True)
    msgs = body["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool"]
    call = msgs[2]["tool_calls"][0]
    tool_use = next(b for b in raw["messages"][2]["content"] if b["type"] == "tool_use")
    assert call["id"] == tool_use["id"] == msgs[3]["tool_call_id"]
    assert call["function"]["name"] == "Write"
    assert json.loads(call["function"]["arguments"]) == tool_use["input"]
    assert msgs[3]["content"].startswith("File created successfully")


def test_recorded_encoding_is_deterministic(recording: Path) -> None:
    (path,) = recording.glob("*-turn2-tool-result.json")
    raw_text = path.read_text()
    encodings = {
        encode_upstream(
            to_openai_request(parse_messages_request(json.loads(raw_text)["body"]), OPTS, stream=True)
        )
        for _ in range(3)
    }
    assert len(encodings) == 1


def test_recorded_turns_are_prefix_stable(recording: Path) -> None:
    """Turn 2's upstream bytes start with turn 1's bytes up to the end of turn 1's last message,
    although Claude Code moved cache_control and re-sent the system message as a string."""
    first = to_openai_request(parse_messages_request(recorded(recording, "01-turn1.json")), OPTS, stream=True)
    second_req = parse_messages_request(recorded(recording, "02-turn2-tool-result.json"))
    second = to_openai_request(second_req, RequestOptions(), stream=True)
    a, b = encode_upstream(first), encode_upstream(second)
    messages_end = a.index(b'],"max_tokens"')  # end of turn 1's messages array
    assert b[:messages_end] == a[:messages_end]
    assert common_prefix_len(a, b) == messages_end
    assert b[messages_end : messages_end + 1] == b","  # turn 2 appends messages right there
    assert second["messages"][: len(first["messages"])] == first["messages"]


# --- system -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "messages", "expected_system", "expected_roles"),
    [
        ("Be brief.", [user("hi")], "Be brief.", ["system", "user"]),
        (
            [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
            [user("hi")],
            "A\n\nB",
            ["system", "user"],
        ),
        (
            [{"type": "text", "text": BILLING}, {"type": "text", "text": "A"}],
            [user("hi")],
            "A",
            ["system", "user"],
        ),
        (f"{BILLING}\nReal prompt", [user("hi")], "Real prompt", ["system", "user"]),
        (None, [user("hi"), {"role": "system", "content": "S1"}], "S1", ["system", "user"]),
        (
            "P",
            [user("hi"), {"role": "system", "content": [{"type": "text", "text": "S1"}]}, user("more")],
            "P\n\nS1",
            ["system", "user", "user"],
        ),
        (None, [user("hi")], None, ["user"]),
        ([{"type": "text", "text": BILLING}], [user("hi")], None, ["user"]),
    ],
    ids=["string", "blocks", "billing-block", "billing-line", "system-msg", "merged", "none", "only-billing"],
)
def test_system_mapping(
    system: Any, messages: list[dict[str, Any]], expected_system: str | None, expected_roles: list[str]
) -> None:
    fields: dict[str, Any] = {"messages": messages}
    if system is not None:
        fields["system"] = system
    body = translate(**fields)
    assert [m["role"] for m in body["messages"]] == expected_roles
    if expected_system is not None:
        assert body["messages"][0]["content"] == expected_system


def test_late_system_message_becomes_user_reminder_by_default() -> None:
    messages = [user("hi"), assistant("hello"), {"role": "system", "content": "Now be terse."}, user("go")]
    body = translate(system="P", messages=messages)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user", "user"]
    assert body["messages"][0]["content"] == "P"
    assert body["messages"][3]["content"] == "<system-reminder>\nNow be terse.\n</system-reminder>"
    merged = translate(RequestOptions(late_system_as_user=False), system="P", messages=messages)
    assert merged["messages"][0]["content"] == "P\n\nNow be terse."
    assert "system" not in [m["role"] for m in merged["messages"][1:]]


# --- content --------------------------------------------------------------------------------------------


PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("plain", "plain"),
        (
            [
                {"type": "text", "text": "a"},
                {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}},
            ],
            "a\n\nb",
        ),
        (
            [{"type": "text", "text": "look"}, {"type": "image", "source": PNG}],
            [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        ),
        (
            [{"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}],
            [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}],
        ),
        (
            [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}}],
            "doc",
        ),
        ([{"type": "future_block", "x": 1}, {"type": "text", "text": "kept"}], "kept"),
    ],
    ids=["string", "text-blocks", "base64-image", "url-image", "text-document", "unknown-block-skipped"],
)
def test_user_content(content: Any, expected: Any) -> None:
    body = translate(messages=[user(content)])
    assert body["messages"] == [{"role": "user", "content": expected}]


def test_tool_results_in_order_with_text_after_and_error_flag() -> None:
    messages = [
        user("do it"),
        assistant(
            [
                {"type": "thinking", "thinking": "plan", "signature": "sig"},
                {"type": "text", "text": "Running two tools."},
                {"type": "tool_use", "id": "toolu_a", "name": "Bash", "input": {"command": "ls"}},
                {"type": "tool_use", "id": "toolu_b", "name": "Read", "input": {"file_path": "/x"}},
            ]
        ),
        user(
            [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "a.txt"},
                {"type": "text", "text": "between"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_b",
                    "content": [{"type": "text", "text": "no such file"}],
                    "is_error": True,
                },
                {"type": "text", "text": "after"},
            ]
        ),
    ]
    msgs = translate(messages=messages)["messages"]
    assert msgs[1] == {
        "role": "assistant",
        "content": "Running two tools.",
        "tool_calls": [
            {
                "id": "toolu_a",
                "type": "function",
                "function": {"name": "Bash", "arguments": '{"command": "ls"}'},
            },
            {
                "id": "toolu_b",
                "type": "function",
                "function": {"name": "Read", "arguments": '{"file_path": "/x"}'},
            },
        ],
        "reasoning_content": "plan",
    }
    assert msgs[2:] == [
        {"role": "tool", "tool_call_id": "toolu_a", "content": "a.txt"},
        {"role": "tool", "tool_call_id": "toolu_b", "content": "Error: no such file"},
        {"role": "user", "content": "between\n\nafter"},
    ]


def test_image_inside_tool_result_moves_to_following_user_message() -> None:
    messages = [
        user("read it"),
        assistant([{"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/a.png"}}]),
        user(
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "image", "source": PNG}, {"type": "text", "text": "an image"}],
                }
            ]
        ),
    ]
    msgs = translate(messages=messages)["messages"]
    assert msgs[1]["content"] is None  # tool calls only
    assert msgs[2]["role"] == "tool"
    assert msgs[2]["tool_call_id"] == "t1"
    assert msgs[2]["content"].startswith("an image")
    assert msgs[3]["role"] == "user"
    assert msgs[3]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
    }


def test_tool_reference_and_empty_tool_results() -> None:
    messages = [
        user("x"),
        assistant([{"type": "tool_use", "id": "t1", "name": "ToolSearch", "input": {}}]),
        user(
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "tool_reference", "tool_name": "WebFetch"}],
                },
            ]
        ),
        assistant([{"type": "tool_use", "id": "t2", "name": "Bash", "input": {}}]),
        user([{"type": "tool_result", "tool_use_id": "t2"}]),
    ]
    msgs = translate(messages=messages)["messages"]
    assert msgs[2]["content"] == "Tool WebFetch is now available."
    assert msgs[4] == {"role": "tool", "tool_call_id": "t2", "content": ""}


def test_echoed_thinking_and_redacted_thinking() -> None:
    messages = [
        user("q"),
        assistant(
            [
                {"type": "thinking", "thinking": "t1", "signature": ""},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "answer"},
            ]
        ),
        user("next"),
    ]
    msgs = translate(messages=messages)["messages"]
    assert msgs[1] == {"role": "assistant", "content": "answer", "reasoning_content": "t1"}
    no_reasoning = translate(RequestOptions(send_reasoning=False), messages=messages)
    assert "reasoning_content" not in no_reasoning["messages"][1]


# --- parameters -------------------------------------------------------------------------------------------

TOOL = {"name": "get", "description": "Get it", "input_schema": {"type": "object", "properties": {}}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        ({"type": "tool", "name": "get"}, {"tool_choice": {"type": "function", "function": {"name": "get"}}}),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            {"tool_choice": "auto", "parallel_tool_calls": False},
        ),
    ],
    ids=["auto", "any", "none", "tool", "no-parallel"],
)
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    body = translate(messages=[user("x")], tools=[TOOL], tool_choice=choice)
    assert {k: body[k] for k in expected} == expected
    if "parallel_tool_calls" not in expected:
        assert "parallel_tool_calls" not in body


def test_tool_choice_without_tools_and_empty_tools_omitted() -> None:
    body = translate(messages=[user("x")], tools=[], tool_choice={"type": "auto"})
    assert "tools" not in body
    assert "tool_choice" not in body


def test_deferred_tools_sent_once_referenced() -> None:
    tools = [
        {"name": "Bash", "input_schema": {"type": "object"}},
        {"name": "WebFetch", "input_schema": {"type": "object"}, "defer_loading": True},
        {"name": "Cron", "input_schema": {"type": "object"}, "defer_loading": True},
        {"name": "Zed", "input_schema": {"type": "object"}},
    ]
    before = translate(messages=[user("x")], tools=tools)
    assert [t["function"]["name"] for t in before["tools"]] == ["Bash", "Zed"]
    messages = [
        user("x"),
        assistant([{"type": "tool_use", "id": "t1", "name": "ToolSearch", "input": {"query": "fetch"}}]),
        user(
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "tool_reference", "tool_name": "WebFetch"}],
                }
            ]
        ),
    ]
    after = translate(messages=messages, tools=tools)
    assert [t["function"]["name"] for t in after["tools"]] == ["Bash", "Zed", "WebFetch"]
    messages += [
        assistant([{"type": "tool_use", "id": "t2", "name": "ToolSearch", "input": {"query": "cron"}}]),
        user(
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "t2",
                    "content": [
                        {"type": "tool_reference", "tool_name": "Cron"},
                        {"type": "tool_reference", "tool_name": "WebFetch"},
                    ],
                }
            ]
        ),
    ]
    later = translate(messages=messages, tools=tools)
    assert [t["function"]["name"] for t in later["tools"]] == ["Bash", "Zed", "WebFetch", "Cron"]
    keep_all = translate(RequestOptions(drop_deferred_tools=False), messages=messages, tools=tools)
    assert [t["function"]["name"] for t in keep_all["tools"]] == ["Bash", "Cron", "WebFetch", "Zed"]


def test_recorded_tool_search_round_trip() -> None:
    """Claude Code 2.1.330 loads a deferred tool: turn 2 adds it with defer_loading and references it."""
    directory = FIXTURES / "tool_search"
    first = to_openai_request(parse_messages_request(recorded(directory, "01-turn1.json")), OPTS, stream=True)
    second = to_openai_request(
        parse_messages_request(recorded(directory, "02-turn2-tool-result.json")), OPTS, stream=True
    )
    first_names = [t["function"]["name"] for t in first["tools"]]
    second_names = [t["function"]["name"] for t in second["tools"]]
    assert "WebFetch" not in first_names
    assert second_names == [*first_names, "WebFetch"]  # appended: the earlier tools keep their prefix
    tool_msg = second["messages"][3]
    assert tool_msg["role"] == "tool"
    assert tool_msg["tool_call_id"] == "toolu_rec_1"
    fn = second["tools"][-1]["function"]
    definition = {"description": fn["description"], "name": "WebFetch", "parameters": fn["parameters"]}
    expected = json.dumps(definition, ensure_ascii=False)
    assert tool_msg["content"] == f"<functions>\n<function>{expected}</function>\n</functions>"
    assert second["messages"][4] == {"role": "user", "content": "Tool loaded."}


def test_tools_sorted_and_server_tools_dropped() -> None:
    tools = [
        {"name": "zeta", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        {"name": "alpha", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
    ]
    body = translate(messages=[user("x")], tools=tools)
    assert body["tools"] == [
        {"type": "function", "function": {"name": "alpha", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "zeta", "parameters": {"type": "object"}}},
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"stop_sequences": ["END", "STOP"]}, {"stop": ["END", "STOP"]}),
        ({"temperature": 0.2}, {"temperature": 0.2}),
        ({"top_p": 0.9}, {"top_p": 0.9}),
        ({"top_k": 40}, {"top_k": 40}),
        ({"max_tokens": 100}, {"max_tokens": 100}),
        (
            {
                "output_config": {
                    "effort": "low",
                    "format": {"type": "json_schema", "schema": {"type": "object"}},
                }
            },
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": {"type": "object"}},
                }
            },
        ),
        (
            {"output_format": {"type": "json_schema", "schema": {"type": "object"}}},
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": {"type": "object"}},
                }
            },
        ),
    ],
    ids=["stop", "temperature", "top_p", "top_k", "max_tokens", "output_config", "output_format"],
)
def test_parameters(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = translate(messages=[user("x")], **fields)
    assert {k: body.get(k) for k in expected} == expected


@pytest.mark.parametrize(
    ("thinking", "enabled"),
    [
        ({"type": "disabled"}, False),
        ({"type": "enabled", "budget_tokens": 1024}, True),
        ({"type": "adaptive"}, True),
    ],
)
def test_thinking_to_template_kwargs(thinking: dict[str, Any], enabled: bool) -> None:
    opts = RequestOptions(thinking_template_kwargs=True)
    body = translate(opts, messages=[user("x")], thinking=thinking)
    assert body["chat_template_kwargs"] == {"enable_thinking": enabled}


def test_stream_flags_and_extra_body() -> None:
    opts = RequestOptions(stream_usage=False, send_top_k=False, extra_body={"cache_prompt": True})
    body = translate(opts, stream=True, messages=[user("x")], top_k=5)
    assert body["stream"] is True
    assert "stream_options" not in body
    assert "top_k" not in body
    assert body["cache_prompt"] is True
    assert "stream" not in translate(messages=[user("x")])


def test_count_tokens_request_translates_without_max_tokens() -> None:
    req = parse_count_tokens_request({"model": "claude-haiku-4-5", "messages": [user("hi")], "tools": [TOOL]})
    body = to_openai_request(req, RequestOptions(), stream=False)
    assert "max_tokens" not in body
    assert body["messages"] == [{"role": "user", "content": "hi"}]


# --- encoding -----------------------------------------------------------------------------------------------


def test_encode_upstream_key_order_and_compact_ascii() -> None:
    body = {"stream": True, "messages": [{"role": "user", "content": "héllo"}], "max_tokens": 5, "model": "m"}
    body["id_slot"] = 1
    body["tools"] = []
    assert encode_upstream(body) == (
        b'{"model":"m","tools":[],"messages":[{"role":"user","content":"h\\u00e9llo"}],'
        b'"id_slot":1,"max_tokens":5,"stream":true}'
    )


def test_encode_upstream_rejects_nan() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        encode_upstream({"model": "m", "temperature": float("nan")})


def test_per_request_values_do_not_touch_the_prefix() -> None:
    messages = [user("hi")]
    a = encode_upstream({**translate(messages=messages, tools=[TOOL], max_tokens=10), "id_slot": 0})
    b = encode_upstream({**translate(messages=messages, tools=[TOOL], max_tokens=999), "id_slot": 3})
    end = a.index(b'"messages":[') + len(b'"messages":[{"role":"user","content":"hi"}]')
    assert a[:end] == b[:end]
    assert a[end:] != b[end:]


def test_synthetic_session_is_prefix_stable_turn_after_turn() -> None:
    """Three turns as Claude Code sends them: cache_control moves to the newest block, thinking is echoed."""
    cc = {"type": "ephemeral"}
    system = [
        {"type": "text", "text": BILLING},
        {"type": "text", "text": "You are Claude Code.", "cache_control": cc},
    ]
    env = {"role": "system", "content": "# Environment\ncwd: /workspace"}
    first_user = [
        {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
        {"type": "text", "text": "fix it"},
    ]
    turn_a = [
        {"type": "thinking", "thinking": "look first", "signature": "ccproxy:abc"},
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
    ]
    turn_b = [{"type": "tool_use", "id": "t2", "name": "Read", "input": {"file_path": "/workspace/a.py"}}]

    def with_cache(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [*blocks[:-1], {**blocks[-1], "cache_control": cc}]

    result_1 = [{"type": "tool_result", "tool_use_id": "t1", "content": "a.py"}]
    result_2 = [{"type": "tool_result", "tool_use_id": "t2", "content": "print(1)"}]
    turns = [
        [user(with_cache(first_user)), env],
        [user(first_user), env, assistant(turn_a), user(with_cache(result_1))],
        [
            user(first_user),
            env,
            assistant(turn_a),
            user(result_1),
            assistant(turn_b),
            user(with_cache(result_2)),
        ],
    ]
    encoded = [
        encode_upstream(translate(stream=True, system=system, tools=[TOOL], messages=m)) for m in turns
    ]
    for earlier, later in itertools.pairwise(encoded):
        end = earlier.index(b'],"max_tokens"')
        assert later[:end] == earlier[:end]
        assert later[end : end + 1] == b","
    assert b"billing" not in encoded[-1]
    assert b"cache_control" not in encoded[-1]
