"""ccstack.verify: the pure verdicts (the self-check itself runs in tests/isolation/test_verify.py)."""

from __future__ import annotations

import pytest
from ccstack import verify

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("version", "resolvers", "ok"),
    [
        ("20.10.24+dfsg1", ["10.255.255.53"], True),
        ("20.10.24+dfsg1", ["127.0.0.1"], False),
        ("25.0.3", ["::1"], False),
        ("26.0.0", ["127.0.0.1"], True),
        ("28.2.2", [], True),
        ("", ["127.0.0.11"], False),
    ],
)
def test_engine_dns_verdict(version: str, resolvers: list[str], ok: bool) -> None:
    verdict, detail = verify.engine_dns_verdict(version, resolvers)
    assert verdict is ok
    assert ("upgrade Docker Engine" in detail) is not ok
