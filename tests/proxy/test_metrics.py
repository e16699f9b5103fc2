"""Prometheus metrics: per-app registries, labels by upstream and model."""

from __future__ import annotations

import pytest
from ccproxy.metrics import Metrics

pytestmark = pytest.mark.unit


def test_metrics_render_and_are_per_instance() -> None:
    a, b = Metrics("http://a/v1"), Metrics("http://b/v1")
    a.observe_request("messages", "qwen", 200, 0.25)
    a.observe_error("messages", "qwen", "overloaded_error")
    a.observe_first_byte("qwen", 0.1)
    a.observe_tokens("qwen", input=100, output=20, cache_read=80)
    text = a.render().decode()
    assert (
        'ccproxy_requests_total{endpoint="messages",model="qwen",status="200",upstream="http://a/v1"} 1.0'
        in text
    )
    errors = 'ccproxy_errors_total{endpoint="messages",model="qwen",type="overloaded_error",'
    assert errors + 'upstream="http://a/v1"} 1.0' in text
    assert 'ccproxy_tokens_total{kind="cache_read",model="qwen",upstream="http://a/v1"} 80.0' in text
    assert (
        'ccproxy_request_duration_seconds_count{endpoint="messages",model="qwen",upstream="http://a/v1"} 1.0'
        in text
    )
    assert "ccproxy_upstream_first_byte_seconds_bucket" in text
    assert "qwen" not in b.render().decode()
    assert a.content_type.startswith("text/plain")
