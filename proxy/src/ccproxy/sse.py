"""Server-sent events encoding of Anthropic stream events (pure).

An event is a plain dict in Anthropic wire shape; its ``type`` is the SSE event name::

    event: content_block_delta
    data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ccproxy.text_repair import repair_text

__all__ = ["PING", "encode_event", "encode_events"]


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
