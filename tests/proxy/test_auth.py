"""ccproxy.auth: the proxy token as a bearer token or an x-api-key, nothing else."""

from __future__ import annotations

import pytest
from ccproxy.auth import check_token
from ccproxy.errors import AuthenticationError

pytestmark = pytest.mark.unit

TOKEN = "tok-3f9a"


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {TOKEN}"},
        {"authorization": f"bearer  {TOKEN} "},
        {"x-api-key": TOKEN},
        {"authorization": "Bearer wrong", "x-api-key": TOKEN},  # either offer may hold it
    ],
)
def test_the_token_is_accepted_where_claude_code_sends_it(headers: dict[str, str]) -> None:
    check_token(headers, TOKEN)


@pytest.mark.parametrize(
    ("headers", "what"),
    [
        ({}, "missing"),
        ({"authorization": TOKEN}, "missing"),  # no scheme: not a bearer token
        ({"authorization": f"Basic {TOKEN}"}, "missing"),
        ({"authorization": "Bearer tok-3f9"}, "invalid"),
        ({"x-api-key": TOKEN + "x"}, "invalid"),
    ],
)
def test_anything_else_is_refused_and_says_how(headers: dict[str, str], what: str) -> None:
    with pytest.raises(AuthenticationError, match=f"{what} proxy token: send the token"):
        check_token(headers, TOKEN)


def test_without_a_configured_token_anyone_passes() -> None:
    check_token({}, None)
    check_token({}, "")
