"""The official `anthropic` Python SDK as the client of the app (over httpx.ASGITransport), with an
OpenAI-compatible upstream played by httpx.MockTransport."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import httpx2  # the anthropic SDK's HTTP client package; our app's upstream side uses httpx
import pytest
from ccproxy.app import create_app
from ccproxy.config import Settings

pytestmark = pytest.mark.app

TOKEN = "sdk-proxy-token"
SETTINGS = Settings(upstream="http://upstream.test/v1", token=TOKEN, ping_interval=0.05, model="local-model")
WRITE_TOOL: dict[str, Any] = {
    "name": "Write",
    "description": "Write a file to the local filesystem.",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["file_path", "content"],
    },
}
ARGS = {"file_path": "/workspace/notes/hello.txt", "content": 'line one\nline "two"\n'}


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def tool_call_stream(arguments: str, pieces: int) -> bytes:
    size = -(-len(arguments) // pieces)
    fragments = [arguments[i : i + size] for i in range(0, len(arguments), size)]
    out = [
        chunk({"role": "assistant", "content": "I'll write it."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "Write", "arguments": ""},
                    }
                ]
            }
        ),
        *[chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in fragments],
        chunk({}, "tool_calls"),
        b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":321,"completion_tokens":40}}\n\n',
        b"data: [DONE]\n\n",
    ]
    return b"".join(out)


class Upstream:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        assert request.headers["authorization"] == "Bearer upstream-key"
        if body.get("stream"):
            return httpx.Response(200, content=tool_call_stream(json.dumps(ARGS), pieces=9))
        return httpx.Response(
            200,
            json={
                "id": "c",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hello there."},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 20,
                    "completion_tokens": 3,
                    "prompt_tokens_details": {"cached_tokens": 16},
                },
            },
        )


def sdk_client(upstream: Upstream) -> anthropic.AsyncAnthropic:
    settings = Settings(**{**SETTINGS.__dict__, "upstream_key": "upstream-key"})
    app = create_app(settings, transport=httpx.MockTransport(upstream))
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
    return anthropic.AsyncAnthropic(
        api_key=TOKEN, base_url="http://proxy.test", http_client=http, max_retries=0
    )


async def test_sdk_non_streaming_message() -> None:
    upstream = Upstream()
    async with sdk_client(upstream) as client:
        message = await client.messages.create(
            model="claude-sonnet-5", max_tokens=256, messages=[{"role": "user", "content": "Say hello"}]
        )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "claude-sonnet-5"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello there."
    assert message.usage.output_tokens == 3
    assert message.usage.cache_read_input_tokens == 16
    assert message.usage.input_tokens == 4  # uncached part of the prompt
    assert upstream.bodies[0]["model"] == "local-model"


async def test_sdk_stream_final_message_with_fragmented_tool_arguments() -> None:
    upstream = Upstream()
    async with (
        sdk_client(upstream) as client,
        client.messages.stream(
            model="claude-opus-4-8",
            max_tokens=1024,
            tools=[WRITE_TOOL],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "Write the notes file"}],
        ) as stream,
    ):
        partials = [e.partial_json async for e in stream if e.type == "input_json"]
        message = await stream.get_final_message()
    assert len(partials) >= 5
    assert message.stop_reason == "tool_use"
    text, tool = message.content
    assert text.type == "text"
    assert text.text == "I'll write it."
    assert tool.type == "tool_use"
    assert tool.id == "call_abc"
    assert tool.name == "Write"
    assert tool.input == ARGS
    assert message.usage.output_tokens == 40
    assert upstream.bodies[0]["stream"] is True


async def test_sdk_count_tokens() -> None:
    upstream = Upstream()
    async with sdk_client(upstream) as client:
        small = await client.messages.count_tokens(
            model="claude-opus-4-8", messages=[{"role": "user", "content": "hello"}]
        )
        large = await client.messages.count_tokens(
            model="claude-opus-4-8",
            system="You are a careful assistant. " * 50,
            tools=[WRITE_TOOL],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "hello"}],
        )
    assert 0 < small.input_tokens < 20
    assert large.input_tokens > small.input_tokens + 250
    assert upstream.bodies == []


async def test_sdk_sees_typed_errors() -> None:
    upstream = Upstream()
    async with sdk_client(upstream) as client:
        bad_auth = client.with_options(api_key="wrong")
        with pytest.raises(anthropic.AuthenticationError):
            await bad_auth.messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
        wrong_role: Any = [{"role": "nobody", "content": "x"}]
        with pytest.raises(anthropic.BadRequestError) as info:
            await client.messages.create(model="m", max_tokens=5, messages=wrong_role)
    assert "messages.0.role" in str(info.value)
