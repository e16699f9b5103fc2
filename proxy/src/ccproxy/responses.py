"""Starlette responses and handlers of the proxy: the SSE response of a relay, cancelling work when the
client leaves, and the Anthropic-shaped answers to routing errors and proxy bugs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Coroutine
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ccproxy.errors import ApiError, NotFoundError, ProxyError
from ccproxy.plan import UpstreamPlan, answer, local_completion, local_stream
from ccproxy.raw_relay import RawRelay
from ccproxy.relay import StreamPump
from ccproxy.sse import encode_events

__all__ = ["RelayResponse", "http_exception", "local_response", "unexpected", "until_disconnected"]

log = logging.getLogger("ccproxy")
T = TypeVar("T")
SSE_RAW_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


async def until_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T | None:
    """Run `work`, cancelling it if the client disconnects first (then None).

    The request body has been read, so the next ASGI message is `http.disconnect`, which servers only
    send when the client goes away (or after the response is complete).
    """
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        watch.cancel()
    if task.done():
        return task.result()
    task.cancel()
    log.info("client disconnected; upstream request cancelled")
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def local_response(p: UpstreamPlan, *, message_id: str) -> Response:
    """The plan's own answer (``local_answer``), streamed or not as the request asked."""
    if not p.stream:
        return JSONResponse(answer(p, local_completion(p), message_id=message_id))
    body = encode_events(local_stream(p, message_id=message_id, input_tokens=0))
    response = Response(body)
    response.raw_headers = [*SSE_RAW_HEADERS, (b"content-length", str(len(body)).encode())]
    return response


class RelayResponse(StreamingResponse):
    """The SSE response of a relay, sent with as few writes as the stream allows.

    Unlike Starlette's `StreamingResponse` it needs no task group: one task watches for the client's
    `http.disconnect` and cancels the sending task. The status line goes out with the first events,
    and the stream's last events carry the end of the body. The relay is always closed, even when the
    client leaves before the first byte (then the body iterator never started and no `finally` in it
    would run)."""

    def __init__(self, relay: StreamPump | RawRelay, body: AsyncGenerator[bytes, None]) -> None:
        # StreamingResponse.__init__ without recomputing the same headers for every stream
        self.body_iterator = self._body = body
        self.status_code = 200
        self.media_type = "text/event-stream"
        self.background = None
        self.raw_headers = list(SSE_RAW_HEADERS)
        self._relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = self._relay
        body = self._body
        sender = asyncio.current_task()
        assert sender is not None
        ended = False  # the last body message is sent: a disconnect now is the normal end
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            if not ended:
                gone = True
                sender.cancel()

        watcher = asyncio.ensure_future(watch())
        started = False
        try:
            async for chunk in body:
                if not started:
                    started = True
                    await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
                ended = relay.last_chunk
                await send({"type": "http.response.body", "body": chunk, "more_body": not ended})
            if not started:
                await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if not ended:
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone:
                raise
            sender.uncancel()
        finally:
            watcher.cancel()
            await body.aclose()
            relay.close()


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err: ProxyError = NotFoundError(f"no route for {request.method} {request.url.path}")
    else:
        err = ProxyError(exc.status_code, "invalid_request_error", str(exc.detail), should_retry=False)
    return JSONResponse(err.to_body(), status_code=err.status, headers=err.headers())


async def unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    err = ApiError(f"internal proxy error ({type(exc).__name__}); see the proxy log")
    return JSONResponse(err.to_body(), status_code=err.status)
