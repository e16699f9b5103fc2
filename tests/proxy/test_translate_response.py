"""OpenAI Chat Completions response -> Anthropic message."""

from __future__ import annotations

from typing import Any

import pytest
from ccproxy.errors import OverloadedError, ProxyError, UpstreamProtocolError
from ccproxy.translate_response import (
    TokenCounts,
    map_stop_reason,
    thinking_signature,
    to_anthropic_message,
    token_counts,
)

pytestmark = pytest.mark.unit


def completion(message: dict[str, Any], finish: str | None = "stop", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
    }
    body.update(extra)
    return body


def translate(body: dict[str, Any], stop_sequences: tuple[str, ...] = ()) -> dict[str, Any]:
    return dict(
        to_anthropic_message(
            body, model="claude-opus-5-5", message_id="msg_abc", stop_sequences=stop_sequences
        )
    )


# A llama-server non-streaming answer with a tool call (shape as served by b11434).
LLAMA_TOOL_CALL = {
    "choices": [
        {
            "finish_reason": "tool_calls",
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "type": "function",
                        "function": {
                            "name": "Write",
                            "arguments": '{"file_path":"/workspace/hello.txt","content":"hi\\n"}',
                        },
                        "id": "Vq7Zt1cKx0aB2Pq9",
                    }
                ],
            },
        }
    ],
    "created": 1763770000,
    "model": "qwen2.5-coder-0.5b-instruct-q8_0.gguf",
    "system_fingerprint": "b11434-0a1b2c3d",
    "object": "chat.completion",
    "usage": {
        "completion_tokens": 31,
        "prompt_tokens": 2048,
        "total_tokens": 2079,
        "prompt_tokens_details": {"cached_tokens": 2000},
    },
    "id": "chatcmpl-Hx2k9Qm3",
    "timings": {"cache_n": 2000, "prompt_n": 48, "predicted_n": 31},
}


def test_llama_server_tool_call() -> None:
    message = translate(LLAMA_TOOL_CALL)
    assert message == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-5-5",
        "content": [
            {
                "type": "tool_use",
                "id": "Vq7Zt1cKx0aB2Pq9",
                "name": "Write",
                "input": {"file_path": "/workspace/hello.txt", "content": "hi\n"},
            }
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 48,
            "output_tokens": 31,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 2000,
        },
    }


def test_text_reasoning_and_tools_in_order() -> None:
    body = completion(
        {
            "content": "Let me check.",
            "reasoning_content": "Need to list files.",
            "tool_calls": [
                {
                    "id": "a",
                    "type": "function",
                    "function": {"name": "Bash", "arguments": '{"command":"ls"}'},
                },
                {"type": "function", "function": {"name": "Read", "arguments": {"file_path": "/x"}}},
                {"id": "c", "type": "function", "function": {"name": "TaskList", "arguments": ""}},
            ],
        },
        "tool_calls",
    )
    content = translate(body)["content"]
    assert content == [
        {
            "type": "thinking",
            "thinking": "Need to list files.",
            "signature": thinking_signature("Need to list files."),
        },
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "a", "name": "Bash", "input": {"command": "ls"}},
        {"type": "tool_use", "id": "toolu_abc_1", "name": "Read", "input": {"file_path": "/x"}},
        {"type": "tool_use", "id": "c", "name": "TaskList", "input": {}},
    ]


@pytest.mark.parametrize(
    ("finish", "message", "stop_sequences", "extra_choice", "reason", "seq", "text"),
    [
        ("stop", {"content": "hi"}, (), {}, "end_turn", None, "hi"),
        ("length", {"content": "hi"}, (), {}, "max_tokens", None, "hi"),
        ("content_filter", {"content": ""}, (), {}, "refusal", None, None),
        (None, {"content": "hi"}, (), {}, "end_turn", None, "hi"),
        ("stop", {"content": "hi"}, ("##",), {"stop_reason": "##"}, "stop_sequence", "##", "hi"),
        ("stop", {"content": "hi##"}, ("##",), {}, "stop_sequence", "##", "hi"),
        ("stop", {"content": "hi"}, ("##",), {}, "end_turn", None, "hi"),
    ],
    ids=["stop", "length", "filter", "none", "vllm-stop-reason", "stop-in-text", "eos-with-stops"],
)
def test_stop_reason_table(
    finish: str | None,
    message: dict[str, Any],
    stop_sequences: tuple[str, ...],
    extra_choice: dict[str, Any],
    reason: str,
    seq: str | None,
    text: str | None,
) -> None:
    body = completion(message, finish)
    body["choices"][0].update(extra_choice)
    result = translate(body, stop_sequences)
    assert result["stop_reason"] == reason
    assert result["stop_sequence"] == seq
    assert result["content"] == ([{"type": "text", "text": text}] if text else [])


