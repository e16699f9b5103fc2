"""The proxy's layout: no module over 400 lines (small modules named for what they are)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PROXY = Path(__file__).resolve().parents[2] / "proxy" / "src" / "ccproxy"
MAX_LINES = 400


def test_no_proxy_module_over_400_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in PROXY.rglob("*.py")}
    assert len(sizes) > 20
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
