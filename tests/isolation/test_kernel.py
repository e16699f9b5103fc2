"""The agent's kernel: the stack runs the agent under the runtime it asked for (runc, or gVisor's runsc,
whose user-space kernel answers the agent's syscalls: ``uname -r`` differs from the host's), and
Claude Code itself starts and uses its tools under it."""

from __future__ import annotations

import json
import urllib.request

import pytest
from ccstack import gvisor_probes, probes
from ccstack.compose import run_compose

pytestmark = pytest.mark.isolation


def test_agent_runs_under_the_requested_runtime(iso, record) -> None:
    r = gvisor_probes.probe_runtime(iso.sandbox, iso.runtime)
    record(r)
    assert r.passed, r.detail


def test_claude_code_starts_under_the_runtime(iso) -> None:
    r = probes.exec_op(iso.sandbox.agent, {"op": "run", "argv": ["claude", "--version"], "timeout_ms": 60000})
    assert r.get("status") == 0, r
    assert "Claude Code" in r.get("stdout", ""), r


def test_claude_code_uses_its_tools_under_the_runtime(iso) -> None:
    """The real CLI, started the plain `docker compose run` way, writes a file through its Write tool
    (scripted by the fake OpenRouter): the agent works under this runtime, and the file is the user's."""
    name = f"written-under-{iso.runtime}-{probes.new_nonce()}.txt"
    content = f"the agent ran under {iso.runtime}"
    turns = [
        {
            "tool_calls": [
                {"name": "Write", "arguments": {"file_path": f"/workspace/{name}", "content": content}}
            ]
        },
        {"text": "Done."},
    ]
    upstream_ip = probes.container_networks(iso.upstream)["ccsandbox-iso_backend"]["IPAddress"]
    request = urllib.request.Request(
        f"http://{upstream_ip}:8080/_script",
        data=json.dumps(turns).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert json.load(resp) == {"loaded": True}
    args = ["run", "--rm", "-T", "claude-sandbox", "claude", "-p", "Write the file."]
    r = run_compose(
        iso.paths,
        iso.state,
        [*args, "--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose"],
        capture=True,
        env={"CCSANDBOX_WORKDIR": str(iso.workdir)},
        check=False,
    )
    written = iso.workdir / name
    assert r.returncode == 0, r.stderr[-2000:]
    assert written.read_text(encoding="utf-8") == content, r.stdout[-2000:]
    assert written.stat().st_uid == iso.sandbox.expected_uid
    written.unlink()
