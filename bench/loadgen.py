"""A small HTTP/1.1 load client on raw asyncio streams (uvloop when present), cheap enough per request
not to dominate a 2-core machine the way a full HTTP client library would.

Each of `concurrency` workers holds one keep-alive connection and sends requests back to back. Per
request it records, from the moment the request is written:
  ttfb  first byte of the response body (for a translating proxy: its `message_start` event),
  ttft  first text delta (the first event that carries generated text),
  ttlb  the end of the response body (the stream's last byte).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One thing to measure: where to send which request, and how to recognise a good answer."""

    host: str
    port: int
    path: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    token_marker: bytes  # bytes that first appear in the event carrying generated text
    done_marker: bytes  # bytes a complete, successful stream must contain

    def request_bytes(self) -> bytes:
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"host: {self.host}:{self.port}",
            "content-type: application/json",
            "accept: text/event-stream",
            f"content-length: {len(self.body)}",
            *(f"{k}: {v}" for k, v in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass(frozen=True)
class Sample:
    ttfb: float
    ttft: float
    ttlb: float
    error: str | None = None


class ResponseError(Exception):
    pass


class Connection:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.raw = endpoint.request_bytes()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.endpoint.host, self.endpoint.port, limit=1 << 20
        )

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self) -> Sample:
        if self.writer is None:
            await self.open()
        reader, writer = self.reader, self.writer
        assert reader is not None
        assert writer is not None
        ep = self.endpoint
        t0 = time.perf_counter()
        writer.write(self.raw)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        ttfb = ttft = 0.0
        parts: list[bytes] = []
        tail = b""

        def got(data: bytes) -> None:
            nonlocal ttfb, ttft, tail
            now = time.perf_counter()
            if not ttfb:
                ttfb = now
            if not ttft and ep.token_marker in tail + data:
                ttft = now
            tail = data[-64:]
            parts.append(data)

        keep_alive = headers.get("connection") != "close"
        if headers.get("transfer-encoding") == "chunked":
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0], 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                chunk = await reader.readexactly(size + 2)
                got(chunk[:-2])
        elif "content-length" in headers:
            left = int(headers["content-length"])
            while left > 0:
                data = await reader.read(min(left, 65536))
                if not data:
                    raise ResponseError("connection closed mid-body")
                left -= len(data)
                got(data)
        else:
            keep_alive = False
            while data := await reader.read(65536):
                got(data)
        end = time.perf_counter()
        if not keep_alive:
            await self.close()
        body = b"".join(parts)
        if status != 200:
            raise ResponseError(f"HTTP {status}: {body[:300]!r}")
        if ep.done_marker not in body:
            raise ResponseError(f"incomplete stream: {body[-300:]!r}")
        if not ttft:
            raise ResponseError(f"no text in stream: {body[:300]!r}")
        return Sample(ttfb - t0, ttft - t0, end - t0)


@dataclass
class BatchResult:
    samples: list[Sample]
    errors: list[str]
    wall: float


async def run_batch(
    endpoint: Endpoint,
    concurrency: int,
    requests: int,
    *,
    warmup_per_conn: int = 2,
    max_seconds: float = 60.0,
    request_timeout: float = 30.0,
    on_start: Callable[[], None] = lambda: None,
    on_end: Callable[[], None] = lambda: None,
) -> BatchResult:
    """Open `concurrency` connections, warm each up, then send `requests` requests over them.

    `on_start`/`on_end` run right before the first and right after the last measured request
    (CPU snapshots go there). Stops early after `max_seconds` of measuring.
    """
    conns = [Connection(endpoint) for _ in range(concurrency)]
    errors: list[str] = []

    async def one(conn: Connection) -> Sample | None:
        try:
            return await asyncio.wait_for(conn.request(), request_timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        except (ResponseError, TimeoutError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        await conn.close()
        return None

    async def warm(conn: Connection) -> None:
        for _ in range(warmup_per_conn):
            await one(conn)

    await asyncio.gather(*(warm(c) for c in conns))
    errors.clear()
    samples: list[Sample] = []
    issued = 0
    on_start()
    t_start = time.perf_counter()
    deadline = t_start + max_seconds

    async def worker(conn: Connection) -> None:
        nonlocal issued
        while issued < requests and time.perf_counter() < deadline:
            issued += 1
            sample = await one(conn)
            if sample is not None:
                samples.append(sample)

    await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - t_start
    on_end()
    await asyncio.gather(*(c.close() for c in conns))
    return BatchResult(samples, errors, wall)


async def wait_ready(endpoint: Endpoint, within: float, alive: Callable[[], Awaitable[bool]]) -> str | None:
    """Send single requests for up to `within` s until one succeeds: None when ready, else the last error."""
    deadline = time.monotonic() + within
    last = "not started"
    while time.monotonic() < deadline:
        if not await alive():
            return f"process exited ({last})"
        conn = Connection(endpoint)
        try:
            await asyncio.wait_for(conn.request(), 30)
            return None
        except (OSError, asyncio.IncompleteReadError, ResponseError, TimeoutError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        finally:
            await conn.close()
        await asyncio.sleep(0.25)
    return last
