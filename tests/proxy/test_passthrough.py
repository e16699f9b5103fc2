"""The Anthropic pass-through (passthrough.py, raw_relay.py) through the app."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest
from fakes import (
    BASE,
    TOKEN,
    UPSTREAM_KEY,
    FakeUpstream,
    client_for,
    parse_sse,
    streaming,
    types,
)

pytestmark = pytest.mark.app


ANTHROPIC = replace(
    BASE,
    upstream="https://api.anthropic.test/v1",
    upstream_kind="anthropic",
    upstream_key=UPSTREAM_KEY,
    token=TOKEN,
)


BILLED = {
    "model": "claude-opus-4-8",
    "max_tokens": 100,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.abc; cc_entrypoint=cli;"}
    ],
    "messages": [{"role": "user", "content": "hi"}],
}


CLIENT_HEADERS = {
    "authorization": f"Bearer {TOKEN}",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    "x-claude-code-session-id": "sess-1",
}


async def test_passthrough_forwards_bytes_and_headers_and_injects_the_key() -> None:
    answer = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "hi"}],
        "model": "claude-opus-4-8",
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    upstream = FakeUpstream()
    upstream.routes["/v1/messages"] = lambda r: httpx.Response(200, json=answer)
    raw = json.dumps(BILLED, indent=3).encode()  # unusual formatting must survive byte for byte
    async with client_for(upstream, ANTHROPIC) as client:
        r = await client.post("/v1/messages?beta=true", content=raw, headers=CLIENT_HEADERS)
    assert r.status_code == 200
    assert r.json() == answer
    (request,) = upstream.requests
    assert request.content == raw
    assert request.url.query == b"beta=true"
    assert request.headers["x-api-key"] == UPSTREAM_KEY
    assert "authorization" not in request.headers
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["anthropic-beta"] == CLIENT_HEADERS["anthropic-beta"]


async def test_passthrough_stream_relays_bytes_and_pings_at_boundaries() -> None:
    frames: list[bytes | float | Exception] = [
        b"event: message_start\n"
        b'data: {"type":"message_start","message":{"id":"m","usage":{"input_tokens":3}}}\n\n',
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,',
        0.3,
        b'"content_block":{"type":"text","text":""}}\n\n',
        0.3,
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        b"event: message_delta\n"
        b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]
    answer, _ = streaming(frames)
    upstream = FakeUpstream()
    upstream.routes["/v1/messages"] = answer
    async with client_for(upstream, ANTHROPIC) as client:
        r = await client.post("/v1/messages", json={**BILLED, "stream": True}, headers=CLIENT_HEADERS)
        metrics = (await client.get("/metrics")).text
    labels = 'model="claude-opus-4-8",upstream="https://api.anthropic.test/v1"'
    assert f'ccproxy_tokens_total{{kind="input",{labels}}} 3.0' in metrics
    assert f'ccproxy_tokens_total{{kind="output",{labels}}} 1.0' in metrics
    events = parse_sse(r.text)
    kinds = types(events)
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    # no ping inside the split content_block_start event, pings after it
    assert kinds[1] == "content_block_start"
    assert "ping" in kinds[2:-3]
    assert b"".join(f for f in frames if isinstance(f, bytes)) in r.content.replace(
        b'event: ping\ndata: {"type":"ping"}\n\n', b""
    )


async def test_passthrough_stream_cut_gets_an_error_event() -> None:
    answer, _ = streaming(
        [b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n', b"event: content_blo"]
    )
    upstream = FakeUpstream()
    upstream.routes["/v1/messages"] = answer
    async with client_for(upstream, ANTHROPIC) as client:
        r = await client.post("/v1/messages", json={**BILLED, "stream": True}, headers=CLIENT_HEADERS)
    events = parse_sse(r.text.split("\n\n")[-2])  # the frame before it is the cut-off fragment
    assert events[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream stream ended before message_stop"},
    }
    assert r.text.endswith("\n\n")


async def test_passthrough_errors_keep_anthropic_bodies_and_retry_headers() -> None:
    err = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    upstream = FakeUpstream()
    upstream.routes["/v1/messages"] = lambda r: httpx.Response(429, json=err, headers={"retry-after": "12"})
    upstream.routes["/v1/messages/count_tokens"] = lambda r: httpx.Response(200, json={"input_tokens": 42})
    async with client_for(upstream, ANTHROPIC) as client:
        r = await client.post("/v1/messages", json=BILLED, headers=CLIENT_HEADERS)
        count = await client.post("/v1/messages/count_tokens", json=BILLED, headers=CLIENT_HEADERS)
    assert r.status_code == 429
    assert r.json() == err
    assert r.headers["retry-after"] == "12"
    assert count.json() == {"input_tokens": 42}
    assert upstream.requests[-1].headers["x-api-key"] == UPSTREAM_KEY
