"""ccstack.probes.privileges: the /proc status parser (the probes run in tests/isolation)."""

from __future__ import annotations

import pytest
from ccstack.probes import privileges

pytestmark = pytest.mark.unit


def test_status_fields() -> None:
    text = (
        "Name:\tnode\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nUid:\t1000\t1000\t1000\t1000\n"
    )
    f = privileges.status_fields(text)
    assert f["CapEff"] == "0000000000000000"
    assert f["NoNewPrivs"] == "1"
    assert f["Uid"].split() == ["1000"] * 4
