"""The ASGI app: Anthropic Messages API in front, an OpenAI-compatible or Anthropic-native upstream behind.

    app = create_app(settings)                       # uvicorn serves it (cli.py)
    app = create_app(settings, transport=mock)       # tests: httpx.MockTransport as "the network"

Endpoints: POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, HEAD|GET /, GET /health,
GET /metrics. Every error is Anthropic-shaped (`{"type":"error","error":{...}}`) with the status Claude
Code's retry logic expects; nothing ever answers with a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ccproxy import __version__, tool_grammar
from ccproxy.config import Settings
from ccproxy.errors import (
    ApiError,
    AuthenticationError,
    NotFoundError,
    PromptTooLongError,
    ProxyError,
    UpstreamProtocolError,
    from_upstream_payload,
    from_upstream_status,
)
from ccproxy.metrics import Metrics
from ccproxy.prefill_log import PrefillLog
from ccproxy.prefix_cache import PrefixCache
from ccproxy.raw_relay import RawRelay
from ccproxy.relay import StreamPump, StreamStats, Translator
from ccproxy.request_body import read_body
from ccproxy.side_requests import is_side_request
from ccproxy.slots import BackendInfo, SlotPool, parse_backend_info, session_key
from ccproxy.text_tool_calls import TextToolCallTranslator, rewrite_message
from ccproxy.tokens import count_offline, count_with_llama_server, estimate_tokens
from ccproxy.tracing import Tracer, body_for_trace, redact_headers, timing_fields
from ccproxy.translate_request import RequestOptions, encode_upstream, to_openai_request
from ccproxy.translate_response import to_anthropic_message
from ccproxy.translate_stream import StreamTranslator
from ccproxy.types_anthropic import (
    CountTokensRequest,
    MessagesRequest,
    parse_count_tokens_request,
    parse_messages_request,
)
from ccproxy.upstream import ERROR_BODY_LIMIT, Upstream, decode_json, transport_error
from ccproxy.validate import decode_body

log = logging.getLogger("ccproxy")
T = TypeVar("T")

FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access")
PASSED_BACK_HEADERS = (
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "request-id",
    "anthropic-ratelimit-",
)
BACKEND_INFO_TTL = 60.0
BACKEND_RETRY = 5.0
HEALTH_TIMEOUT = 3.0
SSE_RAW_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


@dataclass
class Call:
    """One /v1/messages call, for logs, metrics and traces."""

    request_id: str
    endpoint: str
    started: float = field(default_factory=time.monotonic)
    model: str = "-"
    upstream_model: str = "-"
    slot: int | None = None
    stream: bool = False
    first_byte: float | None = None
    on_slot: Callable[[], Awaitable[None]] | None = None
    """Run on the request's slot, under its lock, right before the upstream request (prefix cache)."""
    trace: dict[str, Any] = field(default_factory=dict)
    """The trace record being built (only when tracing)."""


