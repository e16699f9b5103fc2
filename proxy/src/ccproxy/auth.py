"""The proxy token (pure): a client offers it as ``Authorization: Bearer <token>`` or ``x-api-key: <token>``
(Claude Code sends the first with ANTHROPIC_AUTH_TOKEN, the second with ANTHROPIC_API_KEY); compared in
constant time."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from ccproxy.errors import AuthenticationError


def check_token(headers: Mapping[str, str], token: str | None) -> None:
    """Raises AuthenticationError unless ``headers`` offer ``token`` (no token configured: anyone)."""
    if not token:
        return
    offered: list[str] = []
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        offered.append(value.strip())
    api_key = headers.get("x-api-key")
    if api_key:
        offered.append(api_key.strip())
    expected = token.encode()
    if not any(hmac.compare_digest(o.encode(), expected) for o in offered):
        what = "invalid" if offered else "missing"
        raise AuthenticationError(
            f"{what} proxy token: send the token configured for ccproxy as "
            "'Authorization: Bearer <token>' or 'x-api-key: <token>'"
        )
