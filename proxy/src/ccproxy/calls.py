"""Accounting for one call to the proxy: the `Call` record, and when it ends its metrics, its log line,
its session's figures and spend (`session_stats`, read by the status line and the spend guard) and its
trace file (`Accounting.finish`).

    call = Call(request_id=new_id("req"), endpoint="messages")
    ...
    accounting.finish(call, 200, stats=stats)          # or usage=..., or error=...
    return accounting.error_response(call, err)        # an Anthropic-shaped error, accounted for
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ccproxy.budget import Price, Usage, cost_of
from ccproxy.errors import ProxyError
from ccproxy.metrics import Metrics
from ccproxy.relay import StreamStats, reported_cost
from ccproxy.session_stats import SessionStats, turn_of
from ccproxy.tracing import Tracer, body_for_trace, redact_headers, timing_fields

__all__ = ["Accounting", "Call", "log_line", "new_id", "utc_day"]

log = logging.getLogger("ccproxy")


@dataclass
class Call:
    """One call, for logs, metrics and traces."""

    request_id: str
    endpoint: str
    started: float = field(default_factory=time.monotonic)
    model: str = "-"
    upstream_model: str = "-"
    slot: int | None = None
    queue: bool = True
    """Wait for the slot in the proxy's queue (not behind a pool's balancer: `UpstreamPlan.queue`)."""
    upstream_headers: Mapping[str, str] = field(default_factory=dict)
    stream: bool = False
    first_byte: float | None = None
    on_slot: Callable[[], Awaitable[None]] | None = None
    """Run on the request's slot, under its lock, right before the upstream request (prefix cache)."""
    trace: dict[str, Any] = field(default_factory=dict)
    """The trace record being built (only when tracing)."""
    session: str | None = None
    """The session key (`plan.session_key`) of a /v1/messages call: its spend and figures are kept."""
    peer: str | None = None
    """The client's address (a session's figures are readable from there only)."""
    side: bool = False
    """A side request (title, haiku, count): spend, not the session's turn."""


def utc_day(now: float | None = None) -> str:
    """The UTC date, `YYYY-MM-DD` (the spend guard's day)."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def new_id(prefix: str) -> str:
    """A unique id like `msg_0123…` (24 hex digits). Not a secret: the PRNG (seeded from the OS at
    start) saves the `getrandom` system call `uuid4` costs."""
    return f"{prefix}_{random.getrandbits(96):024x}"


class Accounting:
    """Metrics, log lines and trace files of the proxy's calls."""

    def __init__(
        self,
        metrics: Metrics,
        tracer: Tracer,
        sessions: SessionStats | None = None,
        prices: Iterable[tuple[str, Price]] = (),
    ) -> None:
        self.metrics = metrics
        self.tracer = tracer
        self.sessions = sessions if sessions is not None else SessionStats()
        self.prices = tuple(prices)

    def error_response(self, call: Call, err: ProxyError) -> JSONResponse:
        self.metrics.observe_error(call.endpoint, call.upstream_model, err.error_type)
        self.finish(call, err.status, error=err)
        return JSONResponse(err.to_body(), status_code=err.status, headers=err.headers())

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

    def stream_finished(self, call: Call) -> Callable[[StreamStats], None]:
        """Accounting for a stream when it ends (or the client leaves)."""

        def done(stats: StreamStats) -> None:
            if stats.error is not None:
                self.metrics.observe_error(call.endpoint, call.upstream_model, stats.error.error_type)
            self.finish(call, 499 if stats.disconnected else 200, error=stats.error, stats=stats)

        return done

    def finish(
        self,
        call: Call,
        status: int,
        *,
        error: ProxyError | None = None,
        stats: StreamStats | None = None,
        usage: Mapping[str, Any] | None = None,
        cost: float | None = None,
    ) -> None:
        """Account for a finished call: metrics, one log line, the session's figures, the trace file.
        `cost`: what the upstream reported for a non-streamed call (a stream's is in `stats`)."""
        now = time.monotonic()
        total = now - call.started
        if stats is not None:
            used = Usage(
                stats.input_tokens,
                stats.output_tokens,
                stats.cache_read_tokens,
                stats.cache_write_tokens,
                stats.upstream_cost,
            )
            first_byte = stats.first_byte
        else:
            u = usage or {}
            used = Usage(
                _tokens(u.get("input_tokens")),
                _tokens(u.get("output_tokens")),
                _tokens(u.get("cache_read_input_tokens")),
                _tokens(u.get("cache_creation_input_tokens")),
                cost if cost is not None else reported_cost(u),
            )
            first_byte = call.first_byte
        tokens = (used.input, used.output, used.cache_read)
        metrics = self.metrics
        metrics.observe_request(call.endpoint, call.upstream_model, status, total)
        if first_byte is not None:
            metrics.observe_first_byte(call.upstream_model, first_byte - call.started)
        if any(tokens):
            metrics.observe_tokens(
                call.upstream_model, input=tokens[0], output=tokens[1], cache_read=tokens[2]
            )
        if call.session is not None and used.tokens:
            # the generation rate's span as the log line's: a non-streamed answer arrives whole
            generating = first_byte if stats is not None else call.started
            self._record(call, status, used, stats, (generating, now), error)
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
            if call.session is not None:
                record["session"] = call.session
            self.tracer.write(call.request_id, record)

    def _record(
        self,
        call: Call,
        status: int,
        used: Usage,
        stats: StreamStats | None,
        span: tuple[float | None, float],
        error: ProxyError | None,
    ) -> None:
        """The session's spend (every call with tokens) and its last turn (a completed main request)."""
        assert call.session is not None
        model = call.upstream_model
        cost = cost_of(used, model, self.prices)
        turn = None
        if status == 200 and error is None and not call.side:
            start, end = span
            seconds = end - start if start is not None else None
            timings = stats.upstream_timings if stats is not None else None
            turn = turn_of(used, model=model, seconds=seconds, timings=timings)
        self.sessions.record(call.session, peer=call.peer, day=utc_day(), usage=used, cost=cost, turn=turn)
        if self.tracer.enabled and call.trace:
            call.trace["cost_usd"] = cost


def _tokens(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


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
