"""`ccstack up test --trace`: the proxy container writes its traces into the state directory as the
invoking user; `ccstack trace` reads them there, and `ccstack replay --to test` sends them again to the
stack's scripted upstream through a ccproxy of its own."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from stack_helpers import AGENT_GID, AGENT_UID, REPO, Stack, http_json

pytestmark = pytest.mark.stack

TINY = REPO / "tests" / "fixtures" / "traces" / "tiny" / "01-turn1.json"


def test_stack_traces_read_and_replayed(stack: Stack, docker: Any, tmp_path: Path) -> None:
    stack.ccstack("up", "test", "--trace")
    fake = f"http://{stack.ip(docker, 'scripted-upstream', 'backend')}:8080"
    call = {"name": "Write", "arguments": {"file_path": "/workspace/hello.txt", "content": "hi"}}
    http_json("POST", f"{fake}/_script", [{"tool_calls": [call]}])
    proxy = f"http://{stack.ip(docker, 'proxy', 'backend')}:8787"
    body = {**json.loads(TINY.read_text())["body"], "stream": False}
    headers = {"authorization": f"Bearer {stack.token}", "x-claude-code-session-id": "session-1"}
    answer = http_json("POST", f"{proxy}/v1/messages", body, headers)
    assert answer["stop_reason"] == "tool_use"

    files = sorted((stack.state_dir / "traces").glob("*.json"))
    assert len(files) == 1
    info = files[0].stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (AGENT_UID, AGENT_GID, 0o600)
    assert stack.token not in files[0].read_text()

    rows = json.loads(stack.ccstack("trace", "list", "--json").stdout)  # default: <state>/traces
    assert [(r["session"], r["status"], r["tools"]) for r in rows] == [("session-1", 200, 1)]
    request_id = files[0].stem.split("-", 1)[1]  # by id, in the default trace directory
    analysis = json.loads(stack.ccstack("trace", "analyze", request_id, "--backend", "none", "--json").stdout)
    assert analysis["tool_calls"] == [{"name": "Write", "valid": True, "problem": None}]

    out = tmp_path / "replay"
    http_json("POST", f"{fake}/_script", [{"tool_calls": [call]}])
    results = json.loads(
        stack.ccstack("replay", str(files[0]), "--to", "test", "--out", str(out), "--json").stdout
    )
    assert [(r["target"], r["status"]) for r in results] == [("test", 200)]
    assert results[0]["tool_calls"] == [{"name": "Write", "valid": True, "problem": None}]
    assert (out / "replay.png").exists()
