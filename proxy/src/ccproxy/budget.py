"""The spend guard (pure): token and cost budgets per session and per day, and whether a request may go.

    budget = Budget(session_tokens=2_000_000, day_usd=5.0)
    err = check(budget, spent_in_session, spent_today)     # a BillingError, or None: the request may go
    cost = cost_of(usage, model, prices)                    # USD, or None when no price is known

What counts: every token the upstream processed for the proxy's client, prompt tokens (cached or not)
plus output tokens, and their cost in USD: the cost the upstream reports in its usage (OpenRouter's
``usage.cost``) when it does, else the price table (USD per million tokens; ``DEFAULT_PRICES`` plus the
config file's ``prices``). A call whose model has no price adds no cost (its tokens still count) and
marks the spend as a lower bound (``Spend.unpriced``).

A spent budget answers **402 billing_error** with ``x-should-retry: false``: Claude Code shows the message
and does not retry (it retries 401, 429, 5xx and 529; CLAUDE_CODE_WIRE.md). The counters themselves live
at the edge (``session_stats.SessionStats``, fed by ``calls.Accounting``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ccproxy.errors import BillingError

__all__ = [
    "DEFAULT_PRICES",
    "Budget",
    "Price",
    "Spend",
    "Usage",
    "check",
    "cost_of",
    "parse_prices",
    "price_for",
]


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. Cache reads and writes default to Anthropic's multipliers of the input
    price (0.1x and 1.25x)."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


DEFAULT_PRICES: tuple[tuple[str, Price], ...] = (
    # Anthropic's list prices (USD per million tokens, checked 2025-11); a key matches the model name
    # and any name it begins (dated ids such as claude-sonnet-4-5-20250929).
    ("claude-opus-4-5", Price(5.0, 25.0)),
    ("claude-opus-4-1", Price(15.0, 75.0)),
    ("claude-opus-4", Price(15.0, 75.0)),
    ("claude-sonnet-4-5", Price(3.0, 15.0)),
    ("claude-sonnet-4", Price(3.0, 15.0)),
    ("claude-3-7-sonnet", Price(3.0, 15.0)),
    ("claude-haiku-4-5", Price(1.0, 5.0)),
    ("claude-3-5-haiku", Price(0.8, 4.0)),
    # OpenRouter reports each call's cost itself (usage.cost); this is the fallback for its default model.
    ("qwen/qwen3-coder", Price(0.22, 0.95, cache_read=0.22, cache_write=0.22)),
)


@dataclass(frozen=True, slots=True)
class Usage:
    """One call's usage, as the client was told (Anthropic terms: ``input`` excludes cached tokens)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    cost: float | None = None
    """The cost the upstream reported for this call (USD), if it did."""

    @property
    def prompt(self) -> int:
        return self.input + self.cache_read + self.cache_write

    @property
    def tokens(self) -> int:
        return self.prompt + self.output


@dataclass(frozen=True, slots=True)
class Spend:
    """Tokens and USD spent (by a session, or on one day). ``unpriced``: calls whose cost is unknown."""

    tokens: int = 0
    usd: float = 0.0
    unpriced: int = 0

    def add(self, usage: Usage, cost: float | None) -> Spend:
        return Spend(
            self.tokens + usage.tokens,
            self.usd + (cost or 0.0),
            self.unpriced + (1 if cost is None and usage.tokens else 0),
        )


@dataclass(frozen=True, slots=True)
class Budget:
    """Optional limits (None: no limit)."""

    session_tokens: int | None = None
    day_tokens: int | None = None
    session_usd: float | None = None
    day_usd: float | None = None

    @property
    def enabled(self) -> bool:
        limits = (self.session_tokens, self.day_tokens, self.session_usd, self.day_usd)
        return any(v is not None for v in limits)


def price_for(model: str, prices: Iterable[tuple[str, Price]]) -> Price | None:
    """The price of ``model``: the longest key equal to its name or a prefix of it (case-insensitive)."""
    name = model.lower()
    best: tuple[int, Price] | None = None
    for key, price in prices:
        k = key.lower()
        if (name == k or name.startswith(k)) and (best is None or len(k) > best[0]):
            best = (len(k), price)
    return best[1] if best is not None else None


