"""The HTTP server's limits over real sockets (uvicorn with `http_server.guarded_protocol`, in process):
idle and half-sent connections are closed, oversized heads get 431, oversized bodies 413 — all before
the request reaches authentication."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from ccproxy.app import create_app
from ccproxy.config import Settings
from ccproxy.http_server import guarded_protocol

pytestmark = pytest.mark.e2e

TIMEOUT = 1.0
COMPLETION = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}
BODY = json.dumps({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}).encode()


@pytest.fixture
async def server() -> AsyncIterator[int]:
    settings = Settings(upstream="http://upstream.test/v1", model="m", token="sekrit")
    app = create_app(settings, transport=httpx.MockTransport(lambda r: httpx.Response(200, json=COMPLETION)))
    protocol = guarded_protocol(header_timeout=TIMEOUT, body_idle_timeout=TIMEOUT, max_header_bytes=64 * 1024)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=protocol,
        lifespan="on",
        log_level="warning",
        timeout_keep_alive=30,
    )
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    while not uv.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    port: int = uv.servers[0].sockets[0].getsockname()[1]
    yield port
    uv.should_exit = True
    await task


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (fails if it stays open)."""
    return await asyncio.wait_for(reader.read(), seconds)


def request(body: bytes = BODY, *, token: str = "sekrit", extra: bytes = b"") -> bytes:
    return (
        b"POST /v1/messages HTTP/1.1\r\nhost: proxy\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer "
        + token.encode()
        + b"\r\n"
        + extra
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )


async def test_idle_connections_are_closed(server: int) -> None:
    conns = [await asyncio.open_connection("127.0.0.1", server) for _ in range(20)]
    started = time.monotonic()
    reader = conns[0][0]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), TIMEOUT / 3)  # still open a moment later
    results = await asyncio.gather(*(closed_within(r, TIMEOUT * 5) for r, _ in conns))
    assert results == [b""] * 20
    assert time.monotonic() - started >= TIMEOUT * 0.9
    for _, writer in conns:
        writer.close()


async def test_half_sent_heads_and_bodies_are_closed(server: int) -> None:
    head_reader, head_writer = await asyncio.open_connection("127.0.0.1", server)
    head_writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: proxy\r\ncontent-le")
    body_reader, body_writer = await asyncio.open_connection("127.0.0.1", server)
    body_writer.write(request(BODY)[:-20])  # the whole head, most of the body
    assert await closed_within(head_reader, TIMEOUT * 5) == b""
    assert await closed_within(body_reader, TIMEOUT * 5) == b""
    head_writer.close()
    body_writer.close()


async def read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


async def test_a_slow_but_steady_client_and_keep_alive_still_work(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    raw = request()
    for i in range(0, len(raw), 40):  # the head in pieces, well within the timeout
        writer.write(raw[i : i + 40])
        await asyncio.sleep(0.02)
    assert (await read_response(reader)).startswith(b"HTTP/1.1 200")
    await asyncio.sleep(TIMEOUT * 1.5)  # idle between requests: the keep-alive timeout governs
    writer.write(request())
    assert (await read_response(reader)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_oversized_heads_get_431_before_authentication(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: proxy\r\n")
    answer = b""
    for _ in range(128):  # up to 8 MB of headers: refused once past the limit (64 KB here)
        writer.write(b"x-big: " + b"a" * 16_384 + b"\r\n")
        await writer.drain()
        try:
            answer = await asyncio.wait_for(reader.read(65_536), 0.05)
            break
        except TimeoutError:
            continue
    answer += await closed_within(reader, 5)
    assert answer.startswith(b"HTTP/1.1 431")
    assert b'"type":"error"' in answer
    writer.close()


async def test_bodies_over_32_mb_get_413_before_authentication(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(
        b"POST /v1/messages HTTP/1.1\r\nhost: proxy\r\ncontent-type: application/json\r\n"
        b"content-length: 41943040\r\n\r\n{"
    )
    answer = await closed_within(reader, 5)  # answered and closed without reading 40 MB
    assert answer.startswith(b"HTTP/1.1 413")
    assert answer.endswith(
        b'"request_too_large","message":"request exceeds the maximum allowed number of bytes (32 MB)"}}'
    )
    writer.close()


async def test_within_limits_auth_still_applies(server: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server}") as client:
        denied = await client.post("/v1/messages", content=BODY)
        ok = await client.post("/v1/messages", content=BODY, headers={"authorization": "Bearer sekrit"})
    assert denied.status_code == 401
    assert ok.status_code == 200
