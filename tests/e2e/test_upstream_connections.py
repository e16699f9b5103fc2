"""The real upstream client (httpx over aiohttp's pool) against a loopback server that drops keep-alive
connections the way llama-server does: it advertises keep-alive, then closes. A request whose pooled
connection turns out dead before any byte of the answer is sent once more on a new connection, so no
request fails with "upstream unreachable: Server disconnected"."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
from ccproxy.app import create_app
from ccproxy.config import Settings
from ccproxy.upstream import Upstream

pytestmark = pytest.mark.e2e

SSE = [
    b'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n',
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n',
    b"data: [DONE]\n\n",
]
COMPLETION = json.dumps(
    {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
).encode()


@dataclass
class DroppingServer:
    """HTTP/1.1 on loopback, `connection: keep-alive` on every answer, but:

    - `reuse`: a connection serves one request; the next request on it is read, then the connection is
      closed without a byte of answer (deterministic: every reuse meets a dead connection);
    - `after`: the connection is closed right after each answer (llama-server's race)."""

    mode: Literal["reuse", "after"]
    port: int = 0
    connections: int = 0
    served: int = 0
    dropped: int = 0
    heads: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served_here = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if served_here and self.mode == "reuse":
                    self.dropped += 1
                    return
                await self.answer(writer, head.split(b" ")[1], body)
                served_here += 1
                self.served += 1
                if self.mode == "after":
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    async def answer(self, writer: asyncio.StreamWriter, path: bytes, body: bytes) -> None:
        streamed = path.endswith(b"/chat/completions") and json.loads(body or b"{}").get("stream")
        if streamed:
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n"
            )
            for event in SSE:
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:
            content = (
                COMPLETION if path.endswith(b"/chat/completions") else b'{"tokens":[1,2,3],"prompt":"p"}'
            )
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: keep-alive\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(content), content)
            )
        await writer.drain()


async def serve(mode: Literal["reuse", "after"]) -> tuple[DroppingServer, asyncio.Server]:
    state = DroppingServer(mode)
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    return state, server


@pytest.fixture
async def reuse_server() -> AsyncIterator[DroppingServer]:
    state, server = await serve("reuse")
    async with server:
        yield state


def real_upstream(port: int, **kw: Any) -> Upstream:
    return Upstream(
        f"http://127.0.0.1:{port}/v1", kind="openai", api_key=None, read_timeout=10, connect_timeout=2, **kw
    )


async def test_every_reused_dead_connection_is_retried_once_on_a_new_one(
    reuse_server: DroppingServer,
) -> None:
    retries: list[None] = []
    upstream = real_upstream(reuse_server.port, on_retry=lambda: retries.append(None))
    try:
        for i in range(20):
            if i % 2:
                async with upstream.stream("/chat/completions", b'{"stream":true}') as response:
                    assert b"".join([chunk async for chunk in response]) == b"".join(SSE)
            else:
                assert (await upstream.post_json("/tokenize", {"content": "x"}, root=True))["tokens"] == [
                    1,
                    2,
                    3,
                ]
    finally:
        await upstream.aclose()
    assert reuse_server.served == 20
    assert reuse_server.dropped == len(retries) > 0  # each dead reuse cost exactly one retry


async def test_a_retry_is_never_repeated() -> None:
    """A server that drops every request: one retry, then the error (529), never a loop."""
    attempts = 0

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    async with server:
        upstream = real_upstream(server.sockets[0].getsockname()[1])
        try:
            with pytest.raises(Exception, match="upstream") as info:
                await upstream.send("/chat/completions", b"{}")
        finally:
            await upstream.aclose()
    assert getattr(info.value, "status", None) == 529
    assert attempts == 2


@pytest.mark.parametrize("mode", ["reuse", "after"])
async def test_back_to_back_requests_through_the_app_never_fail(mode: Literal["reuse", "after"]) -> None:
    state, server = await serve(mode)
    settings = Settings(upstream=f"http://127.0.0.1:{state.port}/v1", model="m", read_timeout=10)
    app = create_app(settings)  # the real transport: aiohttp's pool
    async with server:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
            statuses = []
            for i in range(60):
                body = {
                    "model": "claude-opus-4-8",
                    "max_tokens": 100,
                    "stream": bool(i % 2),
                    "messages": [{"role": "user", "content": "hi"}],
                }
                r = await client.post("/v1/messages", json=body)
                statuses.append(r.status_code)
                if body["stream"]:
                    assert r.text.rstrip().endswith('data: {"type":"message_stop"}'), r.text
            metrics = (await client.get("/metrics")).text
        await app.proxy.upstream.aclose()
    assert statuses == [200] * 60
    assert state.served == 60
    if mode == "reuse":
        assert state.dropped > 0
        assert "ccproxy_upstream_retries_total" in metrics


async def test_url_credentials_with_a_key_over_the_real_transport() -> None:
    """aiohttp refuses credentials in a URL beside an Authorization header: they must never reach it."""
    state, server = await serve("after")
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with server:
        for key, expected in ((None, b"basic dxnlcjpwdw=="), ("k-1", b"bearer k-1")):
            settings = Settings(
                upstream=f"http://user:pw@127.0.0.1:{state.port}/v1", upstream_key=key, model="m"
            )
            app = create_app(settings)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
                r = await client.post("/v1/messages", json=body)
                health = await client.get("/health")
            await app.proxy.upstream.aclose()
            assert r.status_code == 200, r.text
            assert b"authorization: " + expected in state.heads[-1].lower()
            assert health.json()["upstream"] == f"http://[redacted]@127.0.0.1:{state.port}/v1"
