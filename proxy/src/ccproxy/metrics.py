"""Prometheus metrics, one registry per app (so tests and several apps in a process never collide)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ccproxy_requests",
            "Requests answered, by endpoint, upstream, upstream model and HTTP status.",
            ["endpoint", "upstream", "model", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "ccproxy_errors",
            "Errors returned to the client (HTTP or in-stream), by Anthropic error type.",
            ["endpoint", "upstream", "model", "type"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ccproxy_request_duration_seconds",
            "Time from request to the last byte sent.",
            ["endpoint", "upstream", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttfb = Histogram(
            "ccproxy_upstream_first_byte_seconds",
            "Time from request to the upstream's first response byte.",
            ["upstream", "model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "ccproxy_tokens",
            "Tokens by kind: input, output, cache_read.",
            ["upstream", "model", "kind"],
            registry=self.registry,
        )
        self.count_failures = Counter(
            "ccproxy_preflight_count_failures",
            "Pre-flight token counts with llama-server that failed (the context check was skipped).",
            ["upstream"],
            registry=self.registry,
        )
        self.retries = Counter(
            "ccproxy_upstream_retries",
            "Requests sent again on a new connection because the pooled one closed before answering.",
            ["upstream"],
            registry=self.registry,
        )
        self.prefix_cache = Counter(
            "ccproxy_prefix_cache",
            "Claude Code's shared prefix on llama-server, by outcome before a session's first turn: warm, "
            "kept, restored, restore_failed, saved, save_failed, save_skipped, error, unsupported.",
            ["upstream", "result"],
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._ttfb_children: dict[str, Any] = {}
        self._token_children: dict[str, tuple[Any, ...]] = {}

    # prometheus_client's .labels() costs a lock and a lookup per call: keep the children.
    def observe_request(self, endpoint: str, model: str, status: int, seconds: float) -> None:
        key = (endpoint, model, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(endpoint, self.upstream, model, str(status)),
                self.latency.labels(endpoint, self.upstream, model),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_error(self, endpoint: str, model: str, error_type: str) -> None:
        self.errors.labels(endpoint, self.upstream, model, error_type).inc()

    def observe_first_byte(self, model: str, seconds: float) -> None:
        child = self._ttfb_children.get(model)
        if child is None:
            child = self._ttfb_children[model] = self.ttfb.labels(self.upstream, model)
        child.observe(seconds)

    def observe_tokens(self, model: str, *, input: int, output: int, cache_read: int) -> None:
        children = self._token_children.get(model)
        if children is None:
            children = self._token_children[model] = tuple(
                self.tokens.labels(self.upstream, model, kind) for kind in ("input", "output", "cache_read")
            )
        for child, n in zip(children, (input, output, cache_read), strict=True):
            if n:
                child.inc(n)

    def observe_count_failure(self) -> None:
        self.count_failures.labels(self.upstream).inc()

    def observe_retry(self) -> None:
        self.retries.labels(self.upstream).inc()

    def observe_prefix_cache(self, result: str) -> None:
        self.prefix_cache.labels(self.upstream, result).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
