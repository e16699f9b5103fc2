"""The ASGI app with an injected upstream (httpx.MockTransport): routes, auth, errors, every stream fault,
llama-server features (slots, exact counts, context window), and the Anthropic pass-through."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from ccproxy.app import create_app
from ccproxy.calls import Call, log_line
from ccproxy.config import Settings
from ccproxy.relay import StreamStats

pytestmark = pytest.mark.app

UPSTREAM = "http://upstream.test/v1"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]

BASE = Settings(
    upstream=UPSTREAM,
    ping_interval=0.05,
    stream_start_wait=0.2,
    read_timeout=5,
    model="local-model",
)

TOOLS = [
    {
        "name": "Write",
        "description": "Write a file",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
    }
]


def messages_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-opus-4-8",
        "max_tokens": 64000,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": TOOLS,
    }
    body.update(overrides)
    return body


# --- upstream fakes -------------------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": choices, **extra}


def sse(*chunks: dict[str, Any] | str, done: bool = True) -> list[bytes]:
    out = [
        (f"data: {c}\n\n" if isinstance(c, str) else f"data: {json.dumps(c)}\n\n").encode() for c in chunks
    ]
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


TEXT_STREAM = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hello"}),
    chunk({"content": " world"}),
    chunk({}, "stop"),
    {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2}},
)


class ScriptedStream(httpx.AsyncByteStream):
    """Response body whose parts are bytes, a float (sleep that long), or an exception (raise it)."""

    def __init__(self, parts: Sequence[bytes | float | Exception]) -> None:
        self.parts = parts
        self.closed = asyncio.Event()
        self.cancelled = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            for part in self.parts:
                if isinstance(part, float):
                    await asyncio.sleep(part)
                elif isinstance(part, Exception):
                    raise part
                else:
                    yield part
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def aclose(self) -> None:
        self.closed.set()


def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3},
        **extra,
    }


class FakeUpstream:
    """Records requests; answers chat completions with `chat` (a response or a callable)."""

    def __init__(self, chat: httpx.Response | Callable[[httpx.Request], Any] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.chat = chat
        self.routes: dict[str, Callable[[httpx.Request], Any]] = {}

    def bodies(self, path: str = "/v1/chat/completions") -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get(request.url.path)
        if route is not None:
            result = route(request)
            return await result if asyncio.iscoroutine(result) else result  # type: ignore[no-any-return]
        if request.url.path == "/v1/chat/completions":
            chat = self.chat
            if callable(chat):
                result = chat(request)
                return await result if asyncio.iscoroutine(result) else result  # type: ignore[no-any-return]
            assert chat is not None
            return chat
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "local-model"}]})
        return httpx.Response(404, json={"error": {"message": "no such route"}})


def streaming(
    parts: Sequence[bytes | float | Exception],
) -> tuple[Callable[[httpx.Request], httpx.Response], ScriptedStream]:
    stream = ScriptedStream(parts)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    return answer, stream


def client_for(upstream: FakeUpstream, settings: Settings = BASE, **kw: Any) -> httpx.AsyncClient:
    app = create_app(settings, transport=httpx.MockTransport(upstream))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://proxy.test", **kw)


def parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for frame in text.split("\n\n"):
        lines = frame.strip().splitlines()
        if not lines:
            continue
        name = next(line[7:] for line in lines if line.startswith("event: "))
        data = json.loads(next(line[6:] for line in lines if line.startswith("data: ")))
        assert data["type"] == name
        events.append(data)
    return events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


# --- basics ---------------------------------------------------------------------------------------------


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


# --- auth -----------------------------------------------------------------------------------------------

TOKEN = "proxy-token-123"
UPSTREAM_KEY = "sk-upstream-456"


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


# --- request errors -------------------------------------------------------------------------------------


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


# --- upstream errors before the answer starts -----------------------------------------------------------


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


# --- stream faults ----------------------------------------------------------------------------------------


async def stream_events(upstream: FakeUpstream, settings: Settings = BASE) -> list[dict[str, Any]]:
    async with client_for(upstream, settings) as client:
        r = await client.post("/v1/messages", json=messages_body(stream=True))
    assert r.status_code == 200
    return parse_sse(r.text)


async def test_silent_upstream_gets_pings_then_the_answer() -> None:
    answer, _ = streaming([0.4, *TEXT_STREAM])
    events = await stream_events(FakeUpstream(answer))
    assert types(events)[0] == "message_start"
    pings_before_content = types(events).index("content_block_start") - 1
    assert pings_before_content >= 3, types(events)
    assert set(types(events)[1 : 1 + pings_before_content]) == {"ping"}
    assert types(events)[-2:] == ["message_delta", "message_stop"]


async def test_stream_waits_for_upstream_status_then_commits() -> None:
    """Headers slower than stream_start_wait: the client already has message_start and pings."""

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.4)
        return httpx.Response(503, json={"error": {"message": "busy"}})

    events = await stream_events(FakeUpstream(slow))
    assert types(events)[0] == "message_start"
    assert "ping" in types(events)
    assert events[-1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": events[-1]["error"]["message"]},
    }
    assert "message_stop" not in types(events)


@pytest.mark.parametrize(
    ("parts", "error_type", "needle"),
    [
        # cut mid-stream by a transport error
        (
            [*TEXT_STREAM[:2], httpx.RemoteProtocolError("peer closed connection")],
            "overloaded_error",
            "connection failed",
        ),
        # the upstream goes silent longer than the read timeout
        ([*TEXT_STREAM[:2], httpx.ReadTimeout("timed out")], "api_error", "silent"),
        # the connection closes cleanly before finish_reason
        (TEXT_STREAM[:3], "api_error", "finish_reason"),
        # garbage instead of JSON
        ([*TEXT_STREAM[:2], b"data: {not json\n\n"], "api_error", "malformed"),
        # an error object inside the stream
        (
            [*TEXT_STREAM[:2], b'data: {"error": {"code": 503, "message": "slot unavailable"}}\n\n'],
            "overloaded_error",
            "slot unavailable",
        ),
        # a tool call whose JSON never completes
        (
            sse(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "Write", "arguments": '{"a": '},
                            }
                        ]
                    }
                ),
                chunk({}, "tool_calls"),
            ),
            "api_error",
            "Write",
        ),
    ],
)
async def test_stream_faults_end_with_an_error_event(parts: list[Any], error_type: str, needle: str) -> None:
    answer, stream = streaming(parts)
    events = await stream_events(FakeUpstream(answer))
    assert types(events)[0] == "message_start"
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["type"] == error_type
    assert needle in events[-1]["error"]["message"]
    assert "message_stop" not in types(events)
    assert "message_delta" not in types(events)
    # block indices stay well-formed up to the error
    started = [e["index"] for e in events if e["type"] == "content_block_start"]
    assert started == list(range(len(started)))
    await asyncio.wait_for(stream.closed.wait(), 1)


async def test_tool_arguments_stream_in_fragments() -> None:
    args = json.dumps({"file_path": "/w/hello.txt", "content": "hello\nworld\n"})
    fragments = [args[i : i + 7] for i in range(0, len(args), 7)]
    parts = sse(
        chunk({"role": "assistant", "content": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "Write", "arguments": ""},
                    }
                ]
            }
        ),
        *[chunk({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}) for f in fragments],
        chunk({}, "tool_calls"),
    )
    answer, _ = streaming(parts)
    events = await stream_events(FakeUpstream(answer))
    deltas = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert len(deltas) >= len(fragments) // 2
    assert json.loads("".join(deltas)) == json.loads(args)
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


async def call_asgi_until(
    app: Any,
    body: dict[str, Any],
    *,
    disconnect_when: Callable[[bytes], bool] = lambda received: False,
    disconnect_after: float | None = None,
    refuse_start: bool = False,
) -> bytes:
    """Drive the ASGI app directly; send http.disconnect once the received bytes satisfy the condition."""
    raw = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/messages",
        "raw_path": b"/v1/messages",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("proxy.test", 80),
        "state": {},
    }
    gone = asyncio.Event()
    received = bytearray()
    body_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if refuse_start and message["type"] == "http.response.start":
            raise OSError("connection reset by peer")
        if message["type"] == "http.response.body":
            received.extend(message.get("body", b""))
            if disconnect_when(bytes(received)):
                gone.set()

    if disconnect_after is not None:
        asyncio.get_running_loop().call_later(disconnect_after, gone.set)
    await asyncio.wait_for(app(scope, receive, send), 5)
    return bytes(received)


async def test_client_disconnect_cancels_the_upstream_request() -> None:
    answer, stream = streaming([*TEXT_STREAM[:2], 30.0, *TEXT_STREAM[2:]])
    upstream = FakeUpstream(answer)
    app = create_app(BASE, transport=httpx.MockTransport(upstream))
    received = await call_asgi_until(app, messages_body(stream=True), disconnect_when=lambda b: b"Hello" in b)
    assert b"Hello" in received
    await asyncio.wait_for(stream.closed.wait(), 2)
    assert stream.cancelled
    metrics = app.state.proxy.metrics.render().decode()
    assert 'status="499"' in metrics


async def test_client_gone_before_the_first_byte_still_cancels_the_upstream() -> None:
    answer, stream = streaming([30.0, *TEXT_STREAM])
    app = create_app(BASE, transport=httpx.MockTransport(FakeUpstream(answer)))
    with pytest.raises(OSError, match="reset"):
        await call_asgi_until(app, messages_body(stream=True), refuse_start=True)
    await asyncio.wait_for(stream.closed.wait(), 2)
    assert 'status="499"' in app.state.proxy.metrics.render().decode()


async def test_client_disconnect_cancels_a_non_streamed_upstream_request() -> None:
    cancelled = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return httpx.Response(200, json=completion({"role": "assistant", "content": "late"}))

    app = create_app(BASE, transport=httpx.MockTransport(FakeUpstream(slow)))
    received = await call_asgi_until(app, messages_body(), disconnect_after=0.2)
    assert received == b""
    assert cancelled.is_set()
    assert 'status="499"' in app.state.proxy.metrics.render().decode()


# --- llama-server features ------------------------------------------------------------------------------


class FakeLlama(FakeUpstream):
    """A llama-server: /props, /slots, /apply-template, /tokenize, and chat completions."""

    def __init__(self, *, n_ctx: int = 4096, n_slots: int = 3, prompt_tokens: int = 100, **kw: Any) -> None:
        super().__init__(**kw)
        self.prompt_tokens = prompt_tokens
        self.running = 0
        self.max_running: dict[int, int] = {}
        self.routes["/props"] = lambda r: httpx.Response(
            200, json={"total_slots": n_slots, "default_generation_settings": {"n_ctx": n_ctx}}
        )
        self.routes["/slots"] = lambda r: httpx.Response(
            200, json=[{"id": i, "n_ctx": n_ctx, "is_processing": False} for i in range(n_slots)]
        )
        self.routes["/apply-template"] = lambda r: httpx.Response(200, json={"prompt": "<rendered>"})
        self.routes["/tokenize"] = lambda r: httpx.Response(
            200, json={"tokens": list(range(self.prompt_tokens))}
        )
        self.routes["/health"] = lambda r: httpx.Response(200, json={"status": "ok"})


# the prefix cache (its own app tests: test_prefix_cache.py) adds /apply-template and /slots calls
LLAMA = replace(BASE, backend_features="llama-server", prefix_cache_min_tokens=None)


def ok_completion(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json=completion(
            {"role": "assistant", "content": "ok"},
            usage={
                "prompt_tokens": 100,
                "completion_tokens": 1,
                "prompt_tokens_details": {"cached_tokens": 90},
            },
        ),
    )


async def test_slot_affinity_and_side_requests() -> None:
    upstream = FakeLlama(chat=ok_completion)
    title = messages_body(
        tools=[],
        output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
    )
    async with client_for(upstream, LLAMA) as client:
        for session, body in [
            ("s-a", messages_body()),
            ("s-b", messages_body()),
            ("s-a", messages_body()),
            ("s-a", title),
            ("s-b", messages_body(model="claude-haiku-4-5-20251001")),
            ("s-c", messages_body()),
        ]:
            r = await client.post("/v1/messages", json=body, headers={"X-Claude-Code-Session-Id": session})
            assert r.status_code == 200, r.text
        no_header = await client.post("/v1/messages", json=messages_body(metadata={"user_id": '{"u": 1}'}))
        assert no_header.status_code == 200
    slots = [b["id_slot"] for b in upstream.bodies()]
    # 3 slots: 0 and 1 for sessions, 2 for side requests; s-a keeps its slot, s-c takes the less used one
    assert slots[:5] == [0, 1, 0, 2, 2]
    assert slots[5] in (0, 1)
    assert all(b.get("cache_prompt") is True for b in upstream.bodies())


async def test_llama_streams_ask_for_prompt_progress_and_log_it(caplog: pytest.LogCaptureFixture) -> None:
    """While llama-server prefills it sends `prompt_progress` chunks (asked with return_progress): the
    proxy logs them and the client's stream is the same as without them."""
    progress = [
        chunk({"role": "assistant", "content": None}, prompt_progress=p)
        for p in (
            {"total": 18000, "cache": 0, "processed": 2048, "time_ms": 20000},
            {"total": 18000, "cache": 0, "processed": 18000, "time_ms": 180000},
        )
    ]
    streamed_answer = b"".join(sse(*progress, done=False) + TEXT_STREAM)

    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, content=streamed_answer)
        return ok_completion(request)

    upstream = FakeLlama(chat=answer)
    plain = FakeLlama(chat=httpx.Response(200, content=b"".join(TEXT_STREAM)))
    with caplog.at_level("INFO", logger="ccproxy"):
        async with client_for(upstream, LLAMA) as client:
            r = await client.post("/v1/messages", json=messages_body(stream=True))
            await client.post("/v1/messages", json=messages_body())
    async with client_for(plain, LLAMA) as client:
        without = await client.post("/v1/messages", json=messages_body(stream=True))
    strip = [{k: v for k, v in e.items() if k != "message"} for e in parse_sse(r.text)]
    assert strip == [{k: v for k, v in e.items() if k != "message"} for e in parse_sse(without.text)]
    streamed, complete = upstream.bodies()
    assert streamed["return_progress"] is True
    assert "return_progress" not in complete
    lines = [rec.getMessage() for rec in caplog.records if " prefill " in rec.getMessage()]
    assert [line.split(" ", 1)[1] for line in lines] == [
        "prefill 2048/18000 tokens (0 cached) 20.0 s, 102 tok/s",
        "prefill 18000/18000 tokens (0 cached) 180.0 s, 100 tok/s",
    ]


