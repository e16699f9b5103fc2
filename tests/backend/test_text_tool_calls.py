"""Tool calls written as text, recovered by the proxy (text_tool_calls auto: our template carries the
`ccproxy:text-tool-calls` marker), against the real llama-server and Qwen2.5-Coder-0.5B.

Without it llama-server's bare-JSON parser answers HTTP 500 ("does not match the expected peg-native
format") whenever a plain answer contains `{`, names an unknown tool, or a call is cut by max_tokens."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types import Message, TextBlock, ToolUseBlock
from harness import Ccproxy
from llama_helpers import dump
from test_proxy_llama import ASK, MAIN_MODEL, READ_FILE, SYSTEM, WRITE_FILE

pytestmark = pytest.mark.backend

# Prompts whose answers (greedy) contain braces: a 500 from llama-server before the fix.
# Recovery on its own (`--tool-grammar off`): asked for a dict literal, the 0.5B model answers with a
# call-shaped object naming no tool (`{"name": "dict", ...}`), which must come back as text. (With the
# tool grammar the same answer is forced into a call of a real tool: tests/backend/test_tool_grammar.py.)
BRACES = [
    "Show a Python dict literal with two keys. Do not use tools.",
    "What does {} mean in a Python format string? Answer in one sentence, no tools.",
]


def params(prompt: str, max_tokens: int = 64) -> dict[str, Any]:
    return {
        "model": MAIN_MODEL,
        "max_tokens": max_tokens,
        "system": SYSTEM,
        "tools": [WRITE_FILE, READ_FILE],
        "messages": [{"role": "user", "content": prompt}],
        "extra_body": {"temperature": 0},
    }


def streamed(client: anthropic.Anthropic, body: dict[str, Any]) -> tuple[list[str], Message]:
    with client.messages.stream(**body) as stream:
        kinds = [event.type for event in stream]
        return kinds, stream.get_final_message()


def text_of(message: Message) -> str:
    assert all(isinstance(b, TextBlock) for b in message.content), dump(message.model_dump())
    return "".join(b.text for b in message.content if isinstance(b, TextBlock))


@pytest.mark.parametrize("prompt", BRACES)
def test_text_with_braces_comes_back_as_text(proxy_without_grammar: Ccproxy, prompt: str) -> None:
    proxy = proxy_without_grammar
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused-local", max_retries=0, timeout=300)
    message = client.messages.create(**params(prompt))
    assert message.stop_reason in ("end_turn", "max_tokens"), dump(message.model_dump())
    assert "{" in text_of(message)
    upstream = [t for t in proxy.traces() if t.get("upstream_request")][-1]["upstream_request"]
    assert upstream["tool_choice"] == "none"  # the proxy recovers calls; the backend sends text

    kinds, final = streamed(client, params(prompt))
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert "error" not in kinds
    assert text_of(final) == text_of(message)


def test_tool_call_cut_by_max_tokens_is_text_not_an_error(client: anthropic.Anthropic) -> None:
    message = client.messages.create(**params(ASK, max_tokens=8))
    assert message.stop_reason == "max_tokens", dump(message.model_dump())
    assert text_of(message).lstrip().startswith("{")
    kinds, final = streamed(client, params(ASK, max_tokens=8))
    assert final.stop_reason == "max_tokens"
    assert "error" not in kinds


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_still_come_back_as_tool_use(client: anthropic.Anthropic, stream: bool) -> None:
    for prompt, name in [(ASK, "write_file"), ("Read the file README.md. Use read_file.", "read_file")]:
        body = params(prompt, max_tokens=96)
        message = streamed(client, body)[1] if stream else client.messages.create(**body)
        assert message.stop_reason == "tool_use", dump(message.model_dump())
        calls = [b for b in message.content if isinstance(b, ToolUseBlock)]
        assert [c.name for c in calls] == [name]
        assert isinstance(calls[0].input, dict)
        assert calls[0].input
