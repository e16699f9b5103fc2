"""The shared prefix and its key (pure): where the prefix ends, what the key covers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ccproxy.prefix_key import (
    SENTINEL,
    cut_prefix,
    filename,
    model_identity,
    prefix_key,
    probe_body,
)
from ccproxy.translate_request import RequestOptions, to_openai_request
from ccproxy.types_anthropic import parse_messages_request

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
TOOL = {"type": "function", "function": {"name": "Write", "parameters": {"type": "object"}}}
PROPS: dict[str, Any] = {
    "model_path": "/models/model.gguf",
    "model_alias": "/models/model.gguf",
    "model_ftype": "Q4_K - Medium",
    "build_info": "b11434-unknown",
    "default_generation_settings": {"n_ctx": 8192},
    "chat_template": "{{ ignored }}",
}
MODELS = {"data": [{"id": "m", "meta": {"n_params": 630167424, "size": 485452288, "n_embd": 896}}]}


def test_probe_keeps_the_leading_system_message_and_the_tools() -> None:
    body = {
        "model": "m",
        "tools": [TOOL],
        "messages": [
            {"role": "system", "content": "You are Claude Code."},
            {"role": "user", "content": "<system-reminder>Today is ...</system-reminder>hi"},
            {"role": "assistant", "content": "hello"},
        ],
        "tool_choice": "none",
        "max_tokens": 100,
        "stream": True,
        "stream_options": {"include_usage": True},
        "id_slot": 0,
        "cache_prompt": True,
    }
    probe = probe_body(body)
    assert probe["messages"] == [
        {"role": "system", "content": "You are Claude Code."},
        {"role": "user", "content": SENTINEL},
    ]
    assert probe["tools"] == [TOOL]
    assert probe["tool_choice"] == "none"
    assert not {"max_tokens", "stream", "stream_options", "id_slot"} & set(probe)
    assert body["messages"][1]["role"] == "user"  # the request itself is untouched


def test_probe_without_a_system_message_renders_the_tools_alone() -> None:
    probe = probe_body({"tools": [TOOL], "messages": [{"role": "user", "content": "hi"}]})
    assert probe["messages"] == [{"role": "user", "content": SENTINEL}]


def test_prefix_ends_where_the_first_user_turn_begins() -> None:
    rendered = (
        f"<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\n{SENTINEL}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert cut_prefix(rendered) == "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\n"
    assert cut_prefix("a template that dropped the message") is None
    assert cut_prefix(SENTINEL) is None  # nothing before it: no prefix worth keeping


def test_the_key_covers_the_model_and_the_rendered_prefix() -> None:
    identity = model_identity(PROPS, MODELS)
    key = prefix_key(identity, "prefix")
    assert len(key) == 32
    assert int(key, 16) >= 0
    assert prefix_key(model_identity(dict(PROPS), MODELS), "prefix") == key  # deterministic
    assert prefix_key(identity, "prefix ") != key
    other_files = [
        {**PROPS, "model_path": "/models/other.gguf"},
        {**PROPS, "build_info": "b11500"},
        {**PROPS, "model_ftype": "Q8_0"},
        {**PROPS, "default_generation_settings": {"n_ctx": 4096}},
    ]
    for props in other_files:
        assert prefix_key(model_identity(props, MODELS), "prefix") != key, props
    same_path_other_weights = {
        "data": [{"meta": {"n_params": 1543714304, "size": 986046272, "n_embd": 1536}}]
    }
    assert prefix_key(model_identity(PROPS, same_path_other_weights), "prefix") != key
    assert "chat_template" not in identity  # the template shows in the rendered prefix itself
    # the parts are length-prefixed: moving text between identity and prefix changes the key
    assert prefix_key("ab", "c") != prefix_key("a", "bc")


def test_identity_tolerates_missing_fields() -> None:
    assert json.loads(model_identity({}, None)) == {
        "build_info": None,
        "meta": None,
        "model_alias": None,
        "model_ftype": None,
        "model_path": None,
        "n_ctx": None,
    }
    assert json.loads(model_identity(PROPS, {"data": ["odd"]}))["meta"] is None


def test_filename_is_one_safe_name() -> None:
    name = filename("0123456789abcdef0123456789abcdef")
    assert name == "ccproxy-prefix-0123456789abcdef0123456789abcdef.bin"
    assert "/" not in name


def test_recorded_claude_code_request_probe_keeps_system_and_tools() -> None:
    body = json.loads((FIXTURES / "tool_search_off" / "01-turn1.json").read_text())["body"]
    openai = to_openai_request(parse_messages_request(body), RequestOptions(), stream=True)
    probe = probe_body(openai)
    assert [m["role"] for m in probe["messages"]] == ["system", "user"]
    assert probe["messages"][0] == openai["messages"][0]
    assert probe["tools"] == openai["tools"]
    assert len(probe["tools"]) == len(body["tools"])
    assert "Write" in json.dumps(probe["tools"])
