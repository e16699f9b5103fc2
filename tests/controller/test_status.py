"""ccstack.status: what `ccstack status` prints, and when the stack counts as healthy (no Docker)."""

from __future__ import annotations

import pytest
from ccstack.status import Status, format_status

pytestmark = pytest.mark.unit


def test_status_output() -> None:
    st = Status(
        mode="mlx",
        project="ccsandbox",
        model=None,
        runtime="runc (Docker's default)",
        services="SERVICE              STATE      HEALTH",
        urls={"in the stack (the agent)": "http://proxy:8787", "on this host": "http://127.0.0.1:9000"},
        health=(503, '{"status": "upstream unreachable"}'),
        hint="start the server on the host: backends/mlx/run-mlx-server.sh (`just mlx-server`)",
    )
    assert format_status(st).splitlines() == [
        "mode: mlx   project: ccsandbox   model: -",
        "agent runtime: runc (Docker's default)",
        "SERVICE              STATE      HEALTH",
        "proxy:",
        "  http://proxy:8787                in the stack (the agent)",
        "  http://127.0.0.1:9000            on this host",
        'upstream: NOT reachable (proxy /health: 503 {"status": "upstream unreachable"})',
        "  start the server on the host: backends/mlx/run-mlx-server.sh (`just mlx-server`)",
        "agent: `ccstack claude [DIR]` or `docker compose run --rm claude-sandbox` (CCSANDBOX_WORKDIR=DIR)",
    ]
    healthy = Status(**{**st.__dict__, "health": (200, "{}")})
    assert "upstream: reachable (proxy /health: 200 {})" in format_status(healthy)
    assert st.hint not in format_status(healthy)
    prefill = (
        "slot 0 prefill: 2048 tokens processed (0 cached)",
        "slot 1 idle",
        "proxy: req_1 prefill 2048/8056",
    )
    lines = format_status(Status(**{**healthy.__dict__, "backend": prefill})).splitlines()
    assert lines[-4:-1] == [
        "backend: slot 0 prefill: 2048 tokens processed (0 cached)",
        "         slot 1 idle",
        "         proxy: req_1 prefill 2048/8056",
    ]


def test_status_health() -> None:
    base = Status("local", "p", "m", "runc", "", {"in the stack (the agent)": "http://proxy:8787"})
    assert not base.healthy  # no URL on this host: nothing asked
    assert Status(**{**base.__dict__, "health": (200, "{}")}).healthy
    assert not Status(**{**base.__dict__, "health": (503, "{}")}).healthy