class Proxy:
    """State shared by all requests of one app: settings, upstream client, slots, metrics, tracer."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None) -> None:
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
        self.llama = settings.backend_features == "llama-server"
        self._backend: BackendInfo | None = None
        self._backend_lock = asyncio.Lock()
        self._backend_failed = -BACKEND_RETRY
        self.slots: SlotPool | None = None
        min_tokens = settings.prefix_cache_min_tokens
        self.prefix_cache = (
            PrefixCache(self.upstream, min_tokens=min_tokens, observe=self.metrics.observe_prefix_cache)
            if self.llama and min_tokens is not None
            else None
        )

    # -- backend discovery (llama-server) ----------------------------------------------------------
    async def backend_info(self) -> BackendInfo | None:
        if not self.llama:
            return None
        info = self._backend
        if info is not None and time.monotonic() - info.fetched < BACKEND_INFO_TTL:
            return info
        async with self._backend_lock:
            info = self._backend
            if info is not None and time.monotonic() - info.fetched < BACKEND_INFO_TTL:
                return info
            if time.monotonic() - self._backend_failed < BACKEND_RETRY:
                return self._backend
            try:
                info = await self._fetch_backend_info()
            except ProxyError as err:
                self._backend_failed = time.monotonic()
                log.warning("llama-server /props unavailable (retry in %g s): %s", BACKEND_RETRY, err.message)
                return self._backend
            if self.slots is None or self.slots.n_slots != info.n_slots:
                log.info("llama-server: %d slot(s), n_ctx %s per slot", info.n_slots, info.n_ctx)
                self.slots = SlotPool(info.n_slots)
            self._backend = info
            return info

    async def _fetch_backend_info(self) -> BackendInfo:
        props = await self.upstream.get_json("/props", root=True, deadline=HEALTH_TIMEOUT)
        try:
            slots = await self.upstream.get_json("/slots", root=True, deadline=HEALTH_TIMEOUT)
        except ProxyError:
            slots = None  # /slots is disabled with --no-slots; /props is enough
        return parse_backend_info(props, slots)

    # -- auth -----------------------------------------------------------------------------------------
    def check_auth(self, request: Request) -> None:
        token = self.settings.token
        if not token:
            return
        offered: list[str] = []
        authorization = request.headers.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            offered.append(value.strip())
        api_key = request.headers.get("x-api-key")
        if api_key:
            offered.append(api_key.strip())
        expected = token.encode()
        if not any(hmac.compare_digest(o.encode(), expected) for o in offered):
            what = "invalid" if offered else "missing"
            raise AuthenticationError(
                f"{what} proxy token: send the token configured for ccproxy as "
                "'Authorization: Bearer <token>' or 'x-api-key: <token>'"
            )

    # -- responses ------------------------------------------------------------------------------------
    def error_response(self, call: Call, err: ProxyError) -> JSONResponse:
        self.metrics.observe_error(call.endpoint, call.upstream_model, err.error_type)
        self.finish(call, err.status, error=err)
        return JSONResponse(err.to_body(), status_code=err.status, headers=err.headers())

    def finish(
        self,
        call: Call,
        status: int,
        *,
        error: ProxyError | None = None,
        stats: StreamStats | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> None:
        """Account for a finished call: metrics, one log line, the trace file."""
        now = time.monotonic()
        total = now - call.started
        if stats is not None:
            tokens = (stats.input_tokens, stats.output_tokens, stats.cache_read_tokens)
            first_byte = stats.first_byte
        else:
            u = usage or {}
            tokens = (
                int(u.get("input_tokens") or 0),
                int(u.get("output_tokens") or 0),
                int(u.get("cache_read_input_tokens") or 0),
            )
            first_byte = call.first_byte
        metrics = self.metrics
        metrics.observe_request(call.endpoint, call.upstream_model, status, total)
        if first_byte is not None:
            metrics.observe_first_byte(call.upstream_model, first_byte - call.started)
        if any(tokens):
            metrics.observe_tokens(
                call.upstream_model, input=tokens[0], output=tokens[1], cache_read=tokens[2]
            )
        level = logging.WARNING if error is not None and error.status >= 500 else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, log_line(call, status, now, first_byte, tokens, error, stats))
        if self.tracer.enabled and call.trace:
            record = dict(call.trace)
            record.update(status=status, seconds=round(total, 4))
            timings = stats.upstream_timings if stats is not None else None
            record.update(timing_fields(call.started, first_byte, timings))
            if error is not None:
                record["error"] = error.to_body()
            if stats is not None and stats.events is not None:
                record["response_events"] = stats.events
            self.tracer.write(call.request_id, record)

    def start_trace(self, call: Call, request: Request, raw: bytes) -> None:
        if self.tracer.enabled:
            call.trace.update(
                id=call.request_id,
                time=time.time(),
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                request_headers=redact_headers(request.headers.items()),
                request_body=body_for_trace(raw),
            )

    # -- /v1/messages ---------------------------------------------------------------------------------
    async def messages(self, request: Request) -> Response:
        call = Call(request_id=new_id("req"), endpoint="messages")
        try:
            self.check_auth(request)
            raw = await read_body(request)
            self.start_trace(call, request, raw)
            payload = decode_body(raw)
            if isinstance(payload, dict) and isinstance(payload.get("model"), str):
                call.model = payload["model"]
            if self.settings.upstream_kind == "anthropic":
                call.upstream_model = call.model
                return await self.passthrough(call, request, raw, payload)
            req = parse_messages_request(payload)
            return await self.translated(call, request, req)
        except ProxyError as err:
            return self.error_response(call, err)

    async def translated(self, call: Call, request: Request, req: MessagesRequest) -> Response:
        settings = self.settings
        side = is_side_request(req)
        call.stream = bool(req.stream)
        call.upstream_model = settings.model_map.resolve(req.model, side=side)
        opts = RequestOptions(
            upstream_model=call.upstream_model,
            max_tokens_limit=settings.max_tokens,
            prompt_layout=settings.prompt_layout,
            prompt_profile=settings.prompt_profile,
            extra_body=llama_extra_body(stream=call.stream) if self.llama else {},
            llama_stop_word=self.llama,
        )
        body = to_openai_request(req, opts, stream=call.stream)
        if side and settings.side_max_tokens is not None:
            body["max_tokens"] = min(int(body["max_tokens"]), settings.side_max_tokens)
        prompt_tokens: int | None = None
        # A side request routed to a separate side model does not run on this server: no slot, no
        # context check against this server's window.
        elsewhere = side and settings.model_map.side is not None
        info = None if elsewhere else await self.backend_info()
        text_tools = self._text_tool_names(body, info)
        if text_tools:
            # the same prompt (tools included), plain text back; the calls are recovered here
            body["tool_choice"] = "none"
            if settings.tool_grammar == "on":
                body["grammar"] = tool_grammar.for_tools(body["tools"])
        if info is not None and info.n_ctx is not None:
            prompt_tokens = await self._count_llama(body)
            if prompt_tokens is not None:
                if prompt_tokens >= info.n_ctx:
                    raise PromptTooLongError(prompt_tokens, info.n_ctx)
                body["max_tokens"] = max(
                    1, min(int(body.get("max_tokens", info.n_ctx)), info.n_ctx - prompt_tokens)
                )
        slots = self.slots
        if slots is not None and not elsewhere:
            session = session_key(request.headers, req.metadata)
            call.slot = slots.assign(session, side=side)
            body["id_slot"] = call.slot
            if self.prefix_cache is not None:
                prepare = self.prefix_cache.prepare
                call.on_slot = functools.partial(prepare, call.slot, session, body, side=side)
        content = encode_upstream(body)
        if self.tracer.enabled:
            call.trace["upstream_request"] = body
        message_id = new_id("msg")
        if prompt_tokens is None:
            prompt_tokens = estimate_tokens(content)

        if call.stream:
            return await self._stream(call, content, req, message_id, prompt_tokens, text_tools)
        data = await until_disconnected(request, self._complete(call, content))
        if data is None:
            self.finish(call, 499)
            return Response(status_code=499)
        if "error" in data and not data.get("choices"):
            raise from_upstream_payload(data["error"])
        if text_tools:
            data = rewrite_message(data, text_tools)
        stop = req.stop_sequences or ()
        message = to_anthropic_message(data, model=req.model, message_id=message_id, stop_sequences=stop)
        if self.tracer.enabled:
            call.trace["upstream_response"] = data
            call.trace["response_body"] = message
        self.finish(call, 200, usage=message.get("usage"))
        return JSONResponse(message)

    def _text_tool_names(self, body: Mapping[str, Any], info: BackendInfo | None) -> frozenset[str]:
        """The tool names whose calls the proxy recovers from text for this request (empty: none).

        Only for tool_choice auto: a forced choice keeps the backend's grammar, and `none` means none."""
        mode = self.settings.text_tool_calls
        if mode == "off" or (mode == "auto" and not (info is not None and info.text_tool_calls)):
            return frozenset()
        tools = body.get("tools")
        if not tools or body.get("tool_choice", "auto") != "auto":
            return frozenset()
        return frozenset(t["function"]["name"] for t in tools)

    async def _complete(self, call: Call, content: bytes) -> dict[str, Any]:
        """One non-streamed chat completion (waits for the slot first)."""
        async with self._on_slot(call), self.upstream.stream("/chat/completions", content) as response:
            call.first_byte = time.monotonic()
            try:
                data = decode_json(await response.aread(), what="POST /chat/completions")
            except httpx.HTTPError as exc:
                raise transport_error(exc, self.settings.read_timeout) from exc
        if not isinstance(data, dict):
            raise UpstreamProtocolError("upstream chat completion is not a JSON object")
        return data

    async def _count_llama(self, body: Mapping[str, Any]) -> int | None:
        try:
            return await count_with_llama_server(self.upstream, dict(body))
        except (ProxyError, ValueError) as err:
            self.metrics.observe_count_failure()
            log.warning("llama-server token count failed (%s); no context check for this request", err)
            return None

    def _on_slot(self, call: Call) -> AbstractAsyncContextManager[None]:
        """The request's turn on its slot (queued behind others), prefix cache work done first."""
        if call.slot is None or self.slots is None:
            return contextlib.nullcontext()
        if call.on_slot is None:
            return self.slots.acquire(call.slot)
        return self._prepared_slot(self.slots, call.slot, call.on_slot)

    @asynccontextmanager
    async def _prepared_slot(
        self, slots: SlotPool, slot: int, prepare: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[None]:
        async with slots.acquire(slot):
            await prepare()
            yield

    async def _stream(
        self,
        call: Call,
        content: bytes,
        req: MessagesRequest,
        message_id: str,
        prompt_tokens: int,
        text_tools: frozenset[str] = frozenset(),
    ) -> Response:
        @asynccontextmanager
        async def open_upstream() -> AsyncIterator[httpx.Response]:
            async with self._on_slot(call), self.upstream.stream("/chat/completions", content) as response:
                yield response

        stats = StreamStats(started=call.started, events=[] if self.tracer.enabled else None)
        pump = StreamPump(
            open_upstream,
            ping_interval=self.settings.ping_interval,
            read_timeout=self.settings.read_timeout,
            stats=stats,
            on_finish=self._stream_finished(call),
        )
        pump.start()
        early = await pump.wait_started(self.settings.stream_start_wait)
        if early is not None:
            pump.cancel()
            return self.error_response(call, early)
        base = StreamTranslator(
            model=req.model,
            message_id=message_id,
            input_tokens=prompt_tokens,
            stop_sequences=req.stop_sequences or (),
        )
        translator: Translator = TextToolCallTranslator(base, text_tools) if text_tools else base
        if self.llama:
            translator = PrefillLog(translator, call.request_id, stats)  # llama-server's prompt progress
        return RelayResponse(pump, pump.relay(translator))

    def _stream_finished(self, call: Call) -> Callable[[StreamStats], None]:
        """Accounting for a stream when it ends (or the client leaves)."""

        def done(stats: StreamStats) -> None:
            if stats.error is not None:
                self.metrics.observe_error(call.endpoint, call.upstream_model, stats.error.error_type)
            self.finish(call, 499 if stats.disconnected else 200, error=stats.error, stats=stats)

        return done

    # -- pass-through (anthropic kind) ------------------------------------------------------------------
    def forward_headers(self, request: Request) -> dict[str, str]:
        return {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}

    async def passthrough(self, call: Call, request: Request, raw: bytes, payload: object) -> Response:
        """Forward the body bytes untouched (billing header included); the upstream key is injected."""
        headers = self.forward_headers(request)
        query = request.url.query
        call.stream = isinstance(payload, dict) and payload.get("stream") is True
        if not call.stream:
            response = await until_disconnected(request, self._raw_send("/messages", raw, headers, query))
            if response is None:
                self.finish(call, 499)
                return Response(status_code=499)
            if response.status_code >= 300:
                return self._passthrough_error(call, response)
            call.first_byte = time.monotonic()
            usage = None
            with contextlib.suppress(ValueError):
                parsed = json.loads(response.content)
                usage = parsed.get("usage") if isinstance(parsed, dict) else None
                if self.tracer.enabled:
                    call.trace["response_body"] = parsed
            self.finish(call, response.status_code, usage=usage)
            return Response(response.content, status_code=response.status_code, media_type="application/json")

        @asynccontextmanager
        async def open_upstream() -> AsyncIterator[httpx.Response]:
            async with self.upstream.stream("/messages", raw, headers=headers, query=query) as response:
                yield response

        stats = StreamStats(started=call.started)
        relay = RawRelay(
            open_upstream,
            ping_interval=self.settings.ping_interval,
            read_timeout=self.settings.read_timeout,
            stats=stats,
            on_finish=self._stream_finished(call),
        )
        relay.start()
        early = await relay.wait_started(self.settings.stream_start_wait)
        if early is not None:
            relay.cancel()
            return self.error_response(call, early)
        return RelayResponse(relay, relay.relay())

    async def _raw_send(
        self, path: str, raw: bytes, headers: Mapping[str, str], query: str
    ) -> httpx.Response:
        """POST without mapping error statuses (Anthropic's own errors are passed back as they are)."""
        return await self.upstream.send(path, raw, headers=headers, query=query, check=False)

    def _passthrough_error(self, call: Call, response: httpx.Response) -> Response:
        """An upstream error: passed back unchanged when it is Anthropic-shaped, else mapped."""
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("type") == "error" and isinstance(body.get("error"), dict):
            error_type = str(body["error"].get("type", "api_error"))
            self.metrics.observe_error(call.endpoint, call.upstream_model, error_type)
            message = str(body["error"].get("message", ""))
            self.finish(
                call, response.status_code, error=ProxyError(response.status_code, error_type, message)
            )
            headers = {k: v for k, v in response.headers.items() if k.lower().startswith(PASSED_BACK_HEADERS)}
            return Response(
                response.content,
                status_code=response.status_code,
                media_type="application/json",
                headers=headers,
            )
        err = from_upstream_status(response.status_code, response.text[:ERROR_BODY_LIMIT], response.headers)
        return self.error_response(call, err)

    # -- /v1/messages/count_tokens ------------------------------------------------------------------------
    async def count_tokens(self, request: Request) -> Response:
        call = Call(request_id=new_id("req"), endpoint="count_tokens")
        try:
            self.check_auth(request)
            raw = await read_body(request)
            self.start_trace(call, request, raw)
            payload = decode_body(raw)
            if self.settings.upstream_kind == "anthropic":
                response = await self._raw_send(
                    "/messages/count_tokens", raw, self.forward_headers(request), request.url.query
                )
                if response.status_code != 404:
                    if response.status_code >= 300:
                        return self._passthrough_error(call, response)
                    self.finish(call, response.status_code)
                    return Response(
                        response.content, status_code=response.status_code, media_type="application/json"
                    )
            req = parse_count_tokens_request(payload)
            call.model = req.model
            call.upstream_model = self.settings.model_map.resolve(req.model, side=False)
            n = await self.count_request(req)
            self.finish(call, 200)
            return JSONResponse({"input_tokens": n})
        except ProxyError as err:
            return self.error_response(call, err)

    async def count_request(self, req: CountTokensRequest) -> int:
        upstream_model = self.settings.model_map.resolve(req.model, side=False)
        opts = RequestOptions(
            upstream_model=upstream_model,
            prompt_layout=self.settings.prompt_layout,
            prompt_profile=self.settings.prompt_profile,
        )
        body = to_openai_request(req, opts, stream=False)
        if self.llama:
            n = await self._count_llama(body)
            if n is not None:
                return n
        return await asyncio.to_thread(count_offline, body)

    # -- other endpoints --------------------------------------------------------------------------------
    async def models(self, request: Request) -> Response:
        call = Call(request_id=new_id("req"), endpoint="models")
        try:
            self.check_auth(request)
        except ProxyError as err:
            return self.error_response(call, err)
        if self.settings.upstream_kind == "anthropic":
            try:
                response = await self.upstream.get("/models")
            except ProxyError as err:
                return self.error_response(call, err)
            return Response(response.content, status_code=response.status_code, media_type="application/json")
        names: list[str] = []
        mm = self.settings.model_map
        for name in (mm.default, mm.side, *(r.upstream for r in mm.rules)):
            if name and name not in names:
                names.append(name)
        try:
            listed = await self.upstream.get_json("/models", deadline=HEALTH_TIMEOUT)
            for entry in listed.get("data", []) if isinstance(listed, dict) else []:
                if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"] not in names:
                    names.append(entry["id"])
        except ProxyError as err:
            log.info("upstream /models unavailable: %s", err.message)
        data = [
            {"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"} for n in names
        ]
        return JSONResponse(
            {
                "data": data,
                "has_more": False,
                "first_id": names[0] if names else None,
                "last_id": names[-1] if names else None,
            }
        )

    async def health(self, request: Request) -> Response:
        body: dict[str, Any] = {
            "status": "ok",
            "upstream": self.settings.upstream_shown,
            "upstream_kind": self.settings.upstream_kind,
            "backend_features": self.settings.backend_features,
        }
        try:
            if self.llama:
                response = await self.upstream.get("/health", root=True, deadline=HEALTH_TIMEOUT)
                if response.status_code >= 300:
                    raise ApiError(f"llama-server /health answered {response.status_code}")
                info = await self.backend_info()
                if info is not None:
                    body["backend"] = {"n_ctx": info.n_ctx, "slots": info.n_slots}
            else:
                response = await self.upstream.get("/models", deadline=HEALTH_TIMEOUT)
                if response.status_code >= 500:
                    raise ApiError(f"upstream /models answered {response.status_code}")
        except ProxyError as err:
            body.update(status="unavailable", error=err.message)
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    async def root(self, request: Request) -> Response:
        return JSONResponse({"name": "ccproxy", "version": __version__})

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)