@pytest.mark.parametrize(
    ("finish", "tools", "seq", "expected"),
    [
        ("stop", False, None, "end_turn"),
        ("stop", True, None, "tool_use"),
        ("tool_calls", True, None, "tool_use"),
        ("tool_calls", False, None, "end_turn"),
        ("function_call", False, None, "end_turn"),
        ("length", True, None, "max_tokens"),
        ("stop", False, "X", "stop_sequence"),
        (None, False, None, None),
        (None, True, None, "tool_use"),
    ],
)
def test_map_stop_reason(finish: str | None, tools: bool, seq: str | None, expected: str | None) -> None:
    assert map_stop_reason(finish, has_tool_calls=tools, stop_sequence=seq) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, TokenCounts()),
        ({"usage": {"prompt_tokens": 10, "completion_tokens": 2}}, TokenCounts(10, None, 2)),
        (
            {
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": 2,
                    "prompt_tokens_details": {"cached_tokens": 8},
                }
            },
            TokenCounts(10, 8, 2),
        ),
        ({"timings": {"cache_n": 8, "prompt_n": 2, "predicted_n": 4}}, TokenCounts(10, 8, 4)),
        (
            {
                "usage": {"prompt_tokens": 10, "completion_tokens": 2},
                "timings": {"cache_n": 7, "prompt_n": 3},
            },
            TokenCounts(10, 7, 2),
        ),
        ({"usage": {"prompt_tokens": -1, "completion_tokens": True}}, TokenCounts()),
    ],
    ids=["nothing", "usage", "cached-tokens", "timings-only", "usage+timings", "junk"],
)
def test_token_counts(payload: dict[str, Any], expected: TokenCounts) -> None:
    assert token_counts(payload) == expected


def test_usage_input_tokens_exclude_cached() -> None:
    assert TokenCounts(100, 90, 5).usage() == {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 90,
    }
    assert TokenCounts().usage(input_fallback=12, output_fallback=3)["input_tokens"] == 12


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"choices": []},
        {"choices": ["x"]},
        {"choices": [{"message": "x"}]},
        completion({"content": 5}),
        completion({"content": "", "reasoning_content": {"a": 1}}),
        completion({"tool_calls": "x"}),
        completion({"tool_calls": [{"function": {"arguments": "{}"}}]}),
        completion({"tool_calls": [{"function": {"name": "A", "arguments": "{bad"}}]}),
        completion({"tool_calls": [{"function": {"name": "A", "arguments": "[1]"}}]}),
        completion({"content": "x"}, finish=7),  # type: ignore[arg-type]
    ],
)
def test_garbage_raises_protocol_error(body: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        to_anthropic_message(body, model="m", message_id="msg_1")


def test_error_body_raises_mapped_error() -> None:
    with pytest.raises(OverloadedError):
        to_anthropic_message({"error": {"code": 503, "message": "loading"}}, model="m", message_id="msg_1")
    with pytest.raises(ProxyError) as info:
        to_anthropic_message({"error": {"code": 500, "message": "boom"}}, model="m", message_id="msg_1")
    assert info.value.status == 500


def test_openrouter_reasoning_field() -> None:
    content = translate(completion({"content": "ok", "reasoning": "think"}))["content"]
    assert content[0] == {"type": "thinking", "thinking": "think", "signature": thinking_signature("think")}


def test_signature_is_stable_and_text_specific() -> None:
    assert thinking_signature("a") == thinking_signature("a")
    assert thinking_signature("a") != thinking_signature("b")
    assert thinking_signature("a").startswith("ccproxy:")
