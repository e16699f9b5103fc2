"""Fakes shared by the app tests: a scripted upstream (httpx.MockTransport handlers), scripted streams,
request bodies and SSE helpers, a fake llama-server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from ccproxy.app import create_app
from ccproxy.config import Settings

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


async def stream_events(upstream: FakeUpstream, settings: Settings = BASE) -> list[dict[str, Any]]:
    async with client_for(upstream, settings) as client:
        r = await client.post("/v1/messages", json=messages_body(stream=True))
    assert r.status_code == 200
    return parse_sse(r.text)


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


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"


def recorded(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    data = json.loads((FIXTURES / name).read_text())
    headers = {
        k: v for k, v in data["headers"].items() if k not in ("authorization", "x-api-key", "content-length")
    }
    return headers, data["body"]


TOKEN = "proxy-token-123"


UPSTREAM_KEY = "sk-upstream-456"


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


def assembled(events: list[dict[str, Any]]) -> Any:
    """The message the official Anthropic SDK assembles from these stream events (its own code)."""
    from anthropic.lib.streaming._messages import accumulate_event

    snapshot: Any = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(
            event=json.loads(json.dumps(event)),
            current_snapshot=snapshot,
            json_bufs=json_bufs,  # type: ignore[arg-type]
        )
    return snapshot