async def test_side_model_goes_to_the_side_model_without_a_slot() -> None:
    upstream = FakeLlama(chat=ok_completion)
    settings = replace(LLAMA, model="big", side_model="small")
    async with client_for(upstream, settings) as client:
        await client.post("/v1/messages", json=messages_body(max_tokens=1))
        await client.post("/v1/messages", json=messages_body())
    side, main = upstream.bodies()
    assert side["model"] == "small"
    assert "id_slot" not in side
    assert len(upstream.bodies("/apply-template")) == 1  # only the main request is checked here
    assert main["model"] == "big"
    assert main["id_slot"] == 0


async def test_max_tokens_clamped_to_what_the_context_leaves() -> None:
    upstream = FakeLlama(chat=ok_completion, n_ctx=4096, prompt_tokens=1000)
    async with client_for(upstream, LLAMA) as client:
        r = await client.post("/v1/messages", json=messages_body(max_tokens=64000))
        small = await client.post("/v1/messages", json=messages_body(max_tokens=50))
    assert r.status_code == small.status_code == 200
    assert [b["max_tokens"] for b in upstream.bodies()] == [3096, 50]
    usage = r.json()["usage"]
    assert usage["cache_read_input_tokens"] == 90
    (rendered, *_) = upstream.bodies("/apply-template")
    assert rendered["messages"][-1] == {"role": "user", "content": "hi"}
    assert "id_slot" not in rendered


