"""The ASGI app: Anthropic Messages API in front, an OpenAI-compatible or Anthropic-native upstream behind.

    app = create_app(settings)                       # uvicorn serves it (cli.py)
    app = create_app(settings, transport=mock)       # tests: httpx.MockTransport as "the network"

Endpoints: POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, HEAD|GET /, GET /health,
GET /metrics, GET /ccproxy/sessions/<session id> (the status line's figures of one's own session).
Every error is Anthropic-shaped (`{"type":"error","error":{...}}`) with the status Claude Code's retry
logic expects; nothing ever answers with a traceback. A spent budget (`budget`) refuses a request
before anything is sent upstream.

A translated /v1/messages request, top to bottom (`Proxy.translated`): read and validate the request,
ask llama-server for its facts (cached), let `plan.plan` decide everything about the upstream request,
count the prompt if the plan asks (`plan.fit`), let the prefix cache prepare the slot if the plan asks,
send `plan.body`, relay the answer through the plan's translator. This module decides nothing itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ccproxy import __version__
from ccproxy.auth import check_token
from ccproxy.budget import check as check_budget
from ccproxy.calls import Accounting, Call, new_id, utc_day
from ccproxy.config import Settings
from ccproxy.errors import ApiError, ProxyError, UpstreamProtocolError
from ccproxy.llama_server import LlamaServer
from ccproxy.metrics import Metrics
from ccproxy.model_map import is_side_payload, models_answer
from ccproxy.passthrough import Passthrough
from ccproxy.plan import Session, UpstreamPlan, answer, count_body, fit, plan, session_key, stream_translator
from ccproxy.prefill_log import PrefillLog
from ccproxy.prefix_cache import PrefixCache
from ccproxy.relay import StreamPump, StreamStats, Translator, reported_cost
from ccproxy.request_body import read_body
from ccproxy.responses import RelayResponse, http_exception, local_response, unexpected, until_disconnected
from ccproxy.session_stats import SessionStats, session_view
from ccproxy.slots import SlotPool
from ccproxy.tokens import count_offline, estimate_tokens
from ccproxy.tracing import Tracer
from ccproxy.translate_request import encode_upstream
from ccproxy.types_anthropic import MessagesRequest, parse_count_tokens_request, parse_messages_request
from ccproxy.upstream import Body, Transport, Upstream
from ccproxy.validate import decode_body

log = logging.getLogger("ccproxy")

HEALTH_TIMEOUT = 3.0


class Proxy:
    """State shared by all requests of one app: settings, upstream client, slots, metrics, tracer."""

    def __init__(self, settings: Settings, transport: Transport | None) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.upstream_shown)
        credentials = settings.upstream_credentials
        self.upstream = Upstream(
            settings.upstream_url,
            kind=settings.upstream_kind,
            api_key=settings.upstream_key,
            auth=settings.upstream_auth,
            betas=settings.upstream_betas,
            read_timeout=settings.read_timeout,
            connect_timeout=settings.connect_timeout,
            transport=transport,
            credentials=credentials,
            on_retry=self.metrics.observe_retry,
        )
        secrets = (settings.token, settings.upstream_key, *(credentials or ()))
        self.tracer = Tracer(settings.trace_dir, secrets=secrets)
        self.sessions = SessionStats()
        self.accounting = Accounting(self.metrics, self.tracer, self.sessions, settings.price_table)
        self.passthrough = Passthrough(settings, self.upstream, self.accounting)
        self.llama = (
            LlamaServer(self.upstream, on_count_failure=self.metrics.observe_count_failure)
            if settings.backend_features == "llama-server"
            else None
        )
        min_tokens = settings.prefix_cache_min_tokens
        self.prefix_cache = (
            PrefixCache(self.upstream, min_tokens=min_tokens, observe=self.metrics.observe_prefix_cache)
            if self.llama is not None and min_tokens is not None
            else None
        )

    def check_auth(self, request: Request) -> None:
        check_token(request.headers, self.settings.token)

    # -- /v1/messages ---------------------------------------------------------------------------------
    async def messages(self, request: Request) -> Response:
        call = Call(request_id=new_id("req"), endpoint="messages")
        try:
            self.check_auth(request)
            raw = await read_body(request)
            self.accounting.start_trace(call, request, raw)
            payload = decode_body(raw)
            if isinstance(payload, dict) and isinstance(payload.get("model"), str):
                call.model = payload["model"]  # for the log line, also of requests that fail validation
            self.guard_spend(call, request, payload)
            if self.settings.upstream_kind == "anthropic":
                call.upstream_model = call.model
                return await self.passthrough.messages(call, request, raw, payload)
            req = parse_messages_request(payload)
            return await self.translated(call, request, req)
        except ProxyError as err:
            return self.accounting.error_response(call, err)

    def guard_spend(self, call: Call, request: Request, payload: object) -> None:
        """Note the call's session (its figures and spend are kept) and refuse it when a budget is spent
        (`budget.check`, pure; the counters are `self.sessions`)."""
        body = payload if isinstance(payload, dict) else {}
        call.session = session_key(request.headers, body.get("metadata"))
        call.peer = request.client.host if request.client is not None else None
        call.side = is_side_payload(body)
        call.stream = body.get("stream") is True  # for the log line of a refusal
        budget = self.settings.budget
        if budget.enabled:
            if self.tracer.enabled:
                call.trace["budget"] = dataclasses.asdict(budget)
            session, day = self.sessions.spent(call.session, day=utc_day())
            refused = check_budget(budget, session, day)
            if refused is not None:
                raise refused

    async def translated(self, call: Call, request: Request, req: MessagesRequest) -> Response:
        llama = self.llama
        info = await llama.info() if llama is not None else None
        slots = llama.slots if llama is not None else None
        pooled = slots is not None or self.settings.upstream_pool == "on"  # its slot, its pool member
        if pooled and call.session is not None:
            key = call.session
            session = Session(key, slots.offer(key) if slots is not None else None)
        else:
            session = Session()
        p = plan(req, self.settings, info, session)
        call.stream, call.upstream_model, call.slot = p.stream, p.upstream_model, p.slot
        call.queue, call.upstream_headers = p.queue, p.headers
        call.side = p.side
        if p.local_answer is not None:
            return self._answer_here(call, p)
        prompt_tokens: int | None = None
        if p.count_first and llama is not None:
            prompt_tokens = await llama.count(p.count_body)
            p = fit(p, prompt_tokens)
        if slots is not None and p.slot is not None and not p.side:
            slots.bind(session.key, p.slot)
        if p.prepare_prefix and self.prefix_cache is not None and p.slot is not None:
            prepare = self.prefix_cache.prepare
            call.on_slot = functools.partial(prepare, p.slot, p.session, p.body, side=p.side)
        content = encode_upstream(p.body)
        if self.tracer.enabled:
            call.trace["upstream_request"] = p.body
        message_id = new_id("msg")
        if prompt_tokens is None:
            prompt_tokens = estimate_tokens(content)
        if p.stream:
            return await self._stream(call, p, content, message_id, prompt_tokens)
        data = await until_disconnected(request, self._complete(call, content))
        if data is None:
            self.accounting.finish(call, 499)
            return Response(status_code=499)
        message = answer(p, data, message_id=message_id)
        if self.tracer.enabled:
            call.trace["upstream_response"] = data
            call.trace["response_body"] = message
        usage = data.get("usage")
        cost = reported_cost(usage) if isinstance(usage, dict) else None
        self.accounting.finish(call, 200, usage=message.get("usage"), cost=cost)
        return JSONResponse(message)

    def _answer_here(self, call: Call, p: UpstreamPlan) -> Response:
        """The plan's own answer (the repeat guard's notice): nothing goes upstream."""
        if self.tracer.enabled:
            call.trace["local_answer"] = p.local_answer
        self.accounting.finish(call, 200)
        return local_response(p, message_id=new_id("msg"))

    async def _complete(self, call: Call, content: bytes) -> dict[str, Any]:
        """One non-streamed chat completion (waits for the slot first)."""
        async with (
            self._on_slot(call),
            self.upstream.stream("/chat/completions", content, headers=call.upstream_headers) as body,
        ):
            call.first_byte = time.monotonic()
            data = await body.json(what="POST /chat/completions")
        if not isinstance(data, dict):
            raise UpstreamProtocolError("upstream chat completion is not a JSON object")
        return data

    def _on_slot(self, call: Call) -> AbstractAsyncContextManager[None]:
        """The request's turn on its slot (queued behind others), prefix cache work done first."""
        slots = self.llama.slots if self.llama is not None else None
        if call.slot is None or slots is None or not call.queue:
            return contextlib.nullcontext()
        if call.on_slot is None:
            return slots.acquire(call.slot)
        return _prepared_slot(slots, call.slot, call.on_slot)

    async def _stream(
        self, call: Call, p: UpstreamPlan, content: bytes, message_id: str, prompt_tokens: int
    ) -> Response:
        @asynccontextmanager
        async def open_upstream() -> AsyncIterator[Body]:
            async with (
                self._on_slot(call),
                self.upstream.stream("/chat/completions", content, headers=call.upstream_headers) as body,
            ):
                yield body

        stats = StreamStats(started=call.started, events=[] if self.tracer.enabled else None)
        pump = StreamPump(
            open_upstream,
            ping_interval=self.settings.ping_interval,
            stats=stats,
            on_finish=self.accounting.stream_finished(call),
        )
        pump.start()
        early = await pump.wait_started(self.settings.stream_start_wait)
        if early is not None:
            pump.cancel()
            return self.accounting.error_response(call, early)
        translator: Translator = stream_translator(p, message_id=message_id, input_tokens=prompt_tokens)
        if self.llama is not None:
            translator = PrefillLog(translator, call.request_id, stats)  # llama-server's prompt progress
        return RelayResponse(pump, pump.relay(translator))

    # -- other endpoints --------------------------------------------------------------------------------
    async def count_tokens(self, request: Request) -> Response:
        call = Call(request_id=new_id("req"), endpoint="count_tokens")
        try:
            self.check_auth(request)
            raw = await read_body(request)
            self.accounting.start_trace(call, request, raw)
            payload = decode_body(raw)
            if self.settings.upstream_kind == "anthropic":
                forwarded = await self.passthrough.count_tokens(call, request, raw)
                if forwarded is not None:
                    return forwarded
            req = parse_count_tokens_request(payload)
            body = count_body(req, self.settings)
            call.model, call.upstream_model = req.model, body["model"]
            n = await self.llama.count(body) if self.llama is not None else None
            if n is None:
                n = await asyncio.to_thread(count_offline, body)
            self.accounting.finish(call, 200)
            return JSONResponse({"input_tokens": n})
        except ProxyError as err:
            return self.accounting.error_response(call, err)

    async def models(self, request: Request) -> Response:
        call = Call(request_id=new_id("req"), endpoint="models")
        try:
            self.check_auth(request)
            if self.settings.upstream_kind == "anthropic":
                return await self.passthrough.models()
        except ProxyError as err:
            return self.accounting.error_response(call, err)
        listed: object = None
        try:
            listed = await self.upstream.get_json("/models", deadline=HEALTH_TIMEOUT)
        except ProxyError as err:
            log.info("upstream /models unavailable: %s", err.message)
        return JSONResponse(models_answer(self.settings.model_map, listed))

    async def health(self, request: Request) -> Response:
        body: dict[str, Any] = {
            "status": "ok",
            "upstream": self.settings.upstream_shown,
            "upstream_kind": self.settings.upstream_kind,
            "backend_features": self.settings.backend_features,
        }
        try:
            if self.llama is not None:
                await self.llama.health()
                info = await self.llama.info()
                if info is not None:
                    body["backend"] = {"n_ctx": info.n_ctx, "slots": info.n_slots}
            else:
                reply = await self.upstream.get("/models", deadline=HEALTH_TIMEOUT)
                if reply.status_code >= 500:
                    raise ApiError(f"upstream /models answered {reply.status_code}")
        except ProxyError as err:
            body.update(status="unavailable", error=err.message)
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    async def root(self, request: Request) -> Response:
        return JSONResponse({"name": "ccproxy", "version": __version__})

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    async def session_stats(self, request: Request) -> Response:
        """GET /ccproxy/sessions/<id>: the figures of the caller's own session (the status line's). Needs
        the proxy token; a session's figures go only to the address that sent its requests: for an
        unknown session and for another client's, the same empty figures (no turn, nothing spent). The
        window, the budgets and the day's spend are the stack's, the same for every session."""
        call = Call(request_id=new_id("req"), endpoint="session_stats")
        try:
            self.check_auth(request)
        except ProxyError as err:
            return self.accounting.error_response(call, err)
        key = f"session:{request.path_params['session_id']}"
        peer = request.client.host if request.client is not None else None
        info = await self.llama.info() if self.llama is not None else None
        window = info.n_ctx if info is not None else None
        day = self.sessions.day_spend(utc_day())
        record = self.sessions.get(key, peer=peer)
        view = session_view(record, window=window, budget=self.settings.budget, day=day)
        return JSONResponse(view)


