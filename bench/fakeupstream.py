"""A fast fake OpenAI-compatible upstream for the overhead bench (stdlib asyncio, uvloop when present).

`POST /v1/chat/completions` answers every request with the same short completion: streamed (a role
chunk, a few content chunks, a finish chunk, a usage chunk, `[DONE]`; one HTTP chunk per SSE event)
when the body says `"stream": true`, otherwise one JSON object. `GET /v1/models` lists the model,
`GET /health` and `HEAD|GET /` answer 200, `GET /bench/stats` counts connections and requests
accepted so far (the bench reads it to see whether a proxy reuses its upstream connections), anything
else 404. HTTP/1.1 keep-alive, request bodies by
Content-Length or chunked. The response bytes are built once at start, so a request costs the
upstream little more than a JSON parse: the proxies under test, not this server, should dominate.

    python bench/fakeupstream.py --port 9100 [--host 127.0.0.1] [--chunk-delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from typing import Any, cast

MODEL = "fake"
TEXT_PIECES = ("Hello", " from", " the", " fake", " upstream", ".")
PROMPT_TOKENS = 1850
COMPLETION_TOKENS = len(TEXT_PIECES)

Json = dict[str, Any]


def _chunk(delta: Json, finish_reason: str | None = None) -> Json:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


def _usage() -> Json:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }


def stream_events() -> list[bytes]:
    """The SSE events of one streamed completion, each a complete `data: ...\\n\\n` frame."""
    chunks: list[Json] = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"content": piece}) for piece in TEXT_PIECES]
    chunks.append(_chunk({}, "stop"))
    usage_chunk = _chunk({})
    usage_chunk["choices"] = []
    usage_chunk["usage"] = _usage()
    chunks.append(usage_chunk)
    frames = [b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n" for c in chunks]
    frames.append(b"data: [DONE]\n\n")
    return frames


def completion_body() -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(TEXT_PIECES)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(),
    }
    return json.dumps(body).encode()


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
        "connection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n"
)
STREAM_FRAMES = [_http_chunk(f) for f in stream_events()]
STREAM_END = b"0\r\n\r\n"
NONSTREAM_RESPONSE = _response("200 OK", "application/json", completion_body())
MODELS_RESPONSE = _response(
    "200 OK",
    "application/json",
    json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]}).encode(),
)
OK_RESPONSE = _response("200 OK", "application/json", b'{"status":"ok"}')
NOT_FOUND = _response(
    "404 Not Found", "application/json", b'{"error":{"message":"not found","type":"not_found"}}'
)
BAD_REQUEST = _response(
    "400 Bad Request", "application/json", b'{"error":{"message":"bad json","type":"invalid_request"}}'
)


STATS = {"connections": 0, "requests": 0}


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: parses requests out of the byte stream and answers each in turn."""

    def __init__(self, chunk_delay: float) -> None:
        self.chunk_delay = chunk_delay
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        STATS["connections"] += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._parse()

    def _parse(self) -> None:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            rest = self.buf[end + 4 :]
            if headers.get("transfer-encoding", "").lower() == "chunked":
                parsed = _dechunk(rest)
                if parsed is None:
                    return
                body, rest = parsed
            else:
                length = int(headers.get("content-length", "0"))
                if len(rest) < length:
                    return
                body, rest = rest[:length], rest[length:]
            self.buf = rest
            self._answer(method, target.split("?", 1)[0], body, headers)
            if self.busy:
                return

    def _answer(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        transport = self.transport
        assert transport is not None
        if method == "POST" and path.endswith("/chat/completions"):
            STATS["requests"] += 1
            try:
                stream = bool(json.loads(body).get("stream"))
            except (ValueError, AttributeError):
                transport.write(BAD_REQUEST)
                return
            if not stream:
                transport.write(NONSTREAM_RESPONSE)
            elif self.chunk_delay > 0:
                self.busy = True
                asyncio.get_running_loop().create_task(self._slow_stream(transport))
            else:
                transport.write(STREAM_HEAD + b"".join(STREAM_FRAMES) + STREAM_END)
        elif method == "GET" and path == "/bench/stats":
            transport.write(_response("200 OK", "application/json", json.dumps(STATS).encode()))
        elif method == "GET" and path.endswith("/models"):
            transport.write(MODELS_RESPONSE)
        elif method in ("GET", "HEAD") and path in ("/", "/health", "/v1", "/v1/"):
            transport.write(
                OK_RESPONSE if method == "GET" else OK_RESPONSE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
            )
        else:
            transport.write(NOT_FOUND)
        if headers.get("connection", "").lower() == "close":
            transport.close()

    async def _slow_stream(self, transport: asyncio.Transport) -> None:
        transport.write(STREAM_HEAD)
        for frame in STREAM_FRAMES:
            await asyncio.sleep(self.chunk_delay)
            transport.write(frame)
        transport.write(STREAM_END)
        self.busy = False
        self._parse()


def _dechunk(data: bytes) -> tuple[bytes, bytes] | None:
    """Decode a complete chunked body from the front of `data`: (body, rest), or None if incomplete."""
    out: list[bytes] = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(data[pos:eol].split(b";", 1)[0], 16)
        start = eol + 2
        if size == 0:
            trailer_end = data.find(b"\r\n", start)
            if trailer_end < 0:
                return None
            return b"".join(out), data[trailer_end + 2 :]
        if len(data) < start + size + 2:
            return None
        out.append(data[start : start + size])
        pos = start + size + 2


async def serve(host: str, port: int, chunk_delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(chunk_delay), host, port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fakeupstream listening on http://{host}:{port}/v1", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause before each SSE event")
    args = parser.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(serve(args.host, args.port, args.chunk_delay_ms / 1000))


if __name__ == "__main__":
    main()
