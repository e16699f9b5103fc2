"""The agent's kernel: the stack runs the agent under the runtime it asked for (runc, or gVisor's runsc,
whose user-space kernel answers the agent's syscalls: ``uname -r`` differs from the host's), and
Claude Code itself starts under it."""

from __future__ import annotations

import pytest
from ccstack import gvisor_probes, probes

pytestmark = pytest.mark.isolation


def test_agent_runs_under_the_requested_runtime(iso, record) -> None:
    r = gvisor_probes.probe_runtime(iso.sandbox, iso.runtime)
    record(r)
    assert r.passed, r.detail


def test_claude_code_starts_under_the_runtime(iso) -> None:
    r = probes.exec_op(iso.sandbox.agent, {"op": "run", "argv": ["claude", "--version"], "timeout_ms": 60000})
    assert r.get("status") == 0, r
    assert "Claude Code" in r.get("stdout", ""), r
