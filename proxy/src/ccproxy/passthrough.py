"""Pass-through to an Anthropic-native upstream (`--upstream-kind anthropic`): the body bytes forwarded
untouched (billing header included), the upstream key injected, Anthropic's own errors passed back as
they are (other error answers mapped), streams relayed byte for byte by `raw_relay.RawRelay`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping

from starlette.requests import Request
from starlette.responses import Response

from ccproxy.calls import Accounting, Call
from ccproxy.config import Settings
from ccproxy.errors import ProxyError
from ccproxy.raw_relay import RawRelay
from ccproxy.relay import StreamStats
from ccproxy.responses import RelayResponse, until_disconnected
from ccproxy.upstream import Body, Reply, Upstream

__all__ = ["Passthrough"]

FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access")
PASSED_BACK_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "request-id",
    "anthropic-ratelimit-",
)


class Passthrough:
    def __init__(self, settings: Settings, upstream: Upstream, accounting: Accounting) -> None:
        self.settings = settings
        self.upstream = upstream
        self.accounting = accounting

    @staticmethod
    def forward_headers(request: Request) -> dict[str, str]:
        return {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}

    async def messages(self, call: Call, request: Request, raw: bytes, payload: object) -> Response:
        """POST /v1/messages, forwarded."""
        headers = self.forward_headers(request)
        query = request.url.query
        call.stream = isinstance(payload, dict) and payload.get("stream") is True
        accounting = self.accounting
        if not call.stream:
            reply = await until_disconnected(request, self.send("/messages", raw, headers, query))
            if reply is None:
                accounting.finish(call, 499)
                return Response(status_code=499)
            if reply.status_code >= 300:
                return self.error(call, reply)
            call.first_byte = time.monotonic()
            usage = None
            with contextlib.suppress(ValueError):
                parsed = json.loads(reply.content)
                usage = parsed.get("usage") if isinstance(parsed, dict) else None
                if accounting.tracer.enabled:
                    call.trace["response_body"] = parsed
            accounting.finish(call, reply.status_code, usage=usage)
            return Response(reply.content, status_code=reply.status_code, media_type="application/json")

        @contextlib.asynccontextmanager
        async def open_upstream() -> AsyncIterator[Body]:
            async with self.upstream.stream("/messages", raw, headers=headers, query=query) as body:
                yield body

        relay = RawRelay(
            open_upstream,
            ping_interval=self.settings.ping_interval,
            stats=StreamStats(started=call.started),
            on_finish=accounting.stream_finished(call),
        )
        relay.start()
        early = await relay.wait_started(self.settings.stream_start_wait)
        if early is not None:
            relay.cancel()
            return accounting.error_response(call, early)
        return RelayResponse(relay, relay.relay())

    async def count_tokens(self, call: Call, request: Request, raw: bytes) -> Response | None:
        """POST /v1/messages/count_tokens, forwarded; None when the upstream has no such endpoint (404)."""
        reply = await self.send(
            "/messages/count_tokens", raw, self.forward_headers(request), request.url.query
        )
        if reply.status_code == 404:
            return None
        if reply.status_code >= 300:
            return self.error(call, reply)
        self.accounting.finish(call, reply.status_code)
        return Response(reply.content, status_code=reply.status_code, media_type="application/json")

    async def models(self) -> Response:
        """GET /v1/models, forwarded."""
        reply = await self.upstream.get("/models")
        return Response(reply.content, status_code=reply.status_code, media_type="application/json")

    async def send(self, path: str, raw: bytes, headers: Mapping[str, str], query: str) -> Reply:
        """POST without mapping error statuses (Anthropic's own errors are passed back as they are)."""
        return await self.upstream.send(path, raw, headers=headers, query=query, check=False)

    def error(self, call: Call, reply: Reply) -> Response:
        """An upstream error: passed back unchanged when it is Anthropic-shaped, else mapped."""
        try:
            body = json.loads(reply.content)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("type") == "error" and isinstance(body.get("error"), dict):
            error_type = str(body["error"].get("type", "api_error"))
            self.accounting.metrics.observe_error(call.endpoint, call.upstream_model, error_type)
            message = str(body["error"].get("message", ""))
            error = ProxyError(reply.status_code, error_type, message)
            self.accounting.finish(call, reply.status_code, error=error)
            headers = {k: v for k, v in reply.headers.items() if k.lower().startswith(PASSED_BACK_HEADERS)}
            return Response(
                reply.content, status_code=reply.status_code, media_type="application/json", headers=headers
            )
        return self.accounting.error_response(call, reply.error())
