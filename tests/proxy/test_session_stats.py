"""Per-session figures (session_stats.py): turns, spend, the day, the LRU bound, the reader's address."""

from __future__ import annotations

import pytest
from ccproxy.budget import Budget, Spend, Usage
from ccproxy.session_stats import SessionStats, Turn, session_view, turn_of

pytestmark = pytest.mark.unit

DAY = "2026-12-01"


def test_turn_of_prefers_the_backends_generation_rate() -> None:
    usage = Usage(input=200, output=50, cache_read=1800)
    turn = turn_of(usage, model="m", seconds=10.0, timings={"predicted_per_second": 31.25})
    assert turn == Turn(
        "m", prompt_tokens=2000, cache_read_tokens=1800, output_tokens=50, tokens_per_second=31.25
    )
    assert turn.cache_share == pytest.approx(0.9)


def test_turn_of_falls_back_to_output_over_seconds() -> None:
    assert turn_of(Usage(output=40), model="m", seconds=2.0, timings={}).tokens_per_second == 20.0
    assert turn_of(Usage(output=40), model="m", seconds=None, timings=None).tokens_per_second is None
    assert turn_of(Usage(output=0), model="m", seconds=2.0, timings=None).tokens_per_second is None
    assert turn_of(Usage(), model="m", seconds=1.0, timings=None).cache_share is None


def _turn(prompt: int) -> Turn:
    return Turn("m", prompt, 0, 1, 1.0)


def test_records_spend_and_turns_per_session_and_the_day() -> None:
    stats = SessionStats()
    stats.record("session:a", peer="10.0.0.2", day=DAY, usage=Usage(10, 5), cost=0.25, turn=_turn(10))
    stats.record("session:a", peer="10.0.0.2", day=DAY, usage=Usage(3, 1), cost=None, turn=None)  # side
    stats.record("session:b", peer="10.0.0.3", day=DAY, usage=Usage(100, 0), cost=1.0, turn=_turn(100))
    a, day = stats.spent("session:a", day=DAY)
    assert a == Spend(tokens=19, usd=0.25, unpriced=1)
    assert day == Spend(tokens=119, usd=1.25, unpriced=1)
    record = stats.get("session:a", peer="10.0.0.2")
    assert record is not None
    assert (record.turns, record.last) == (1, _turn(10))
    assert stats.spent("session:new", day=DAY)[0] == Spend()


def test_a_new_utc_day_starts_from_zero_and_sessions_keep_theirs() -> None:
    stats = SessionStats()
    stats.record("session:a", peer=None, day=DAY, usage=Usage(10, 0), cost=1.0, turn=None)
    assert stats.day_spend("2026-12-02") == Spend()
    stats.record("session:a", peer=None, day="2026-12-02", usage=Usage(1, 0), cost=0.5, turn=None)
    session, day = stats.spent("session:a", day="2026-12-02")
    assert (session.tokens, day.tokens, day.usd) == (11, 1, 0.5)


def test_only_the_sessions_latest_address_reads_it_and_unknown_looks_the_same() -> None:
    stats = SessionStats()
    stats.record("session:a", peer="10.0.0.2", day=DAY, usage=Usage(1, 1), cost=0.0, turn=_turn(1))
    assert stats.get("session:a", peer="10.0.0.3") is None
    assert stats.get("session:zzz", peer="10.0.0.2") is None
    stats.record("session:a", peer="10.0.0.9", day=DAY, usage=Usage(1, 1), cost=0.0, turn=_turn(1))
    assert stats.get("session:a", peer="10.0.0.2") is None  # the session moved (a resumed container)
    assert stats.get("session:a", peer="10.0.0.9") is not None


def test_bounded_least_recently_used_first_out() -> None:
    stats = SessionStats(max_sessions=3)
    for key in ("a", "b", "c"):
        stats.record(key, peer=None, day=DAY, usage=Usage(1), cost=0.0, turn=None)
    stats.record("a", peer=None, day=DAY, usage=Usage(1), cost=0.0, turn=None)  # a is recent again
    stats.record("d", peer=None, day=DAY, usage=Usage(1), cost=0.0, turn=None)
    assert len(stats) == 3
    assert stats.get("b", peer=None) is None
    assert all(stats.get(k, peer=None) is not None for k in ("a", "c", "d"))
    with pytest.raises(ValueError, match="max_sessions"):
        SessionStats(max_sessions=0)


def test_session_view() -> None:
    stats = SessionStats()
    turn = turn_of(
        Usage(input=100, output=20, cache_read=900),
        model="m",
        seconds=None,
        timings={"predicted_per_second": 12.345},
    )
    stats.record("session:a", peer="p", day=DAY, usage=Usage(100, 20, 900), cost=None, turn=turn)
    record = stats.get("session:a", peer="p")
    assert record is not None
    view = session_view(record, window=4000, budget=Budget(session_tokens=5000), day=stats.day_spend(DAY))
    assert (view["window"], view["turns"]) == (4000, 1)
    assert view["last_turn"] == {
        "model": "m",
        "prompt_tokens": 1000,
        "cache_read_tokens": 900,
        "cache_share": 0.9,
        "output_tokens": 20,
        "tokens_per_second": 12.35,
        "context_used": 0.25,
    }
    assert view["spend"]["session"] == {"tokens": 1020, "usd": 0.0, "unpriced_calls": 1}
    assert view["budget"] == {
        "session_tokens": 5000,
        "day_tokens": None,
        "session_usd": None,
        "day_usd": None,
    }
    no_window = session_view(record, window=None, budget=Budget(), day=Spend())
    assert no_window["last_turn"]["context_used"] is None


def test_session_view_without_a_record_is_empty() -> None:
    view = session_view(None, window=4096, budget=Budget(day_usd=1.0), day=Spend(10, 0.5))
    assert (view["window"], view["turns"], view["last_turn"]) == (4096, 0, None)
    assert view["spend"] == {
        "session": {"tokens": 0, "usd": 0.0, "unpriced_calls": 0},
        "day": {"tokens": 10, "usd": 0.5, "unpriced_calls": 0},
    }
