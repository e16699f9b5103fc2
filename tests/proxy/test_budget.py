"""The spend guard's pure decisions (budget.py): prices, costs, and when a request is refused."""

from __future__ import annotations

import pytest
from ccproxy.budget import (
    DEFAULT_PRICES,
    Budget,
    Price,
    Spend,
    Usage,
    check,
    cost_of,
    parse_prices,
    price_for,
)
from ccproxy.errors import BillingError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-sonnet-4-5-20250929", Price(3.0, 15.0)),  # a dated id: its prefix's price
        ("claude-opus-4-5", Price(5.0, 25.0)),  # the longer key beats claude-opus-4
        ("claude-opus-4-20250514", Price(15.0, 75.0)),
        ("CLAUDE-HAIKU-4-5", Price(1.0, 5.0)),
        ("qwen/qwen3-coder", DEFAULT_PRICES[-1][1]),
        ("claude-opus-5-5", None),  # not in the table: no price, never a guess
        ("local", None),
    ],
)
def test_price_for_matches_the_longest_name_prefix(model: str, expected: Price | None) -> None:
    assert price_for(model, DEFAULT_PRICES) == expected


def test_configured_prices_win_a_tie_with_the_built_in_ones() -> None:
    mine = Price(1.0, 2.0)
    assert price_for("claude-sonnet-4-5", (("claude-sonnet-4-5", mine), *DEFAULT_PRICES)) == mine


def test_cost_from_the_price_table_with_cache_multipliers() -> None:
    usage = Usage(input=1_000_000, output=1_000_000, cache_read=1_000_000, cache_write=1_000_000)
    # sonnet 4.5: 3 input + 15 output + 0.3 cache read (0.1x) + 3.75 cache write (1.25x)
    assert cost_of(usage, "claude-sonnet-4-5", DEFAULT_PRICES) == pytest.approx(3 + 15 + 0.3 + 3.75)
    explicit = (("m", Price(1.0, 2.0, cache_read=0.5, cache_write=0.0)),)
    assert cost_of(Usage(2_000_000, 0, 2_000_000, 9), "m", explicit) == pytest.approx(2 + 1)


def test_reported_cost_wins_and_unknown_models_cost_nothing_known() -> None:
    assert cost_of(Usage(10, 10, cost=0.0042), "claude-opus-5-5", DEFAULT_PRICES) == 0.0042
    assert cost_of(Usage(10, 10), "claude-opus-5-5", DEFAULT_PRICES) is None
    assert cost_of(Usage(), "claude-opus-5-5", DEFAULT_PRICES) == 0.0


def test_spend_adds_every_prompt_token_and_counts_unpriced_calls() -> None:
    spend = Spend().add(Usage(input=5, output=7, cache_read=100, cache_write=3), 0.5)
    spend = spend.add(Usage(input=1, output=1), None)
    assert spend == Spend(tokens=5 + 7 + 100 + 3 + 2, usd=0.5, unpriced=1)


def test_no_budget_never_refuses() -> None:
    assert not Budget().enabled
    assert check(Budget(), Spend(10**12, 10**6), Spend(10**12, 10**6)) is None


@pytest.mark.parametrize(
    ("budget", "session", "day", "words"),
    [
        (
            Budget(session_tokens=1000),
            Spend(1000),
            Spend(1000),
            ("token budget of this session", "1,000 of 1,000"),
        ),
        (Budget(day_tokens=5000), Spend(10), Spend(5001), ("token budget of today (UTC)", "5,001 of 5,000")),
        (
            Budget(session_usd=0.5),
            Spend(1, 0.5),
            Spend(1, 0.5),
            ("cost budget of this session", "$0.5000 of $0.50"),
        ),
        (Budget(day_usd=2.0), Spend(1, 0.1), Spend(1, 2.25), ("cost budget of today", "$2.2500 of $2.00")),
    ],
)
def test_a_spent_budget_refuses_with_a_billing_error_that_is_not_retried(
    budget: Budget, session: Spend, day: Spend, words: tuple[str, ...]
) -> None:
    err = check(budget, session, day)
    assert isinstance(err, BillingError)
    assert (err.status, err.error_type) == (402, "billing_error")
    assert err.headers() == {"x-should-retry": "false"}
    assert err.to_body()["type"] == "error"
    for word in words:
        assert word in err.message
    assert "raise the limit (--budget-" in err.message


@pytest.mark.parametrize(
    ("budget", "session", "day"),
    [
        (Budget(session_tokens=1000), Spend(999), Spend(10**9)),  # the day has no limit
        (Budget(day_tokens=1000, session_usd=1.0), Spend(5000, 0.99), Spend(999, 0.99)),
    ],
)
def test_below_every_limit_the_request_goes(budget: Budget, session: Spend, day: Spend) -> None:
    assert check(budget, session, day) is None


def test_parse_prices() -> None:
    parsed = parse_prices({"my-model": {"input": 1, "output": 2.5, "cache_read": 0.1}})
    assert parsed == (("my-model", Price(1.0, 2.5, 0.1, None)),)
    assert parse_prices(None) == ()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([1], "expected a mapping"),
        ("m", "'m' is not MODEL=IN/OUT"),
        ("m=1/2/3/4/5", "is not MODEL=IN/OUT"),
        ({"m": 3}, "prices.m: expected a mapping"),
        ({"m": {"input": 1}}, "prices.m.output: required"),
        ({"m": {"input": 1, "output": -1}}, "prices.m.output: expected a number >= 0"),
        ({"m": {"input": 1, "output": True}}, "prices.m.output"),
        ({"m": {"input": 1, "output": 1, "cache": 1}}, "unknown key(s) cache"),
    ],
)
def test_parse_prices_names_the_bad_entry(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_prices(value)