def cost_of(usage: Usage, model: str, prices: Iterable[tuple[str, Price]]) -> float | None:
    """USD for one call: the upstream's own figure, else from the price table; None when unknown."""
    if usage.cost is not None:
        return usage.cost
    if not usage.tokens:
        return 0.0
    price = price_for(model, prices)
    if price is None:
        return None
    read = price.cache_read if price.cache_read is not None else price.input * 0.1
    write = price.cache_write if price.cache_write is not None else price.input * 1.25
    micro = (
        usage.input * price.input
        + usage.output * price.output
        + usage.cache_read * read
        + usage.cache_write * write
    )
    return micro / 1_000_000


def check(budget: Budget, session: Spend, day: Spend) -> BillingError | None:
    """The error for a request when a budget is already spent, else None (the request may go).

    A budget is spent when what was counted reaches it; the call that crosses a limit completes
    (its size is unknown before it runs), the next one is refused."""
    limits: tuple[tuple[str, str, float | None, float, str], ...] = (
        ("session", "token", budget.session_tokens, session.tokens, "CCPROXY_BUDGET_SESSION_TOKENS"),
        ("session", "cost", budget.session_usd, session.usd, "CCPROXY_BUDGET_SESSION_USD"),
        ("day", "token", budget.day_tokens, day.tokens, "CCPROXY_BUDGET_DAY_TOKENS"),
        ("day", "cost", budget.day_usd, day.usd, "CCPROXY_BUDGET_DAY_USD"),
    )
    for scope, kind, limit, spent, env in limits:
        if limit is None or spent < limit:
            continue
        if kind == "token":
            amount = f"{spent:,.0f} of {limit:,.0f} tokens"
        else:
            amount = f"${spent:.4f} of ${limit:.2f}"
        where = "this session" if scope == "session" else "today (UTC)"
        flag = env.removeprefix("CCPROXY_").lower().replace("_", "-")
        hint = "start a new Claude Code session" if scope == "session" else "wait for the next UTC day"
        return BillingError(
            f"ccproxy spend guard: the {kind} budget of {where} is spent ({amount}). "
            f"To continue, {hint}, or raise the limit (--{flag} / {env}).",
            should_retry=False,
        )
    return None


def parse_prices(value: object) -> tuple[tuple[str, Price], ...]:
    """Prices, USD per million tokens: the config file's ``prices`` mapping ``{model: {input, output,
    cache_read, cache_write}}``, or the flag's / env var's text ``MODEL=IN/OUT[/CACHE_READ[/CACHE_WRITE]]``
    (comma-separated); raises ``ValueError`` naming the bad entry."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = _prices_from_text(value)
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping of model name -> {input, output, cache_read, ...}")
    out: list[tuple[str, Price]] = []
    for model, entry in value.items():
        if not isinstance(model, str) or not model:
            raise ValueError(f"model names must be non-empty strings, got {model!r}")
        if not isinstance(entry, Mapping):
            raise ValueError(f"prices.{model}: expected a mapping with input and output (USD per million)")
        unknown = sorted(set(map(str, entry)) - {"input", "output", "cache_read", "cache_write"})
        if unknown:
            raise ValueError(f"prices.{model}: unknown key(s) {', '.join(unknown)}")
        numbers: dict[str, float | None] = {}
        for key in ("input", "output", "cache_read", "cache_write"):
            raw = entry.get(key)
            if raw is None and key in ("input", "output"):
                raise ValueError(f"prices.{model}.{key}: required (USD per million tokens)")
            if raw is None:
                numbers[key] = None
                continue
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
                raise ValueError(f"prices.{model}.{key}: expected a number >= 0, got {raw!r}")
            numbers[key] = float(raw)
        out.append(
            (
                model,
                Price(
                    numbers["input"] or 0.0,
                    numbers["output"] or 0.0,
                    numbers["cache_read"],
                    numbers["cache_write"],
                ),
            )
        )
    return tuple(out)


def _prices_from_text(text: str) -> dict[str, dict[str, float]]:
    keys = ("input", "output", "cache_read", "cache_write")
    out: dict[str, dict[str, float]] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        model, eq, numbers = item.rpartition("=")
        fields = numbers.split("/")
        if not eq or not model.strip() or not 2 <= len(fields) <= 4:
            raise ValueError(f"{item!r} is not MODEL=IN/OUT[/CACHE_READ[/CACHE_WRITE]] (USD per million)")
        try:
            out[model.strip()] = {k: float(f) for k, f in zip(keys, fields, strict=False)}
        except ValueError:
            raise ValueError(f"{item!r}: the prices must be numbers") from None
    return out