@pytest.mark.parametrize("stream", [False, True])
async def test_prompt_too_long_is_rejected_before_the_backend(stream: bool) -> None:
    upstream = FakeLlama(chat=ok_completion, n_ctx=4096, prompt_tokens=5000)
    async with client_for(upstream, LLAMA) as client:
        r = await client.post("/v1/messages", json=messages_body(stream=stream))
    assert r.status_code == 400
    assert r.json()["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long: 5000 tokens > 4096 maximum",
    }
    assert upstream.bodies() == []


async def test_stream_reports_exact_input_tokens_and_cache_reads() -> None:
    parts = sse(
        chunk({"content": "ok"}),
        chunk({}, "stop"),
        {
            "choices": [],
            "usage": {"prompt_tokens": 300, "completion_tokens": 1},
            "timings": {"cache_n": 280, "prompt_n": 20},
        },
    )
    answer, _ = streaming(parts)
    upstream = FakeLlama(chat=answer, prompt_tokens=300)
    events = await stream_events(upstream, LLAMA)
    assert events[0]["message"]["usage"]["input_tokens"] == 300
    assert events[-2]["usage"]["cache_read_input_tokens"] == 280


async def test_requests_for_one_slot_queue_instead_of_failing() -> None:
    upstream = FakeLlama(n_slots=2)

    async def slow(request: httpx.Request) -> httpx.Response:
        slot = json.loads(request.content)["id_slot"]
        upstream.running += 1
        upstream.max_running[slot] = max(upstream.max_running.get(slot, 0), upstream.running)
        await asyncio.sleep(0.1)
        upstream.running -= 1
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, content=b"".join(TEXT_STREAM))
        return ok_completion(request)

    upstream.chat = slow
    async with client_for(upstream, LLAMA) as client:
        results = await asyncio.gather(
            *[
                client.post(
                    "/v1/messages", json=messages_body(stream=s), headers={"X-Claude-Code-Session-Id": "one"}
                )
                for s in (False, True, False, True)
            ]
        )
    assert [r.status_code for r in results] == [200] * 4
    assert upstream.max_running == {0: 1}
    streamed = parse_sse(results[1].text)
    assert types(streamed)[-1] == "message_stop"


