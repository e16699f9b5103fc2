"""Relay helpers: incremental SSE decoding and stream statistics (stream behaviour is in test_app)."""

from __future__ import annotations

import pytest
from ccproxy.errors import OverloadedError, UpstreamProtocolError
from ccproxy.relay import SSEDataDecoder, StreamStats, parse_chunk

pytestmark = pytest.mark.unit


def test_decoder_splits_anywhere_and_keeps_only_data_lines() -> None:
    wire = b': comment\r\nevent: x\r\ndata: {"a": 1}\r\n\r\ndata:{"b":2}\n\ndata: [DONE]\n\n'
    for cut in range(len(wire) + 1):
        decoder = SSEDataDecoder()
        payloads = decoder.feed(wire[:cut]) + decoder.feed(wire[cut:]) + decoder.flush()
        assert payloads == [b'{"a": 1}', b'{"b":2}', b"[DONE]"], cut


def test_decoder_flushes_an_unterminated_last_line() -> None:
    decoder = SSEDataDecoder()
    assert decoder.feed(b'data: {"a": 1}') == []
    assert decoder.flush() == [b'{"a": 1}']
    assert decoder.flush() == []


def test_parse_chunk() -> None:
    assert parse_chunk(b'{"choices": []}') == {"choices": []}
    with pytest.raises(UpstreamProtocolError, match="malformed"):
        parse_chunk(b"{nope")
    with pytest.raises(UpstreamProtocolError, match="non-object"):
        parse_chunk(b"[1]")
    with pytest.raises(OverloadedError):
        parse_chunk(b'{"error": {"code": 503, "message": "loading model"}}')


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


def test_chunks_with_bytes_that_are_not_utf8_are_repaired() -> None:
    assert parse_chunk(b'{"choices":[{"delta":{"content":"a\xffb"}}]}') == {
        "choices": [{"delta": {"content": "a\ufffdb"}}]
    }
