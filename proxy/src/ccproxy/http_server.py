"""The HTTP server's limits, before any request reaches the app (or its authentication).

uvicorn's httptools protocol accepts request heads of any size and keeps a connection open forever
while a client sends nothing, or half a request. `guarded_protocol()` returns the protocol class with:

- a header timeout: a request's head (request line and headers) must be complete `header_timeout`
  seconds after the connection opened or the request began, else the connection is closed;
- a body idle timeout: a body that stops arriving for `body_idle_timeout` seconds closes the connection;
- a head size limit: `431 Request Header Fields Too Large` past `max_header_bytes` (the request line
  and headers; the Anthropic API's own front end allows 128 KB), then the connection is closed;
- a body size limit for what a request declares: `413 request_too_large` for a `content-length` above
  `max_body_bytes` (32 MB, the Anthropic API's), answered and closed without reading the body.

Idle keep-alive connections between requests stay governed by uvicorn's `timeout_keep_alive`. A chunked
body is counted by the app as it arrives (`request_body.read_body`, after authentication).

    uvicorn.Config(app, http=guarded_protocol(), ...)
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ccproxy.request_body import MAX_BODY_BYTES

__all__ = ["BODY_IDLE_TIMEOUT", "HEADER_TIMEOUT", "MAX_HEADER_BYTES", "guarded_protocol"]

HEADER_TIMEOUT = 10.0
BODY_IDLE_TIMEOUT = 30.0
MAX_HEADER_BYTES = 128 * 1024

_ANSWER = (
    b"HTTP/1.1 %s\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
)
_ERROR = b'{"type":"error","error":{"type":"%s","message":"%s"}}'


def _refuse(transport: asyncio.Transport, status: bytes, error_type: bytes, message: bytes) -> None:
    body = _ERROR % (error_type, message)
    transport.write(_ANSWER % (status, len(body), body))
    transport.close()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the timeouts and the head limit above (class attributes)."""

    header_timeout = HEADER_TIMEOUT
    body_idle_timeout = BODY_IDLE_TIMEOUT
    max_header_bytes = MAX_HEADER_BYTES
    max_body_bytes = MAX_BODY_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # bytes received now belong to a request head
        self._head_bytes = 0

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    # -- asyncio protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
            message = b"request line and headers exceed %d bytes" % self.max_header_bytes
            _refuse(self.transport, b"431 Request Header Fields Too Large", b"invalid_request_error", message)

    # -- parser callbacks ---------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()  # (sets up the scope only: harmless on a closing connection)
        if self._deadline is None:  # a keep-alive connection's next request
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self.transport.is_closing():
            return
        declared = next((value for name, value in self.headers if name == b"content-length"), b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            self._disarm()
            message = b"request exceeds the maximum allowed number of bytes (%d MB)" % (
                self.max_body_bytes >> 20
            )
            _refuse(self.transport, b"413 Request Entity Too Large", b"request_too_large", message)
            return
        self._arm(self.body_idle_timeout)  # cancelled at once by on_message_complete without a body
        super().on_headers_complete()
        if self.pipeline:  # queued behind a running request, reading paused: its body cannot idle
            self._disarm()

    def on_body(self, body: bytes) -> None:
        if self.transport.is_closing():  # refused: the rest of what was read is not a request
            return
        self._arm(self.body_idle_timeout)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        self._head_bytes = 0
        if not self.transport.is_closing():
            super().on_message_complete()


def guarded_protocol(
    *,
    header_timeout: float = HEADER_TIMEOUT,
    body_idle_timeout: float = BODY_IDLE_TIMEOUT,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for `uvicorn.Config(http=...)` with these limits."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "header_timeout": header_timeout,
            "body_idle_timeout": body_idle_timeout,
            "max_header_bytes": max_header_bytes,
            "max_body_bytes": max_body_bytes,
        },
    )