async def test_count_tokens_from_llama_server_tokenizer() -> None:
    upstream = FakeLlama(prompt_tokens=1234)
    async with client_for(upstream, LLAMA) as client:
        r = await client.post(
            "/v1/messages/count_tokens?beta=true",
            json={
                "model": "claude-opus-4-8",
                "system": "be brief",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": TOOLS,
            },
        )
    assert r.status_code == 200
    assert r.json() == {"input_tokens": 1234}
    (rendered,) = upstream.bodies("/apply-template")
    assert rendered["messages"][0] == {"role": "system", "content": "be brief"}
    assert rendered["tools"][0]["function"]["name"] == "Write"
    (tokenize,) = upstream.bodies("/tokenize")
    assert tokenize == {"content": "<rendered>", "add_special": True, "parse_special": True}


async def test_count_tokens_offline_when_the_backend_cannot() -> None:
    upstream = FakeUpstream()
    async with client_for(upstream) as client:
        short = await client.post(
            "/v1/messages/count_tokens",
            json={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
        )
        long = await client.post(
            "/v1/messages/count_tokens",
            json={"model": "m", "messages": [{"role": "user", "content": "hello world " * 500}]},
        )
        bad = await client.post("/v1/messages/count_tokens", json={"model": "m"})
    assert short.status_code == long.status_code == 200
    assert 0 < short.json()["input_tokens"] < 20
    assert 900 < long.json()["input_tokens"] < 1200
    assert bad.status_code == 400
    assert "messages" in bad.json()["error"]["message"]
    assert upstream.requests == []


async def test_llama_features_degrade_when_props_is_missing() -> None:
    upstream = FakeUpstream(ok_completion)  # no /props, /slots, /tokenize: answers 404
    async with client_for(upstream, LLAMA) as client:
        for _ in range(3):
            r = await client.post("/v1/messages", json=messages_body())
            assert r.status_code == 200
    assert [b.get("id_slot") for b in upstream.bodies()] == [None, None, None]
    assert len([r for r in upstream.requests if r.url.path == "/props"]) == 1  # not retried per request


async def test_llama_health_reports_the_context_window() -> None:
    upstream = FakeLlama(n_ctx=32768, n_slots=2)
    async with client_for(upstream, LLAMA) as client:
        r = await client.get("/health")
    assert r.status_code == 200
    assert r.json()["backend"] == {"n_ctx": 32768, "slots": 2}


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"


def recorded(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    data = json.loads((FIXTURES / name).read_text())
    headers = {
        k: v for k, v in data["headers"].items() if k not in ("authorization", "x-api-key", "content-length")
    }
    return headers, data["body"]


async def test_recorded_claude_code_session_keeps_slot_and_prefix() -> None:
    """Real CLI requests (title side request + two turns): one slot per session, the side request on
    the side slot, and turn 2's upstream bytes extend turn 1's up to the end of its messages."""
    upstream = FakeLlama(chat=lambda r: httpx.Response(200, content=b"".join(TEXT_STREAM)))
    async with client_for(upstream, LLAMA) as client:
        for name in (
            "interactive/02-side.json",
            "interactive/03-turn1.json",
            "interactive/04-turn2-tool-result.json",
        ):
            headers, body = recorded(name)
            r = await client.post("/v1/messages?beta=true", json=body, headers=headers)
            assert r.status_code == 200, r.text
            assert parse_sse(r.text)[-1]["type"] == "message_stop"
    sent = [r.content for r in upstream.requests if r.url.path == "/v1/chat/completions"]
    side, turn1, turn2 = (json.loads(b) for b in sent)
    assert (side["id_slot"], turn1["id_slot"], turn2["id_slot"]) == (2, 0, 0)
    assert "tools" not in side
    assert side["response_format"]["type"] == "json_schema"
    cut = sent[1].index(b'],"cache_prompt":')
    assert sent[2].startswith(sent[1][:cut])
    assert turn2["messages"][-1]["role"] == "tool"


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


# --- Anthropic pass-through -----------------------------------------------------------------------------

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


# --- tool calls written as text (text_tool_calls) and side-request max_tokens ------------------------------

WRITE_AS_TEXT = '{"name": "Write", "arguments": {"file_path": "a.txt"}}'


class MarkedLlama(FakeLlama):
    """A llama-server whose chat template asks the proxy to recover tool calls written as text."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.routes["/props"] = lambda r: httpx.Response(
            200,
            json={
                "total_slots": 3,
                "default_generation_settings": {"n_ctx": 4096},
                "chat_template": "{#- ... ccproxy:text-tool-calls -#}{{ messages }}",
            },
        )


def text_answer(content: str) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion({"role": "assistant", "content": content}))

    return answer


@pytest.mark.parametrize(
    ("upstream_class", "mode", "recovered"),
    [
        (MarkedLlama, "auto", True),
        (FakeLlama, "auto", False),  # the template does not ask for it
        (MarkedLlama, "off", False),
        (FakeLlama, "on", True),
    ],
)
async def test_text_tool_calls_recovered_when_the_template_asks(
    upstream_class: type[FakeLlama], mode: str, recovered: bool
) -> None:
    upstream = upstream_class(chat=text_answer("Writing it.\n" + WRITE_AS_TEXT))
    settings = replace(LLAMA, text_tool_calls=mode)  # type: ignore[arg-type]
    async with client_for(upstream, settings) as client:
        r = await client.post("/v1/messages", json=messages_body())
        no_tools = await client.post("/v1/messages", json=messages_body(tools=[]))
        forced = await client.post("/v1/messages", json=messages_body(tool_choice={"type": "any"}))
    assert r.status_code == no_tools.status_code == forced.status_code == 200
    sent, sent_no_tools, sent_forced = upstream.bodies()
    message = r.json()
    assert ("grammar" in sent) == recovered  # calls constrained to the request's tools (tool_grammar)
    assert "grammar" not in sent_no_tools
    assert "grammar" not in sent_forced
    if recovered:
        assert sent["tool_choice"] == "none"  # plain text from the backend, same prompt
        assert '"{\\"name\\": \\"Write\\", \\"arguments\\": "' in sent["grammar"]
        assert message["stop_reason"] == "tool_use"
        assert [b["type"] for b in message["content"]] == ["text", "tool_use"]
        assert message["content"][1]["name"] == "Write"
        assert message["content"][1]["input"] == {"file_path": "a.txt"}
    else:
        assert "tool_choice" not in sent
        assert message["stop_reason"] == "end_turn"
        assert [b["type"] for b in message["content"]] == ["text"]
    assert "tool_choice" not in sent_no_tools
    assert sent_forced["tool_choice"] == "required"  # a forced choice keeps the backend's grammar


async def test_tool_grammar_off_keeps_plain_text_tool_calls() -> None:
    upstream = MarkedLlama(chat=text_answer(WRITE_AS_TEXT))
    async with client_for(upstream, replace(LLAMA, tool_grammar="off")) as client:
        r = await client.post("/v1/messages", json=messages_body())
    sent = upstream.bodies()[0]
    assert sent["tool_choice"] == "none"
    assert "grammar" not in sent
    assert r.json()["content"][0]["name"] == "Write"


async def test_streamed_text_tool_call_and_braces_in_text() -> None:
    answer, _ = streaming(
        sse(
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Use {} for sets.\n"}),
            chunk({"content": WRITE_AS_TEXT[:12]}),
            chunk({"content": WRITE_AS_TEXT[12:]}),
            chunk({}, "stop"),
        )
    )
    upstream = MarkedLlama(chat=answer)
    async with client_for(upstream, LLAMA) as client:
        r = await client.post("/v1/messages", json=messages_body(stream=True))
    events = parse_sse(r.text)
    assert upstream.bodies()[0]["tool_choice"] == "none"
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["text", "tool_use"]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert deltas[0] == {"type": "text_delta", "text": "Use {} for sets.\n"}
    assert json.loads(deltas[1]["partial_json"]) == {"file_path": "a.txt"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert "error" not in types(events)


async def test_pings_while_chunks_arrive_but_a_tool_call_is_held_back() -> None:
    parts: list[bytes | float | Exception] = []
    for c in WRITE_AS_TEXT:
        parts += [*sse(chunk({"content": c}), done=False), 0.01]
    parts += sse(chunk({}, "stop"))
    answer, _ = streaming(parts)
    async with client_for(MarkedLlama(chat=answer), LLAMA) as client:
        r = await client.post("/v1/messages", json=messages_body(stream=True))
    kinds = types(parse_sse(r.text))
    assert kinds.index("ping") < kinds.index("content_block_start"), kinds
    assert kinds[-2:] == ["message_delta", "message_stop"]


async def test_side_requests_max_tokens_clamped() -> None:
    upstream = FakeUpstream(chat=ok_completion)
    title = messages_body(
        tools=[], output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}}
    )
    async with client_for(upstream, BASE) as client:
        await client.post("/v1/messages", json=title)
        await client.post("/v1/messages", json=messages_body(model="claude-haiku-4-5"))
        await client.post("/v1/messages", json=messages_body())
    async with client_for(upstream, replace(BASE, side_max_tokens=None)) as client:
        await client.post("/v1/messages", json=title)
    assert [b["max_tokens"] for b in upstream.bodies()] == [256, 256, 64000, 64000]


# --- robustness (issue 8) -------------------------------------------------------------------------------


async def test_one_ping_per_silent_interval() -> None:
    answer, _ = streaming([0.52, *TEXT_STREAM])  # ~10 intervals of 0.05 s
    events = await stream_events(FakeUpstream(answer))
    pings = types(events).count("ping")
    assert 2 <= pings <= 11, types(events)  # fewer on a loaded machine, never two per interval


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


@pytest.mark.parametrize("stream", [False, True])
def test_the_log_line_rate_is_over_the_generation_time(stream: bool) -> None:
    """A non-streamed answer's first byte arrives when it is complete: its tokens/s is over the whole
    request, not over the few milliseconds of reading the body (which once gave tok/s=111324.0)."""
    call = Call(request_id="req_1", endpoint="messages", started=100.0, stream=stream)
    stats = StreamStats(started=100.0) if stream else None
    line = log_line(call, 200, 110.0, 109.999, (1000, 50, 0), None, stats)
    assert ("tok/s=5.0" if not stream else "tok/s=50000.0") in line
    assert "ttfb=9.999s total=10.000s" in line
    streamed = log_line(call, 200, 110.0, 105.0, (1000, 50, 0), None, stats)
    assert ("tok/s=5.0" if not stream else "tok/s=10.0") in streamed


async def test_a_failing_preflight_count_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    upstream = FakeLlama(chat=ok_completion)
    upstream.routes["/apply-template"] = lambda r: httpx.Response(500, json={"error": {"message": "boom"}})
    async with client_for(upstream, LLAMA) as client:
        r = await client.post("/v1/messages", json=messages_body())
        metrics = (await client.get("/metrics")).text
    assert r.status_code == 200
    assert "ccproxy_preflight_count_failures_total" in metrics
    assert 'ccproxy_preflight_count_failures_total{upstream="http://upstream.test/v1"} 1.0' in metrics
    assert "token count failed" in caplog.text


def stop_word_completion(request: httpx.Request) -> httpx.Response:
    """llama-server with `verbose`: the answer without the stop word, `__verbose.stopping_word`."""
    body = json.loads(request.content)
    verbose = {"stop_type": "word", "stopping_word": "END"} if body.get("verbose") else {}
    if body.get("stream"):
        chunks = sse(
            chunk({"content": "one two "}, __verbose=verbose),
            chunk({}, "stop"),
            {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}},
        )
        return httpx.Response(200, content=b"".join(chunks))
    return httpx.Response(
        200, json=completion({"role": "assistant", "content": "one two "}, __verbose=verbose)
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_stop_sequence_reported_as_the_api_does(stream: bool) -> None:
    upstream = FakeLlama(chat=stop_word_completion)
    async with client_for(upstream, LLAMA) as client:
        r = await client.post(
            "/v1/messages", json=messages_body(stream=stream, stop_sequences=["NEVER", "END"])
        )
        plain = await client.post("/v1/messages", json=messages_body(stream=stream))
    if stream:
        delta = next(e for e in parse_sse(r.text) if e["type"] == "message_delta")["delta"]
        plain_delta = next(e for e in parse_sse(plain.text) if e["type"] == "message_delta")["delta"]
    else:
        delta, plain_delta = r.json(), plain.json()
    assert (delta["stop_reason"], delta["stop_sequence"]) == ("stop_sequence", "END")
    assert (plain_delta["stop_reason"], plain_delta["stop_sequence"]) == ("end_turn", None)
    asked, not_asked = upstream.bodies()
    assert asked["verbose"] is True
    assert asked["stop"] == ["NEVER", "END"]
    assert "verbose" not in not_asked


# --- prompt profile -------------------------------------------------------------------------------------


RECORDED_DAY1 = Path(__file__).resolve().parents[1] / "fixtures/claude_code/sessions/day1/01-turn1.json"


async def test_lean_prompt_profile_reaches_the_upstream_and_the_count() -> None:
    body = json.loads(RECORDED_DAY1.read_text())["body"]
    body["stream"] = False
    answer = completion({"role": "assistant", "content": "ok"})
    sent: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for profile in ("full", "lean"):
        upstream = FakeUpstream(httpx.Response(200, json=answer))
        settings = replace(BASE, prompt_profile=profile)  # type: ignore[arg-type]
        async with client_for(upstream, settings) as client:
            r = await client.post("/v1/messages", json=body)
            assert r.status_code == 200, r.text
            count_body = {k: body[k] for k in ("model", "messages", "system", "tools")}
            c = await client.post("/v1/messages/count_tokens", json=count_body)
            assert c.status_code == 200, c.text
        (sent[profile],) = upstream.bodies()
        counts[profile] = c.json()["input_tokens"]
    full, lean = sent["full"], sent["lean"]
    assert [t["function"]["parameters"] for t in lean["tools"]] == [
        t["function"]["parameters"] for t in full["tools"]
    ]
    assert len(json.dumps(lean)) < len(json.dumps(full))
    assert "# Memory" in full["messages"][0]["content"]
    assert "# Memory" not in lean["messages"][0]["content"]
    assert counts["lean"] < counts["full"]
