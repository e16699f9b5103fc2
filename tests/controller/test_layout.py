"""The controller's layout: no module over 400 lines (one noun per module)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

CONTROLLER = Path(__file__).resolve().parents[2] / "controller" / "ccstack"
MAX_LINES = 400


def test_no_controller_module_over_400_lines() -> None:
    sizes = {
        p.relative_to(CONTROLLER): len(p.read_text(encoding="utf-8").splitlines())
        for p in CONTROLLER.rglob("*.py")
    }
    assert len(sizes) > 10
    assert {str(p): n for p, n in sizes.items() if n > MAX_LINES} == {}
