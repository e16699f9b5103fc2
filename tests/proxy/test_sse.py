"""SSE both ways: encoding Anthropic events, decoding upstream `data:` lines and chunks."""

from __future__ import annotations

from typing import Any

import pytest
from ccproxy.errors import OverloadedError, UpstreamProtocolError
from ccproxy.sse import PING, SSEDataDecoder, encode_event, encode_events, parse_chunk

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "ping"}, b'event: ping\ndata: {"type":"ping"}\n\n'),
        ({"type": "message_stop"}, b'event: message_stop\ndata: {"type":"message_stop"}\n\n'),
        (
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "h\u00e9\nllo"},
            },
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            '"delta":{"type":"text_delta","text":"h\u00e9\\nllo"}}\n\n'.encode(),
        ),
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n',
        ),
    ],
    ids=["ping", "stop", "utf8-newline", "error"],
)
def test_encode_event(event: dict[str, Any], expected: bytes) -> None:
    assert encode_event(event) == expected


def test_data_is_a_single_line() -> None:
    out = encode_event({"type": "x", "text": "a\nb\r\nc"})
    assert out.count(b"\n") == 3  # event line, data line, blank line


@pytest.mark.parametrize("event", [{}, {"type": ""}, {"type": 3}, {"type": "a\nb"}])
def test_bad_event_type_rejected(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="type"):
        encode_event(event)


def test_encode_events_and_ping() -> None:
    assert encode_events([{"type": "ping"}, {"type": "message_stop"}]) == PING + encode_event(
        {"type": "message_stop"}
    )
    assert encode_events([]) == b""


def test_encoding_never_fails_on_text_and_never_writes_nan() -> None:
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a\ud800b"}}
    data = encode_event(event)
    assert data.decode("utf-8").endswith('"text":"a\ufffdb"}}\n\n')
    joined = encode_event({"type": "error", "error": {"message": "\ud83d\ude00"}})
    assert "\U0001f600" in joined.decode()
    with pytest.raises(ValueError, match="JSON compliant"):
        encode_event({"type": "message_delta", "usage": {"output_tokens": float("nan")}})


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


def test_chunks_with_bytes_that_are_not_utf8_are_repaired() -> None:
    assert parse_chunk(b'{"choices":[{"delta":{"content":"a\xffb"}}]}') == {
        "choices": [{"delta": {"content": "a\ufffdb"}}]
    }
