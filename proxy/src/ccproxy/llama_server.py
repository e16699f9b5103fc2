"""What is particular to llama.cpp's llama-server (I/O through `upstream.Upstream`).

- **backend facts** from `/props` and `/slots` (`parse_backend_info`, pure): context per slot, number of
  slots, and whether the chat template carries `TEXT_TOOL_CALLS_MARKER` (then the proxy recovers tool
  calls the model writes as text). `LlamaServer.info()` keeps them for `INFO_TTL` seconds and sizes the
  `SlotPool` by them.
- **exact counts**: the translated request rendered by the server's own template (`/apply-template`)
  and tokenized (`/tokenize`, special tokens added and parsed as for a completion), so the count equals
  the prompt the server will process for the same request (`count_with_llama_server`).

    llama = LlamaServer(upstream, on_count_failure=metrics.observe_count_failure)
    info = await llama.info()                  # BackendInfo | None (None until /props answered once)
    n = await llama.count(plan.count_body)     # int | None (None: failed, logged and counted)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ccproxy.errors import ApiError, ProxyError
from ccproxy.slots import SlotPool
from ccproxy.upstream import Upstream

__all__ = [
    "TEXT_TOOL_CALLS_MARKER",
    "BackendInfo",
    "LlamaServer",
    "count_with_llama_server",
    "parse_backend_info",
]

log = logging.getLogger("ccproxy")

TEXT_TOOL_CALLS_MARKER = "ccproxy:text-tool-calls"
INFO_TTL = 60.0
INFO_RETRY = 5.0
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class BackendInfo:
    """What llama-server tells about itself: context per slot and number of slots."""

    n_ctx: int | None
    n_slots: int
    text_tool_calls: bool = False
    """The chat template asks the proxy to recover tool calls written as text (`TEXT_TOOL_CALLS_MARKER`)."""
    fetched: float = field(default_factory=time.monotonic)


def parse_backend_info(props: object, slots: object) -> BackendInfo:
    """From /slots (a list with n_ctx per slot) and/or /props (total_slots, default_generation_settings)."""
    n_ctx: int | None = None
    n_slots = 0
    text_tool_calls = False
    if isinstance(slots, list) and slots:
        n_slots = len(slots)
        ctxs: list[int] = [
            s["n_ctx"] for s in slots if isinstance(s, dict) and isinstance(s.get("n_ctx"), int)
        ]
        n_ctx = min(ctxs) if ctxs else None
    if isinstance(props, dict):
        if not n_slots and isinstance(props.get("total_slots"), int):
            n_slots = props["total_slots"]
        settings = props.get("default_generation_settings")
        if n_ctx is None and isinstance(settings, dict) and isinstance(settings.get("n_ctx"), int):
            n_ctx = settings["n_ctx"]
        if n_ctx is None and isinstance(props.get("n_ctx"), int):
            n_ctx = props["n_ctx"]
        templates = (props.get("chat_template"), props.get("chat_template_tool_use"))
        text_tool_calls = any(isinstance(t, str) and TEXT_TOOL_CALLS_MARKER in t for t in templates)
    return BackendInfo(
        n_ctx=n_ctx if n_ctx and n_ctx > 0 else None,
        n_slots=max(1, n_slots),
        text_tool_calls=text_tool_calls,
    )


async def count_with_llama_server(upstream: Upstream, openai_body: Mapping[str, Any]) -> int:
    """Exact prompt tokens for this chat request, by the backend's own template and tokenizer."""
    rendered = await upstream.post_json("/apply-template", dict(openai_body), root=True)
    prompt = rendered.get("prompt") if isinstance(rendered, dict) else None
    if not isinstance(prompt, str):
        raise ValueError("llama-server /apply-template answered without a 'prompt'")
    tokens = await upstream.post_json(
        "/tokenize", {"content": prompt, "add_special": True, "parse_special": True}, root=True
    )
    ids = tokens.get("tokens") if isinstance(tokens, dict) else None
    if not isinstance(ids, list):
        raise ValueError("llama-server /tokenize answered without 'tokens'")
    return len(ids)


class LlamaServer:
    """One llama-server behind the upstream: its facts (cached), its slot pool, exact counts."""

    def __init__(self, upstream: Upstream, *, on_count_failure: Callable[[], None] | None = None) -> None:
        self.upstream = upstream
        self.slots: SlotPool | None = None
        self._info: BackendInfo | None = None
        self._lock = asyncio.Lock()
        self._failed = -INFO_RETRY
        self._on_count_failure = on_count_failure

    async def info(self) -> BackendInfo | None:
        """The server's facts, fetched at most every INFO_TTL seconds (after a failure: the last known
        facts, and no new attempt for INFO_RETRY seconds)."""
        info = self._info
        if info is not None and time.monotonic() - info.fetched < INFO_TTL:
            return info
        async with self._lock:
            info = self._info
            if info is not None and time.monotonic() - info.fetched < INFO_TTL:
                return info
            if time.monotonic() - self._failed < INFO_RETRY:
                return self._info
            try:
                info = await self._fetch()
            except ProxyError as err:
                self._failed = time.monotonic()
                log.warning("llama-server /props unavailable (retry in %g s): %s", INFO_RETRY, err.message)
                return self._info
            if self.slots is None or self.slots.n_slots != info.n_slots:
                log.info("llama-server: %d slot(s), n_ctx %s per slot", info.n_slots, info.n_ctx)
                self.slots = SlotPool(info.n_slots)
            self._info = info
            return info

    async def _fetch(self) -> BackendInfo:
        props = await self.upstream.get_json("/props", root=True, deadline=PROBE_TIMEOUT)
        try:
            slots = await self.upstream.get_json("/slots", root=True, deadline=PROBE_TIMEOUT)
        except ProxyError:
            slots = None  # /slots is disabled with --no-slots; /props is enough
        return parse_backend_info(props, slots)

    async def health(self) -> None:
        """Raise a ProxyError unless llama-server's /health answers 2xx."""
        reply = await self.upstream.get("/health", root=True, deadline=PROBE_TIMEOUT)
        if reply.status_code >= 300:
            raise ApiError(f"llama-server /health answered {reply.status_code}")

    async def count(self, body: Mapping[str, Any]) -> int | None:
        """Exact prompt tokens, or None when the server could not tell (logged and counted)."""
        try:
            return await count_with_llama_server(self.upstream, body)
        except (ProxyError, ValueError) as err:
            if self._on_count_failure is not None:
                self._on_count_failure()
            log.warning("llama-server token count failed (%s); no context check for this request", err)
            return None
