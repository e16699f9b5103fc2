"""Server-sent events, both ways (pure).

Out: an Anthropic stream event is a dict in wire shape; its ``type`` is the SSE event name::

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

In: ``SSEDataDecoder`` splits upstream bytes into the payloads of complete ``data:`` lines
(``feed(bytes) -> payloads``, ``flush()``), and ``parse_chunk`` turns one chat-completion payload into a
dict, or raises the ``ProxyError`` it stands for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ccproxy.errors import UpstreamProtocolError, from_upstream_payload
from ccproxy.text_repair import decode_text, repair_text

__all__ = ["PING", "SSEDataDecoder", "encode_event", "encode_events", "parse_chunk"]


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Encode one event as ``event: <type>\\ndata: <compact JSON>\\n\\n``.

    The data is always valid JSON in valid UTF-8: NaN and Infinity raise ``ValueError``; a lone UTF-16
    surrogate in a string becomes U+FFFD instead of failing the encoding."""
    name = event.get("type")
    if not isinstance(name, str) or not name or "\n" in name or "\r" in name:
        raise ValueError(f"an SSE event needs a one-line string 'type', got {name!r}")
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        encoded = data.encode()
    except UnicodeEncodeError:
        encoded = repair_text(data).encode()
    return b"event: " + name.encode() + b"\ndata: " + encoded + b"\n\n"


def encode_events(events: Iterable[Mapping[str, Any]]) -> bytes:
    """Encode several events back to back."""
    return b"".join(encode_event(event) for event in events)


PING: bytes = encode_event({"type": "ping"})
"""A keep-alive Claude Code ignores."""


class SSEDataDecoder:
    """Incremental SSE decoding over raw bytes: the payloads of complete `data:` lines.

    Upstream streams of chat completions put one JSON object per `data:` line; comments, `event:` and
    blank lines are skipped. Works on bytes so no text decoding layer sits on the hot path.
    """

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        return [line[5:].strip() for line in lines if line.startswith(b"data:")]

    def flush(self) -> list[bytes]:
        rest, self._buffer = self._buffer, b""
        return [rest[5:].strip()] if rest.startswith(b"data:") else []


def parse_chunk(data: bytes) -> dict[str, Any]:
    """One upstream chunk. Bytes that are not UTF-8 become U+FFFD (a stray byte must not end an answer)."""
    try:
        chunk = json.loads(decode_text(data))
    except ValueError:
        raise UpstreamProtocolError(f"upstream sent a malformed stream chunk: {data[:200]!r}") from None
    if not isinstance(chunk, dict):
        raise UpstreamProtocolError(f"upstream sent a non-object stream chunk: {data[:200]!r}")
    if "error" in chunk and not chunk.get("choices"):
        raise from_upstream_payload(chunk["error"])
    return chunk
