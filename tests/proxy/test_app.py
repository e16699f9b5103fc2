"""The ASGI app (app.py) with an injected upstream (httpx.MockTransport): routes, auth, errors at the edge,
limits, the translated round trip."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fakes import (
    BASE,
    TEXT_STREAM,
    TOKEN,
    UPSTREAM_KEY,
    FakeUpstream,
    client_for,
    completion,
    messages_body,
    ok_completion,
    parse_sse,
    recorded,
    types,
)

pytestmark = pytest.mark.app


async def test_streamed_text_turn_is_translated_and_terminated() -> None:
    upstream = FakeUpstream(httpx.Response(200, content=b"".join(TEXT_STREAM)))
    async with client_for(upstream) as client:
        r = await client.post("/v1/messages?beta=true", json=messages_body(stream=True))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    assert types(events)[0] == "message_start"
    assert types(events)[-2:] == ["message_delta", "message_stop"]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "Hello world"
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert events[-2]["usage"]["output_tokens"] == 2
    (sent,) = upstream.bodies()
    assert sent["model"] == "local-model"
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["tools"][0]["function"]["name"] == "Write"


async def test_non_stream_tool_call() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "Write", "arguments": '{"file_path": "a"}'},
            }
        ],
    }
    upstream = FakeUpstream(httpx.Response(200, json=completion(message, "tool_calls")))
    async with client_for(upstream) as client:
        r = await client.post("/v1/messages", json=messages_body())
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "message"
    assert body["model"] == "claude-opus-4-8"
    assert body["stop_reason"] == "tool_use"
    assert body["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "Write", "input": {"file_path": "a"}}
    ]
    assert "stream" not in upstream.bodies()[0]


async def test_root_health_models_metrics_and_unknown_route() -> None:
    upstream = FakeUpstream(httpx.Response(200, content=b"".join(TEXT_STREAM)))
    async with client_for(upstream) as client:
        assert (await client.head("/")).status_code == 200
        assert (await client.get("/")).json()["name"] == "ccproxy"
        health = await client.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        models = (await client.get("/v1/models")).json()
        assert models["data"][0] == {
            "type": "model",
            "id": "local-model",
            "display_name": "local-model",
            "created_at": "1970-01-01T00:00:00Z",
        }
        await client.post("/v1/messages", json=messages_body(stream=True))
        metrics = (await client.get("/metrics")).text
        missing = await client.get("/v1/nothing")
    assert 'ccproxy_requests_total{endpoint="messages",model="local-model",status="200",upstream="' in metrics
    assert 'ccproxy_tokens_total{kind="output",model="local-model"' in metrics
    assert "ccproxy_request_duration_seconds_bucket" in metrics
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"


async def test_health_is_503_when_upstream_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    upstream = FakeUpstream()
    upstream.routes["/v1/models"] = refuse
    async with client_for(upstream) as client:
        r = await client.get("/health")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"
    assert "unreachable" in r.json()["error"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong"}, 401),
        ({"x-api-key": "wrong"}, 401),
        ({"authorization": f"Bearer {TOKEN}"}, 200),
        ({"x-api-key": TOKEN}, 200),
        ({"authorization": f"Bearer {TOKEN}", "x-api-key": "sk-ant-something-else"}, 200),
        ({"authorization": "Bearer placeholder", "x-api-key": TOKEN}, 200),
    ],
)
async def test_client_token(headers: dict[str, str], status: int) -> None:
    upstream = FakeUpstream(httpx.Response(200, json=completion({"role": "assistant", "content": "ok"})))
    settings = replace(BASE, token=TOKEN, upstream_key=UPSTREAM_KEY)
    async with client_for(upstream, settings) as client:
        r = await client.post("/v1/messages", json=messages_body(), headers=headers)
        count = await client.post(
            "/v1/messages/count_tokens",
            json={"model": "x", "messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
        )
    assert r.status_code == status
    assert count.status_code == status
    if status == 401:
        assert r.json()["error"]["type"] == "authentication_error"
        assert upstream.requests == []
        return
    (request,) = upstream.requests
    assert request.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "x-api-key" not in request.headers
    assert TOKEN.encode() not in request.content


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "invalid JSON"),
        (b"", "empty request body"),
        (b"[1, 2]", "body"),
        (json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode(), "max_tokens"),
        (json.dumps(messages_body(messages=[{"role": "robot", "content": "x"}])).encode(), "messages.0.role"),
    ],
)
async def test_invalid_requests_are_400_naming_the_problem(body: bytes, needle: str) -> None:
    upstream = FakeUpstream()
    async with client_for(upstream) as client:
        r = await client.post("/v1/messages", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert needle in r.json()["error"]["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("upstream_status", "upstream_headers", "status", "error_type", "extra_headers"),
    [
        (500, {}, 500, "api_error", {}),
        (503, {}, 529, "overloaded_error", {}),
        (429, {"retry-after": "7"}, 429, "rate_limit_error", {"retry-after": "7"}),
        (400, {}, 400, "invalid_request_error", {"x-should-retry": "false"}),
        (404, {}, 400, "invalid_request_error", {"x-should-retry": "false"}),
    ],
)
async def test_upstream_error_status_is_mapped(
    stream: bool,
    upstream_status: int,
    upstream_headers: dict[str, str],
    status: int,
    error_type: str,
    extra_headers: dict[str, str],
) -> None:
    answer = httpx.Response(
        upstream_status,
        headers=upstream_headers,
        json={"error": {"message": "upstream says no", "type": "x"}},
    )
    async with client_for(FakeUpstream(answer)) as client:
        r = await client.post("/v1/messages", json=messages_body(stream=stream))
    assert r.status_code == status
    assert r.json()["error"]["type"] == error_type
    assert "upstream says no" in r.json()["error"]["message"]
    assert "Traceback" not in r.text
    for name, value in extra_headers.items():
        assert r.headers[name] == value


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("exc", "status", "error_type"),
    [
        (httpx.ConnectError("refused"), 529, "overloaded_error"),
        (httpx.ConnectTimeout("slow connect"), 529, "overloaded_error"),
        (httpx.ReadTimeout("silent"), 504, "api_error"),
        (httpx.RemoteProtocolError("server hung up"), 529, "overloaded_error"),
    ],
)
async def test_upstream_transport_failures_are_mapped(
    stream: bool, exc: Exception, status: int, error_type: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    async with client_for(FakeUpstream(fail)) as client:
        r = await client.post("/v1/messages", json=messages_body(stream=stream))
    assert r.status_code == status
    assert r.json()["error"]["type"] == error_type


async def test_unexpected_proxy_bug_is_a_clean_500(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("ccproxy.plan.to_anthropic_message", boom)
    upstream = FakeUpstream(httpx.Response(200, json=completion({"role": "assistant", "content": "ok"})))
    async with client_for(upstream) as client:
        r = await client.post("/v1/messages", json=messages_body())
    assert r.status_code == 500
    assert r.json() == {
        "type": "error",
        "error": {"type": "api_error", "message": "internal proxy error (RuntimeError); see the proxy log"},
    }


async def test_upstream_url_credentials_are_redacted_and_work_with_a_key() -> None:
    upstream = FakeUpstream(ok_completion)
    settings = replace(BASE, upstream="http://user:s3cret-pw@upstream.test/v1", upstream_key="k-9")
    async with client_for(upstream, settings) as client:
        health = await client.get("/health")
        r = await client.post("/v1/messages", json=messages_body())
        metrics = (await client.get("/metrics")).text
    assert r.status_code == 200
    assert health.json()["upstream"] == "http://[redacted]@upstream.test/v1"
    assert "s3cret-pw" not in health.text
    assert "s3cret-pw" not in metrics
    assert 'upstream="http://[redacted]@upstream.test/v1"' in metrics
    chat = upstream.requests[-1]
    assert str(chat.url) == "http://upstream.test/v1/chat/completions"
    assert chat.headers["authorization"] == "Bearer k-9"


async def test_body_over_the_api_limit_is_413() -> None:
    upstream = FakeUpstream(ok_completion)
    big = b'{"pad":"' + b"x" * (32 * 1024 * 1024) + b'"}'
    async with client_for(upstream) as client:
        declared = await client.post("/v1/messages", content=big)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(33):
                yield b" " * (1024 * 1024)

        chunked = await client.post("/v1/messages/count_tokens", content=chunks())
    for r in (declared, chunked):
        assert r.status_code == 413
        assert r.json()["error"]["type"] == "request_too_large"
        assert r.headers["connection"] == "close"
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b'{"model":"claude\\ud800","max_tokens":5,"messages":[{"role":"user","content":"x"}]}', "model:"),
        (
            b'{"model":"m","max_tokens":5,"temperature":NaN,"messages":[{"role":"user","content":"x"}]}',
            "temperature: Input should be a finite number",
        ),
        (b'{"model":"m","max_tokens":"100","messages":[{"role":"user","content":"x"}]}', "max_tokens"),
        (b'{"model":"m","max_tokens":5,"messages":[]}', "messages"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_bad_values_are_400_not_5xx(raw: bytes, needle: str, path: str) -> None:
    if path.endswith("count_tokens") and needle in ("max_tokens", "messages"):
        return  # count_tokens takes no max_tokens, and counts an empty conversation
    upstream = FakeUpstream(ok_completion)
    async with client_for(upstream) as client:
        r = await client.post(path, content=raw)
        metrics = await client.get("/metrics")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert r.json()["error"]["message"].startswith(needle)
    assert metrics.status_code == 200
    assert upstream.requests == []


async def test_recorded_billing_header_dropped_for_openai_upstreams() -> None:
    headers, body = recorded("01-turn1.json")
    assert body["system"][0]["text"].startswith("x-anthropic-billing-header:")
    upstream = FakeUpstream(httpx.Response(200, content=b"".join(TEXT_STREAM)))
    async with client_for(upstream) as client:
        r = await client.post("/v1/messages?beta=true", json=body, headers=headers)
    assert r.status_code == 200
    (sent,) = upstream.requests
    assert b"x-anthropic-billing-header" not in sent.content
    assert json.loads(sent.content)["messages"][0]["role"] == "system"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
async def test_messages_answers_other_methods_with_405(method: str) -> None:
    async with client_for(FakeUpstream()) as client:
        r = await client.request(method, "/v1/messages")
    assert r.status_code == 405
    assert r.headers["x-should-retry"] == "false"
    if method != "HEAD":
        assert r.json() == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "Method Not Allowed"},
        }
