"""ccstack.probes.results: verdicts, rows, the table, nonces."""

from __future__ import annotations

import pytest
from ccstack.probes import results

pytestmark = pytest.mark.unit


def test_a_failed_control_fails_the_probe() -> None:
    assert results.verdict("p", "network", True, "d", control=True).passed
    assert results.verdict("p", "network", True, "d").passed
    assert not results.verdict("p", "network", True, "d", control=False).passed
    assert not results.verdict("p", "network", False, "d", control=True).passed


def test_row_and_table() -> None:
    rows = [
        results.ProbeResult("tcp", "network", True, "refused", control=True),
        results.ProbeResult("mounts", "files", False, "x" * 300),
    ]
    assert rows[0].row() == ("network", "tcp", "pass", "reached", "refused")
    assert rows[1].row()[2:4] == ("FAIL", "-")
    table = results.format_table(rows, width=50)
    lines = table.splitlines()
    assert lines[0].split() == ["area", "probe", "result", "control", "detail"]
    assert lines[-1] == "1/2 probes passed"
    assert lines[2].endswith("...")
    assert len(lines[2].split("  ")[-1]) <= 50


def test_nonces_are_fresh() -> None:
    nonces = {results.new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(n.startswith("n") and len(n) == 17 for n in nonces)
