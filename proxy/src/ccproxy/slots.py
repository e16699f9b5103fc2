"""Session -> slot affinity for llama-server, with per-slot queues.

llama-server keeps one KV cache per slot. A Claude Code session re-sends a 16-20 k token prefix on every
turn, so each session sticks to one slot (`id_slot`) and keeps its prefix hot. Side requests (title
generation, haiku calls, `max_tokens: 1` count fallbacks) go to a reserved side slot so they never evict
a conversation's cache. Requests for a busy slot wait in that slot's FIFO queue instead of failing.

    slots = SlotPool(n_slots=3)         # slots 0, 1 for sessions; slot 2 for side requests
    slot = slots.assign("session-uuid", side=False)
    async with slots.acquire(slot):
        ...                             # one request at a time per slot

With one slot everything shares slot 0 (queued). The session key is `X-Claude-Code-Session-Id`, else
`metadata.user_id`, else a shared anonymous key. The slot count and context per slot come from
llama-server's `/slots` or `/props` (`parse_backend_info`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

TEXT_TOOL_CALLS_MARKER = "ccproxy:text-tool-calls"
SESSION_HEADER = "x-claude-code-session-id"
ANONYMOUS = "-"
MAX_SESSIONS = 4096


def session_key(headers: Mapping[str, str], metadata: object) -> str:
    """Stable key for slot affinity: the session header, else metadata.user_id, else anonymous."""
    value = headers.get(SESSION_HEADER)
    if value:
        return f"session:{value}"
    if isinstance(metadata, Mapping):
        user_id = metadata.get("user_id")
        if isinstance(user_id, str) and user_id:
            return f"user:{user_id}"
    return ANONYMOUS


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


class SlotPool:
    def __init__(self, n_slots: int) -> None:
        if n_slots < 1:
            raise ValueError("n_slots must be >= 1")
        self.n_slots = n_slots
        self.side_slot = n_slots - 1 if n_slots > 1 else 0
        self.main_slots = tuple(range(n_slots - 1)) if n_slots > 1 else (0,)
        self._locks = [asyncio.Lock() for _ in range(n_slots)]
        self._waiting = [0] * n_slots
        self._sessions: OrderedDict[str, int] = OrderedDict()

    def assign(self, key: str, *, side: bool) -> int:
        """The slot for this request; a new session takes the main slot with the fewest sessions."""
        if side:
            return self.side_slot
        slot = self._sessions.get(key)
        if slot is not None:
            self._sessions.move_to_end(key)
            return slot
        load = dict.fromkeys(self.main_slots, 0)
        for s in self._sessions.values():
            load[s] += 1
        slot = min(self.main_slots, key=lambda s: (load[s], self._waiting[s] + self._locks[s].locked(), s))
        self._sessions[key] = slot
        if len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return slot

    def queued(self, slot: int) -> int:
        """Requests on this slot: running (0 or 1) plus waiting."""
        return self._waiting[slot] + int(self._locks[slot].locked())

    @asynccontextmanager
    async def acquire(self, slot: int) -> AsyncIterator[None]:
        self._waiting[slot] += 1
        try:
            await self._locks[slot].acquire()
        finally:
            self._waiting[slot] -= 1
        try:
            yield
        finally:
            self._locks[slot].release()