@asynccontextmanager
async def _prepared_slot(
    slots: SlotPool, slot: int, prepare: Callable[[], Awaitable[None]]
) -> AsyncIterator[None]:
    async with slots.acquire(slot):
        await prepare()
        yield


class ProxyApp:
    """The ASGI entry point. `POST /v1/messages`, the hot path, goes straight to the proxy: Starlette's
    middleware stack and router cost more CPU than the rest of a streamed request's server side.
    Everything else (other endpoints, 404/405, lifespan) is the Starlette app's."""

    def __init__(self, proxy: Proxy, routed: Starlette) -> None:
        self.proxy = proxy
        self.routed = routed
        self.state = routed.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/messages":
            request = Request(scope, receive)
            if scope["method"] != "POST":  # what the router answers for a POST-only route
                response = await http_exception(request, HTTPException(405))
            else:
                try:
                    response = await self.proxy.messages(request)
                except Exception as exc:  # as the Starlette app's handler: an Anthropic-shaped 500
                    response = await unexpected(request, exc)
            await response(scope, receive, send)
        else:
            await self.routed(scope, receive, send)


def create_app(settings: Settings, transport: Transport | None = None) -> ProxyApp:
    """The proxy app. `transport` replaces the network for the upstream client (tests)."""
    proxy = Proxy(settings, transport)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if proxy.llama is not None:
            await proxy.llama.info()
        yield
        await proxy.upstream.aclose()

    routes = [
        # /v1/messages never reaches the router: ProxyApp answers it (POST: Proxy.messages)
        Route("/v1/messages/count_tokens", proxy.count_tokens, methods=["POST"]),
        Route("/v1/models", proxy.models, methods=["GET"]),
        Route("/health", proxy.health, methods=["GET"]),
        Route("/metrics", proxy.metrics_endpoint, methods=["GET"]),
        Route("/ccproxy/sessions/{session_id}", proxy.session_stats, methods=["GET"]),
        Route("/", proxy.root, methods=["GET", "HEAD"]),
    ]
    routed = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception, Exception: unexpected},
    )
    routed.state.proxy = proxy
    return ProxyApp(proxy, routed)