def llama_extra_body(*, stream: bool) -> dict[str, Any]:
    """llama-server's own request keys: keep the prompt's KV cache; while it prefills a stream, send
    ``prompt_progress`` chunks (logged by PrefillLog; the upstream is never silent for a whole prefill)."""
    return {"cache_prompt": True, "return_progress": True} if stream else {"cache_prompt": True}


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


def log_line(
    call: Call,
    status: int,
    now: float,
    first_byte: float | None,
    tokens: tuple[int, int, int],
    error: ProxyError | None,
    stats: StreamStats | None,
) -> str:
    """`req_… messages claude-opus-4-8->qwen slot=0 stream=1 status=200 ttfb=… total=… in=… tok/s=…`"""
    parts = [
        f"{call.request_id} {call.endpoint} {call.model}->{call.upstream_model}",
        f"slot={call.slot if call.slot is not None else '-'} stream={int(call.stream)} status={status}",
    ]
    if stats is not None and stats.disconnected:
        parts.append("client-disconnected")
    if first_byte is not None:
        parts.append(f"ttfb={first_byte - call.started:.3f}s")
    parts.append(f"total={now - call.started:.3f}s")
    input_tokens, output_tokens, cache_read = tokens
    if input_tokens or output_tokens:
        # Streamed: from the upstream's first byte. Non-streamed: the answer arrives whole, its first byte
        # when generation is over, so the rate is over the whole request (prefill included).
        generating = now - (first_byte if stats is not None and first_byte is not None else call.started)
        rate = output_tokens / generating if generating > 0 else 0.0
        parts.append(f"in={input_tokens} cache_read={cache_read} out={output_tokens} tok/s={rate:.1f}")
    if error is not None:
        parts.append(f"error={error.error_type}: {error.message[:300]}")
    return " ".join(parts)


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


