"""Relay helpers: SSE data lines and stream statistics (the stream behaviour itself is in test_app)."""

from __future__ import annotations

import pytest
from ccproxy.relay import StreamStats, sse_data

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("line", "data"),
    [
        ("data: {}", "{}"),
        ("data:{}", "{}"),
        ("data: [DONE]", "[DONE]"),
        (": keep-alive", None),
        ("event: x", None),
        ("", None),
    ],
)
def test_sse_data(line: str, data: str | None) -> None:
    assert sse_data(line) == data


def test_stats_follow_usage_in_events() -> None:
    stats = StreamStats(events=[])
    stats.observe(
        [{"type": "message_start", "message": {"usage": {"input_tokens": 50, "cache_read_input_tokens": 0}}}]
    )
    stats.observe(
        [
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 40},
            },
        ]
    )
    assert (stats.input_tokens, stats.output_tokens, stats.cache_read_tokens) == (10, 7, 40)
    assert stats.stop_reason == "end_turn"
    assert stats.events is not None
    assert len(stats.events) == 3
