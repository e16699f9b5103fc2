"""`ccstack up MODE --budget-... --price ...`: the proxy's spend guard as `up` options (ccstack.cli)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ccstack.modes import SpendBudget


def add_arguments(parser: argparse.ArgumentParser) -> None:
    budget = parser.add_argument_group(
        "spend guard", "the proxy refuses requests (402 billing_error) once a budget is spent"
    )
    budget.add_argument(
        "--budget-session-tokens",
        type=_positive(int),
        metavar="N",
        help="tokens one Claude Code session may use (prompt, cached or not, + output)",
    )
    budget.add_argument(
        "--budget-day-tokens", type=_positive(int), metavar="N", help="tokens per UTC day, all sessions"
    )
    budget.add_argument(
        "--budget-session-usd",
        type=_positive(float),
        metavar="USD",
        help="USD one session may spend (the upstream's reported cost, else the proxy's price table)",
    )
    budget.add_argument(
        "--budget-day-usd", type=_positive(float), metavar="USD", help="USD per UTC day, all sessions"
    )
    budget.add_argument(
        "--price",
        action="append",
        default=[],
        type=_price,
        metavar="MODEL=IN/OUT",
        help="USD per million input/output tokens (/CACHE_READ/CACHE_WRITE optional) of a model the "
        "proxy's table lacks (repeatable)",
    )


def budget(args: argparse.Namespace) -> SpendBudget:
    return SpendBudget(
        args.budget_session_tokens,
        args.budget_day_tokens,
        args.budget_session_usd,
        args.budget_day_usd,
        tuple(args.price),
    )


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(value: str) -> int | float:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r}: not a number") from None
        if number <= 0:
            raise argparse.ArgumentTypeError(f"{value}: must be > 0")
        return number

    return parse


def _price(value: str) -> str:
    """`MODEL=IN/OUT[/CACHE_READ[/CACHE_WRITE]]`, numbers checked (the proxy parses it again)."""
    model, eq, numbers = value.rpartition("=")
    fields = numbers.split("/")
    try:
        ok = bool(eq and model.strip() and "," not in value and 2 <= len(fields) <= 4)
        ok = ok and all(float(f) >= 0 for f in fields)
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(
            f"{value!r}: want MODEL=IN/OUT (USD per million tokens), e.g. m=3/15"
        )
    return value.strip()
