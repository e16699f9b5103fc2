"""Reading a request body within the Anthropic API's size limit (the ASGI edge).

    raw = await read_body(request)      # bytes, or a ProxyError: 413 above MAX_BODY_BYTES, 499 gone

The Anthropic API answers `413 request_too_large` above 32 MB (Messages and Token Counting). A declared
`content-length` above the limit is refused before a byte is read; a chunked body is counted as it
arrives and refused as soon as it passes the limit, so a client never makes the proxy hold more than
the limit in memory. Header size and idle or half-sent connections are the HTTP server's part
(`http_server.py`).
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from ccproxy.errors import ProxyError, RequestTooLargeError

__all__ = ["MAX_BODY_BYTES", "read_body"]

MAX_BODY_BYTES = 32 * 1024 * 1024


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    try:
        async for part in request.stream():
            if part:
                size += len(part)
                if size > limit:
                    raise _too_large(limit)
                parts.append(part)
    except ClientDisconnect:
        raise ProxyError(499, "client_disconnected", "client left before sending the whole body") from None
    return b"".join(parts)


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"body: request exceeds the maximum allowed number of bytes ({limit // (1024 * 1024)} MB)",
        should_retry=False,
    )
