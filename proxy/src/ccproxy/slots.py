"""Session -> slot affinity for llama-server, with per-slot queues.

llama-server keeps one KV cache per slot. A Claude Code session re-sends a 16-20 k token prefix on every
turn, so each session sticks to one slot (`id_slot`) and keeps its prefix hot. Side requests (title
generation, haiku calls, `max_tokens: 1` count fallbacks) go to a reserved side slot so they never evict
a conversation's cache. Requests for a busy slot wait in that slot's FIFO queue instead of failing.

    slots = SlotPool(n_slots=3)         # slots 0, 1 for sessions; slot 2 for side requests
    slot = slots.assign("session-uuid", side=False)
    async with slots.acquire(slot):
        ...                             # one request at a time per slot

With one slot everything shares slot 0 (queued). The session key comes from `plan.session_key`; the
slot count from llama-server (`llama_server.LlamaServer`). The request's plan chooses among the slots
the pool offers (`offer`, a read); the app then records a new session's slot (`bind`).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

MAX_SESSIONS = 4096


@dataclass(frozen=True)
class SlotOffer:
    """The slots a session's requests may take: its main slot (sticky) and the shared side slot."""

    main: int
    side: int


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
        offer = self.offer(key)
        slot = offer.side if side else offer.main
        if not side:
            self.bind(key, slot)
        return slot

    def offer(self, key: str) -> SlotOffer:
        """The slots a request of session `key` would run on (nothing recorded: see `bind`)."""
        slot = self._sessions.get(key)
        if slot is None:
            load = dict.fromkeys(self.main_slots, 0)
            for s in self._sessions.values():
                load[s] += 1
            slot = min(
                self.main_slots, key=lambda s: (load[s], self._waiting[s] + self._locks[s].locked(), s)
            )
        return SlotOffer(main=slot, side=self.side_slot)

    def bind(self, key: str, slot: int) -> None:
        """Record that session `key` runs on main slot `slot` (most recently used)."""
        if self._sessions.get(key) == slot:
            self._sessions.move_to_end(key)
            return
        self._sessions[key] = slot
        if len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)

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
