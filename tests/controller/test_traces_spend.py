"""Spend per session and per UTC day from traces (ccstack.traces.spend), over real ccproxy traces with
the spend guard on (tests/fixtures/traces/budget-scripted) and small made-up ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ccstack.traces import reading
from ccstack.traces.spend import SpendRow, spend_rows, usage_tokens, utc_day

pytestmark = pytest.mark.unit

BUDGET = Path(__file__).resolve().parents[1] / "fixtures" / "traces" / "budget-scripted"
A, B = "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-aaaaaaaaaaaa"


def test_spend_of_real_traces_matches_what_the_proxy_refused_at() -> None:
    traces = reading.load_many(reading.trace_files(BUDGET))
    rows = {(r.scope, r.key): r for r in spend_rows(traces)}
    a, b = rows[("session", A)], rows[("session", B)]
    day = rows[("day", utc_day(traces[0].time))]
    refused = next(t for t in traces if t.status == 402)
    # the proxy's own count in its refusal ("523 of 450 tokens") is what the traces add up to
    assert f"is spent ({a.tokens:,} of 450 tokens)" in refused_message(refused)
    assert (a.requests, a.token_budget, a.usd_budget) == (3, 450, None)
    assert a.tokens >= 450
    assert a.token_share is not None
    assert a.token_share >= 1
    assert (b.requests, b.token_budget) == (1, 450)
    assert b.tokens < 450
    assert (day.requests, day.tokens, day.usd_budget) == (4, a.tokens + b.tokens, 1.0)
    assert day.usd == pytest.approx(a.usd + b.usd)
    # priced at $3/$15 per million: every answered call has a cost, the refused one none (no tokens)
    assert a.usd > 0
    assert (a.unpriced, b.unpriced, day.unpriced) == (0, 0, 0)
    assert [r.scope for r in spend_rows(traces)] == ["session", "session", "day"]


def refused_message(trace: reading.Trace) -> str:
    """The refusal the proxy answered (kept in the trace's `error`)."""
    data = json.loads(trace.file.read_text(encoding="utf-8"))
    return str(data["error"]["error"]["message"])


class Fake:
    def __init__(self, session: str | None, t: float, usage: dict[str, Any] | None, cost: float | None,
                 budget: dict[str, Any] | None = None, messages: bool = True) -> None:  # fmt: skip
        self.session, self.time, self.cost_usd, self.budget = session, t, cost, budget
        self.response = {"usage": usage} if usage is not None else None
        self.is_messages = messages


def test_days_are_utc_and_unknown_costs_make_a_lower_bound() -> None:
    late, early = 1764633599.0, 1764633600.0  # 2025-12-01 23:59:59 UTC, 2025-12-02 00:00:00 UTC
    traces = [
        Fake("s", late, {"input_tokens": 10, "output_tokens": 5}, 0.5, {"session_usd": 2, "day_tokens": 100}),
        Fake("s", early, {"input_tokens": 1, "cache_read_input_tokens": 100, "output_tokens": 1}, None),
        Fake(None, early, None, None),  # an error answer: a request, no tokens
        Fake("s", early, {"input_tokens": 99}, 9.0, messages=False),  # count_tokens: not spend
    ]
    rows = spend_rows(traces)
    assert rows == [
        SpendRow("session", "s", 2, 117, 0.5, 1, None, 2),
        SpendRow("session", "-", 1, 0, 0.0, 0, None, None),
        SpendRow("day", "2025-12-01", 1, 15, 0.5, 0, 100, None),
        SpendRow("day", "2025-12-02", 2, 102, 0.0, 1, None, None),
    ]
    assert rows[0].usd_share == 0.25
    assert rows[2].token_share == 0.15
    assert rows[1].token_share is None
    assert rows[0].to_json()["usd_share"] == 0.25


def test_usage_tokens_counts_every_prompt_token_and_output() -> None:
    usage = {
        "input_tokens": 3,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 7,
        "output_tokens": 5,
        "server_tool_use": {"web_search_requests": 1},
    }
    assert usage_tokens(usage) == 115
    assert usage_tokens(None) == 0
    assert usage_tokens({"input_tokens": True, "output_tokens": -4}) == 0
    assert utc_day(None) == "-"
