"""Relay helpers: stream statistics (stream behaviour is in test_app_stream)."""

from __future__ import annotations

import pytest
from ccproxy.relay import StreamStats

pytestmark = pytest.mark.unit


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


def test_stats_ignore_usage_of_the_wrong_shape() -> None:
    stats = StreamStats()
    stats.observe(
        [
            {"type": "message_start", "message": ["not", "a", "dict"]},
            {
                "type": "message_start",
                "message": {"usage": {"input_tokens": "12", "cache_read_input_tokens": [1]}},
            },
            {"type": "message_delta", "delta": "x", "usage": {"output_tokens": 3.5, "input_tokens": True}},
            {"type": "message_delta", "usage": "none"},
        ]
    )
    assert (stats.input_tokens, stats.output_tokens, stats.cache_read_tokens, stats.stop_reason) == (
        0,
        0,
        0,
        None,
    )
