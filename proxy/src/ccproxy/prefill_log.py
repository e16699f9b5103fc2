"""The first prefill, visible: llama-server's prompt progress as log lines while a stream waits for it.

Asked with ``return_progress: true``, llama-server sends a chunk with ``prompt_progress`` (``total``,
``cache``, ``processed`` tokens, ``time_ms``) after each batch it processes, before the first token. A
new session's first turn on a CPU can take minutes (Claude Code's spinner keeps turning: the proxy sends
pings); the proxy logs each step, as ``just logs`` / ``ccstack logs`` show it:

    req_… prefill 2051/3506 tokens (3 cached) 7.8 s, 264 tok/s

:class:`PrefillLog` wraps a stream translator and passes every chunk through unchanged. Progress chunks
make llama-server answer its headers at once; so that the request's log line and metrics still time
the answer (``ttfb``, tok/s), the first chunk after them counts as the stream's first byte.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ccproxy.errors import ProxyError
from ccproxy.relay import StreamStats, Translator
from ccproxy.types_events import StreamEvent

__all__ = ["MIN_LOGGED_TOKENS", "PrefillLog", "progress_line"]

log = logging.getLogger("ccproxy")

MIN_LOGGED_TOKENS = 1024
"""Prefills of fewer new tokens than this are not worth a line (a turn on a warm cache)."""


def _count(progress: dict[str, Any], key: str) -> int | None:
    value = progress.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def progress_line(request_id: str, progress: object) -> str | None:
    """The log line for one ``prompt_progress`` object, or None (malformed, or not worth a line)."""
    if not isinstance(progress, dict):
        return None
    total, cache, processed = (_count(progress, k) for k in ("total", "cache", "processed"))
    time_ms = progress.get("time_ms")
    if total is None or cache is None or processed is None or not isinstance(time_ms, int | float):
        return None
    if total - cache < MIN_LOGGED_TOKENS or processed <= cache:
        return None
    seconds = max(float(time_ms), 0.0) / 1000
    rate = f", {(processed - cache) / seconds:.0f} tok/s" if seconds > 0 else ""
    return f"{request_id} prefill {processed}/{total} tokens ({cache} cached) {seconds:.1f} s{rate}"


class PrefillLog:
    """A stream translator that logs llama-server's prompt progress, then hands every chunk on."""

    def __init__(self, inner: Translator, request_id: str, stats: StreamStats | None = None) -> None:
        self._inner = inner
        self._request_id = request_id
        self._stats = stats
        self._progress = False
        self._answering = False

    def start(self) -> list[StreamEvent]:
        return self._inner.start()

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        if isinstance(chunk, dict) and "prompt_progress" in chunk:
            self._progress = True
            line = progress_line(self._request_id, chunk["prompt_progress"])
            if line is not None:
                log.info("%s", line)
        elif not self._answering:
            self._answering = True
            if self._progress and self._stats is not None:
                self._stats.first_byte = time.monotonic()  # the answer's first byte, after the prefill
        return self._inner.feed(chunk)

    def finish(self) -> list[StreamEvent]:
        return self._inner.finish()

    def fail(self, err: ProxyError) -> list[StreamEvent]:
        return self._inner.fail(err)
