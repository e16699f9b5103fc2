"""Per-session figures for the status line and the spend guard (pure, bounded in memory).

    stats = SessionStats()
    stats.record("session:<uuid>", peer="172.18.0.5", day="2026-12-01", model="qwen", usage=usage,
                 cost=0.0012, turn=turn_of(usage, seconds=2.1, timings=None))
    session, day = stats.spent("session:<uuid>", day="2026-12-01")      # budget.Spend each (budget.check)
    record = stats.get("session:<uuid>", peer="172.18.0.5")             # None: unknown, or another's
    body = session_view(record, window=32768, budget=budget, day=day)   # GET /ccproxy/sessions/<id>

A session's last *turn* is its last main-conversation request that completed (side requests such as
title generation count as spend, not as the turn shown). At most ``MAX_SESSIONS`` sessions are kept,
least recently used first out. A record is readable only from the client address that sent the
session's latest request (``peer``): another sandbox on the same stack, holding the same proxy token,
does not read it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ccproxy.budget import Budget, Spend, Usage

__all__ = ["MAX_SESSIONS", "SessionRecord", "SessionStats", "Turn", "session_view", "turn_of"]

MAX_SESSIONS = 4096


@dataclass(frozen=True, slots=True)
class Turn:
    """The last main-conversation request of a session, as the status line shows it."""

    model: str
    prompt_tokens: int
    """The whole prompt: uncached input + cache reads + cache writes (the context used)."""
    cache_read_tokens: int
    output_tokens: int
    tokens_per_second: float | None
    """Generation speed (the backend's own figure when it gives one: llama-server's timings)."""

    @property
    def cache_share(self) -> float | None:
        """The share of the prompt served from the cache (None without a prompt)."""
        return self.cache_read_tokens / self.prompt_tokens if self.prompt_tokens else None


def turn_of(usage: Usage, *, model: str, seconds: float | None, timings: Mapping[str, Any] | None) -> Turn:
    """The turn of one completed call. ``seconds``: time from the upstream's first byte to the end
    (for a rate when the backend gives none); ``timings``: llama-server's ``timings`` (predicted_n,
    predicted_ms, predicted_per_second)."""
    rate: float | None = None
    if timings is not None:
        value = timings.get("predicted_per_second")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            rate = float(value)
    if rate is None and usage.output and seconds is not None and seconds > 0:
        rate = usage.output / seconds
    return Turn(
        model=model,
        prompt_tokens=usage.prompt,
        cache_read_tokens=usage.cache_read,
        output_tokens=usage.output,
        tokens_per_second=rate,
    )


@dataclass(slots=True)
class SessionRecord:
    peer: str | None
    last: Turn | None = None
    turns: int = 0
    spend: Spend = field(default_factory=Spend)


class SessionStats:
    """Sessions by key (``plan.session_key``), least recently used dropped past ``max_sessions``; and the
    spend of the current UTC day (the edge passes ``day``: this module reads no clock)."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, SessionRecord] = OrderedDict()
        self._day = ""
        self._day_spend = Spend()

    def __len__(self) -> int:
        return len(self._sessions)

    def record(
        self,
        key: str,
        *,
        peer: str | None,
        day: str,
        usage: Usage,
        cost: float | None,
        turn: Turn | None,
    ) -> None:
        """Count one call of session ``key``; ``turn``: the call is the session's new last turn."""
        record = self._sessions.get(key)
        if record is None:
            record = self._sessions[key] = SessionRecord(peer)
            if len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(key)
            record.peer = peer
        record.spend = record.spend.add(usage, cost)
        if turn is not None:
            record.last = turn
            record.turns += 1
        self._day_spend = self.day_spend(day).add(usage, cost)
        self._day = day

    def day_spend(self, day: str) -> Spend:
        return self._day_spend if day == self._day else Spend()

    def spent(self, key: str, *, day: str) -> tuple[Spend, Spend]:
        """What session ``key`` and the day ``day`` have spent so far."""
        record = self._sessions.get(key)
        return (record.spend if record is not None else Spend()), self.day_spend(day)

    def get(self, key: str, *, peer: str | None) -> SessionRecord | None:
        """The session's record for a reader at ``peer``; None when unknown or when ``peer`` is not the
        address of the session's latest request (the same answer: no oracle for other sessions)."""
        record = self._sessions.get(key)
        if record is None or record.peer != peer:
            return None
        return record


def session_view(
    record: SessionRecord | None, *, window: int | None, budget: Budget, day: Spend
) -> dict[str, Any]:
    """The JSON body of ``GET /ccproxy/sessions/<id>`` (``record`` None: no turn, nothing spent)."""
    if record is None:
        record = SessionRecord(peer=None)
    last = record.last
    turn: dict[str, Any] | None = None
    if last is not None:
        share = last.cache_share
        rate = last.tokens_per_second
        turn = {
            "model": last.model,
            "prompt_tokens": last.prompt_tokens,
            "cache_read_tokens": last.cache_read_tokens,
            "cache_share": round(share, 4) if share is not None else None,
            "output_tokens": last.output_tokens,
            "tokens_per_second": round(rate, 2) if rate is not None else None,
            "context_used": round(last.prompt_tokens / window, 4) if window else None,
        }
    return {
        "window": window,
        "turns": record.turns,
        "last_turn": turn,
        "spend": {"session": _spend(record.spend), "day": _spend(day)},
        "budget": {
            "session_tokens": budget.session_tokens,
            "day_tokens": budget.day_tokens,
            "session_usd": budget.session_usd,
            "day_usd": budget.day_usd,
        },
    }


def _spend(spend: Spend) -> dict[str, Any]:
    return {"tokens": spend.tokens, "usd": round(spend.usd, 6), "unpriced_calls": spend.unpriced}