def new_id(prefix: str) -> str:
    """A unique id like `msg_0123…` (24 hex digits). Not a secret: the PRNG (seeded from the OS at
    start) saves the `getrandom` system call `uuid4` costs."""
    return f"{prefix}_{random.getrandbits(96):024x}"


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err: ProxyError = NotFoundError(f"no route for {request.method} {request.url.path}")
    else:
        err = ProxyError(exc.status_code, "invalid_request_error", str(exc.detail), should_retry=False)
    return JSONResponse(err.to_body(), status_code=err.status, headers=err.headers())


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    err = ApiError(f"internal proxy error ({type(exc).__name__}); see the proxy log")
    return JSONResponse(err.to_body(), status_code=err.status)


class ProxyApp:
    """The ASGI entry point. `POST /v1/messages`, the hot path, goes straight to the proxy: Starlette's
    middleware stack and router cost more CPU than the rest of a streamed request's server side.
    Everything else (other endpoints, 404/405, lifespan) is the Starlette app's."""

    def __init__(self, proxy: Proxy, routed: Starlette) -> None:
        self.proxy = proxy
        self.routed = routed
        self.state = routed.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/messages" and scope["method"] == "POST":
            request = Request(scope, receive)
            try:
                response = await self.proxy.messages(request)
            except Exception as exc:  # as the Starlette app's handler: an Anthropic-shaped 500
                response = await _unexpected(request, exc)
            await response(scope, receive, send)
        else:
            await self.routed(scope, receive, send)


def create_app(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> ProxyApp:
    """The proxy app. `transport` replaces the network for the upstream client (tests)."""
    proxy = Proxy(settings, transport)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if proxy.llama:
            await proxy.backend_info()
        yield
        await proxy.upstream.aclose()

    routes = [
        Route("/v1/messages", proxy.messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", proxy.count_tokens, methods=["POST"]),
        Route("/v1/models", proxy.models, methods=["GET"]),
        Route("/health", proxy.health, methods=["GET"]),
        Route("/metrics", proxy.metrics_endpoint, methods=["GET"]),
        Route("/", proxy.root, methods=["GET", "HEAD"]),
    ]
    routed = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception, Exception: _unexpected},
    )
    routed.state.proxy = proxy
    return ProxyApp(proxy, routed)
