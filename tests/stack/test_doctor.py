"""`ccstack doctor` on a real stack (the test mode: proxy + scripted upstream): all ✓ when healthy, and
each broken setup found with its fix — a model that answers text instead of calling the tool, a stopped
backend, a port taken by another process, a missing model file."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from stack_helpers import Stack, http_json

pytestmark = pytest.mark.stack

TOOL_CALL = [{"tool_calls": [{"name": "read_file", "arguments": {"path": "notes.txt"}}]}]


def doctor(stack: Stack, *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    r = stack.ccstack("doctor", *args, "--json", check=False, timeout=900)
    report = json.loads(r.stdout)
    assert report["ok"] == (r.returncode == 0)
    return r.returncode, {c["name"]: c for c in report["checks"]}, r.stdout


def test_doctor_on_a_healthy_and_on_broken_stacks(stack: Stack, docker: Any) -> None:
    stack.ccstack("up", "test")
    fake = f"http://{stack.ip(docker, 'scripted-upstream', 'backend')}:8080"

    # Healthy: every row ✓, and the probe's call of read_file came back valid.
    http_json("POST", f"{fake}/_script", TOOL_CALL)
    code, rows, out = doctor(stack)
    assert code == 0, out
    assert {c["status"] for c in rows.values()} == {"ok"}, out
    assert rows["tool call"]["detail"].startswith('read_file({"path": "notes.txt"})')
    table = stack.ccstack("doctor", "--no-probe", check=False)  # the table as users see it
    print(table.stdout)
    assert "✓" in table.stdout
    assert "✗" not in table.stdout

    # A model that cannot call tools: it answers text.
    http_json("POST", f"{fake}/_script", [{"text": "I would read notes.txt for you."}])
    code, rows, out = doctor(stack)
    assert code == 1
    assert rows["tool call"]["status"] == "fail"
    assert "answered text" in rows["tool call"]["detail"]
    assert "tool-capable model" in rows["tool call"]["fix"]

    # Arguments that do not fit the tool's schema.
    bad_args = [{"tool_calls": [{"name": "read_file", "arguments": {"file": "notes.txt"}}]}]
    http_json("POST", f"{fake}/_script", bad_args)
    code, rows, out = doctor(stack)
    assert code == 1
    assert "arguments invalid" in rows["tool call"]["detail"]

    # A port taken by another process.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, rows, out = doctor(stack, "--publish", str(port), "--no-probe")
    assert code == 1
    assert rows[f"port {port}"]["status"] == "fail"
    assert "--publish OTHER" in rows[f"port {port}"]["fix"]

    # A missing model (the local mode's --model).
    code, rows, out = doctor(stack, "local", "--model", "/nonexistent/model.gguf", "--no-probe")
    assert code == 1
    assert rows["model file"]["status"] == "fail"
    assert "model file not found" in rows["model file"]["detail"]

    # A stopped backend.
    stack.container(docker, "scripted-upstream").stop(timeout=5)
    code, rows, out = doctor(stack)
    print(stack.ccstack("doctor", check=False).stdout)
    assert code == 1
    assert rows["service scripted-upstream"]["status"] == "fail"
    assert "exited" in rows["service scripted-upstream"]["detail"]
    assert rows["backend"]["status"] == "fail"
    assert rows["tool call"]["status"] == "skip"
