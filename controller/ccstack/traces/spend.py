"""Spend per session and per UTC day from traces, against the proxy's budgets (pure).

ccproxy's traces carry each answer's usage, the cost the proxy counted for it (`cost_usd`, when the
upstream reported one or the model has a price) and, with a spend guard on, its budgets (`budget`).
Tokens are counted as the spend guard counts them: every prompt token (cached or not) plus output.

    rows = spend_rows(traces)            # one SpendRow per session, then one per UTC day
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

__all__ = ["SpendRow", "spend_rows", "usage_tokens", "utc_day"]

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


class Traced(Protocol):
    """What this module reads of a trace (reading.Trace)."""

    @property
    def session(self) -> str | None: ...
    @property
    def time(self) -> float | None: ...
    @property
    def response(self) -> dict[str, Any] | None: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def budget(self) -> dict[str, Any] | None: ...
    @property
    def is_messages(self) -> bool: ...


@dataclass(frozen=True)
class SpendRow:
    scope: str
    """`session` or `day`"""
    key: str
    """The session id, or the UTC date."""
    requests: int
    tokens: int
    usd: float
    unpriced: int
    """Requests with tokens but no known cost (USD is then a lower bound)."""
    token_budget: int | None
    usd_budget: float | None

    @property
    def token_share(self) -> float | None:
        return self.tokens / self.token_budget if self.token_budget else None

    @property
    def usd_share(self) -> float | None:
        return self.usd / self.usd_budget if self.usd_budget else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "token_share": self.token_share, "usd_share": self.usd_share}


def usage_tokens(usage: Mapping[str, Any] | None) -> int:
    """Prompt (uncached, cache reads, cache writes) + output tokens of an Anthropic usage."""
    total = 0
    for key in USAGE_KEYS:
        value = (usage or {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            total += value
    return total


def utc_day(t: float | None) -> str:
    """The UTC date of a time, `-` without one."""
    return time.strftime("%Y-%m-%d", time.gmtime(t)) if t is not None else "-"


def _limit(budget: Mapping[str, Any] | None, name: str) -> Any:
    value = (budget or {}).get(name)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def spend_rows(traces: Iterable[Traced]) -> list[SpendRow]:
    """Per session (in order of first appearance), then per UTC day: requests, tokens, USD, and the
    budgets of the latest trace that names them."""
    acc: dict[tuple[str, str], list[Any]] = {}
    for t in traces:
        if not t.is_messages:
            continue
        usage = (t.response or {}).get("usage")
        tokens = usage_tokens(usage if isinstance(usage, Mapping) else None)
        for scope, key in (("session", t.session or "-"), ("day", utc_day(t.time))):
            row = acc.setdefault((scope, key), [0, 0, 0.0, 0, None, None])
            row[0] += 1
            row[1] += tokens
            row[2] += t.cost_usd or 0.0
            row[3] += 1 if t.cost_usd is None and tokens else 0
            if t.budget is not None:
                row[4] = _limit(t.budget, f"{scope}_tokens")
                row[5] = _limit(t.budget, f"{scope}_usd")
    rows = [SpendRow(scope, key, *values) for (scope, key), values in acc.items()]
    return [r for r in rows if r.scope == "session"] + [r for r in rows if r.scope == "day"]
