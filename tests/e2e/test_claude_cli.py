"""The real Claude Code CLI, in a loopback-only network namespace, drives `ccproxy` (the installed
console script) over the scripted OpenAI upstream, which asks it to use its Write tool.

Needs: the CLI from scripts/install-claude-cli.sh, `unshare` and `ip` (util-linux, iproute2), root (or
unprivileged user namespaces). Missing prerequisites fail the test; they never skip it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CLAUDE = REPO / ".tools" / "claude-code" / "node_modules" / ".bin" / "claude"
DRIVER = Path(__file__).with_name("netns_driver.py")
MODEL_SETTINGS = REPO / "claude-sandbox" / "model-settings.js"
UNRECOGNIZED = "unrecognized_model"
CCPROXY = Path(sys.executable).with_name("ccproxy")

CLIENT_TOKEN = "client-token-e2e-5f1c"
UPSTREAM_KEY = "upstream-key-e2e-9a7b"
CONTENT = "hello from the scripted upstream\nsecond line\n"


def require_prerequisites() -> None:
    missing = []
    if not CLAUDE.exists():
        missing.append(f"Claude Code CLI at {CLAUDE} (run scripts/install-claude-cli.sh)")
    if not CCPROXY.exists():
        missing.append(f"ccproxy console script at {CCPROXY} (pip install -e proxy)")
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            missing.append(f"`{tool}` on PATH (util-linux / iproute2)")
    if missing:
        pytest.fail("e2e prerequisites missing: " + "; ".join(missing))
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(
            f"`unshare -n` does not work here (needs root or user namespaces): {probe.stderr.strip()}"
        )


def run_in_netns(
    tmp_path: Path,
    script: list[dict[str, Any]],
    prompt: str,
    claude_env: dict[str, str] | None = None,
    claude_args: list[str] | None = None,
    proxy_args: list[str] | None = None,
) -> dict[str, Any]:
    workdir = tmp_path / "work"
    home = tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    (tmp_path / "script.json").write_text(json.dumps(script))
    key_file = tmp_path / "upstream.key"
    key_file.write_text(UPSTREAM_KEY + "\n")
    spec = {
        "ccproxy": str(CCPROXY),
        "claude": str(CLAUDE),
        "script": str(tmp_path / "script.json"),
        "workdir": str(workdir),
        "home": str(home),
        "prompt": prompt,
        "token": CLIENT_TOKEN,
        "upstream_key_file": str(key_file),
        "result": str(tmp_path / "result.json"),
        "claude_timeout": 240,
        "extra_proxy_args": ["--trace-dir", str(tmp_path / "traces"), *(proxy_args or [])],
        "claude_env": claude_env or {},
        "claude_args": claude_args or [],
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    run = subprocess.run(
        ["unshare", "-n", sys.executable, str(DRIVER), str(tmp_path / "spec.json")],
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert run.returncode == 0, f"netns driver failed:\n{run.stdout}\n{run.stderr}"
    result: dict[str, Any] = json.loads((tmp_path / "result.json").read_text())
    return result


def main_requests(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Upstream chat requests that carry tools (the agent's turns, not side requests)."""
    return [
        r
        for r in result["upstream_requests"]
        if r["path"].startswith("/v1/chat/completions")
        and isinstance(r["body"], dict)
        and r["body"].get("tools")
    ]


def test_claude_writes_a_file_through_ccproxy(tmp_path: Path) -> None:
    require_prerequisites()
    target = tmp_path / "work" / "hello.txt"
    script: list[dict[str, Any]] = [
        {
            "tool_calls": [{"name": "Write", "arguments": {"file_path": str(target), "content": CONTENT}}],
            "chunks": 7,
        },
        {"text": "Done: I wrote hello.txt."},
    ]
    result = run_in_netns(tmp_path, script, "Create hello.txt with a greeting.")
    diagnostics = (
        f"claude rc={result.get('returncode')} in {result.get('claude_seconds')} s\n"
        f"stderr:\n{result.get('stderr', '')[-3000:]}\nstdout tail:\n{result.get('stdout', '')[-3000:]}\n"
        f"proxy log:\n{result.get('proxy_log', '')[-3000:]}"
    )
    assert result.get("returncode") == 0, diagnostics

    # The CLI executed the Write tool in its working directory.
    assert target.read_text() == CONTENT, diagnostics

    # The final result line of the CLI reports a finished turn with our scripted text.
    events = [json.loads(line) for line in result["stdout"].splitlines() if line.startswith("{")]
    final = [e for e in events if e.get("type") == "result"]
    assert final, diagnostics
    assert final[-1].get("is_error") is False, diagnostics
    assert "Done: I wrote hello.txt." in final[-1].get("result", ""), diagnostics

    # Upstream saw exactly two agent turns; the second carries the tool result as role: tool.
    turns = main_requests(result)
    assert len(turns) == 2, [r["body"].get("messages", [])[-1:] for r in turns]
    first, second = turns[0]["body"], turns[1]["body"]
    assert first["stream"] is True
    assert "Write" in {t["function"]["name"] for t in first["tools"]}
    assistant = second["messages"][-2]
    tool_message = second["messages"][-1]
    assert assistant["role"] == "assistant"
    call = assistant["tool_calls"][0]
    assert call["function"]["name"] == "Write"
    assert json.loads(call["function"]["arguments"]) == {"file_path": str(target), "content": CONTENT}
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == call["id"]
    assert "hello.txt" in tool_message["content"]
    # The translated conversation is prefix-stable: turn 2 starts with turn 1's messages.
    assert second["messages"][: len(first["messages"])] == first["messages"]
    # Claude Code sends its per-conversation billing header; it never reaches a non-Anthropic upstream.
    traces = sorted((tmp_path / "traces").glob("*.json"))
    inbound = [json.loads(p.read_text()) for p in traces]
    assert any(
        isinstance(t["request_body"].get("system"), list)
        and t["request_body"]["system"][0]["text"].startswith("x-anthropic-billing-header:")
        for t in inbound
    ), "the CLI no longer sends the billing header: this check needs a new trigger"
    for request in turns:
        assert "x-anthropic-billing-header" not in json.dumps(request["body"])

    # Traces: directory 0700, files 0600, no secrets inside.
    assert (tmp_path / "traces").stat().st_mode & 0o777 == 0o700
    for path in traces:
        assert path.stat().st_mode & 0o777 == 0o600
        text = path.read_text()
        assert CLIENT_TOKEN not in text
        assert UPSTREAM_KEY not in text

    # Keys: the client token is never forwarded; the upstream key from the file is injected.
    for request in result["upstream_requests"]:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"
        assert CLIENT_TOKEN not in json.dumps(request)

    # The proxy counted both streamed turns.
    assert 'ccproxy_requests_total{endpoint="messages"' in result["proxy_metrics"]


MODEL_ENV = {  # what controller/ccstack/render.py gives the sandbox for `--model qwen2.5-coder-0.5b`
    "ANTHROPIC_MODEL": "qwen2.5-coder-0.5b",
    "ANTHROPIC_DEFAULT_OPUS_MODEL": "qwen2.5-coder-0.5b",
    "ANTHROPIC_DEFAULT_SONNET_MODEL": "qwen2.5-coder-0.5b",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL": "qwen2.5-coder-0.5b",
    "ANTHROPIC_SMALL_FAST_MODEL": "qwen2.5-coder-0.5b",
    "CLAUDE_CODE_SUBAGENT_MODEL": "qwen2.5-coder-0.5b",
}


def sandbox_model_settings(env: dict[str, str]) -> str:
    """The `--settings` JSON claude-sandbox/entrypoint.sh passes to the CLI for these names."""
    if shutil.which("node") is None:
        pytest.fail("`node` on PATH is needed to run claude-sandbox/model-settings.js")
    run = subprocess.run(
        ["node", str(MODEL_SETTINGS)], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("sandbox_settings", [True, False], ids=["sandbox-settings", "control-without"])
def test_a_local_model_name_gets_no_unrecognized_model_warning(
    tmp_path: Path, sandbox_settings: bool
) -> None:
    """With the settings the sandbox's entrypoint adds, the CLI accepts the stack's model name silently;
    without them (the control) it prints `[claude-code:unrecognized_model]` to the user."""
    require_prerequisites()
    settings = sandbox_model_settings(MODEL_ENV)
    assert json.loads(settings)["modelPicker"]["options"][0]["model"] == "qwen2.5-coder-0.5b"
    args = ["--settings", settings] if sandbox_settings else []
    result = run_in_netns(
        tmp_path, [{"text": "Hello."}], "Say hello.", claude_env=MODEL_ENV, claude_args=args
    )
    output = result.get("stdout", "") + result.get("stderr", "")
    assert result.get("returncode") == 0, output[-3000:]
    assert (UNRECOGNIZED in output) is not sandbox_settings, output[-3000:]
    # either way the model name reaches the proxy unchanged, and the system prompt names the real model
    turns = main_requests(result)
    assert turns
    assert all(r["body"]["model"] == "qwen2.5-coder-0.5b" for r in turns)
    assert "You are powered by the model qwen2.5-coder-0.5b." in turns[0]["body"]["messages"][0]["content"]


@pytest.mark.parametrize("disabled", [True, False], ids=["local-mode", "control-default"])
def test_the_local_modes_env_takes_background_runs_out_of_the_bash_tool(
    tmp_path: Path, disabled: bool
) -> None:
    """The local mode's CLAUDE_CODE_DISABLE_BACKGROUND_TASKS=1 (ccstack.render) removes Bash's
    `run_in_background` from what the model sees: a small model that sets it gets a notification-driven
    loop instead of an answer. The control without it shows the parameter is there by default."""
    require_prerequisites()
    env = {"CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1"} if disabled else {}
    result = run_in_netns(tmp_path, [{"text": "Hello."}], "Say hello.", claude_env=env)
    assert result.get("returncode") == 0, (result.get("stdout", "") + result.get("stderr", ""))[-3000:]
    turns = main_requests(result)
    assert turns
    bash = [t["function"] for t in turns[0]["body"]["tools"] if t["function"]["name"] == "Bash"]
    assert bash, [t["function"]["name"] for t in turns[0]["body"]["tools"]]
    assert ("run_in_background" in bash[0]["parameters"]["properties"]) is not disabled


SILENT_TURN_REMINDER = "The user hasn't heard from you in a while."


@pytest.mark.parametrize("disabled", [True, False], ids=["local-mode", "control-default"])
def test_the_local_modes_env_keeps_the_silent_turn_reminder_out_of_the_prompt(
    tmp_path: Path, disabled: bool
) -> None:
    """After 5 tool turns without text Claude Code adds "The user hasn't heard from you in a while…" to
    the next request; a small model echoes it through Bash (bench/tasks). The local mode's
    CLAUDE_CODE_SILENT_TURN_REMINDER=0 (ccstack.render) keeps it out; the control shows it comes."""
    require_prerequisites()
    quiet = {"name": "Bash", "arguments": {"command": "true", "description": "Do nothing"}}
    script = [{"tool_calls": [quiet]}] * 7 + [{"text": "Done."}]
    env = {"CLAUDE_CODE_SILENT_TURN_REMINDER": "0"} if disabled else {}
    result = run_in_netns(tmp_path, script, "Run `true` seven times.", claude_env=env)
    assert result.get("returncode") == 0, (result.get("stdout", "") + result.get("stderr", ""))[-3000:]
    turns = main_requests(result)
    assert len(turns) == 8, len(turns)
    reminded = [
        i for i, t in enumerate(turns) if SILENT_TURN_REMINDER in json.dumps(t["body"], ensure_ascii=False)
    ]
    if disabled:
        assert reminded == []
    else:
        assert reminded, "the control never got the reminder: the test no longer shows anything"


def test_the_repeat_guard_ends_a_turn_stuck_on_one_failing_call(tmp_path: Path) -> None:
    """The 0.5B model's loop, scripted: the same Edit of a file that does not exist, again and again.
    With `--repeat-limit 3` (the stack's local modes) the proxy asks the upstream three times, then ends
    the turn itself with its notice; the real CLI shows it as the answer and exits normally."""
    require_prerequisites()
    edit = {
        "name": "Edit",
        "arguments": {"file_path": "/nonexistent/cal.py", "old_string": "a - b", "new_string": "a + b"},
    }
    script = [{"tool_calls": [edit]}] * 6 + [{"text": "Done."}]
    result = run_in_netns(
        tmp_path,
        script,
        "Fix the bug in calc.py.",
        claude_args=["--max-turns", "8"],
        proxy_args=["--repeat-limit", "3"],
    )
    output = (result.get("stdout", "") + result.get("stderr", ""))[-3000:]
    assert result.get("returncode") == 0, output
    turns = main_requests(result)
    assert len(turns) == 3, len(turns)  # the 4th request was answered by the proxy
    events = [json.loads(line) for line in result["stdout"].splitlines() if line.startswith("{")]
    final = [e for e in events if e.get("type") == "result"]
    assert final, output
    answer = final[-1].get("result", "")
    assert answer.startswith("[ccproxy] Stopped: the model called Edit with the same arguments 3 times"), (
        answer
    )
    assert final[-1].get("is_error") is False, final[-1]


@pytest.mark.parametrize("disabled", [True, False], ids=["local-mode", "control-default"])
def test_the_local_modes_env_turns_auto_memory_off(tmp_path: Path, disabled: bool) -> None:
    """Claude Code's auto memory keeps a memory directory per project path and loads it into every later
    session; in the sandbox every workdir is /workspace, so all share one, and a small model writes its
    mistakes there (bench/tasks). The local mode's CLAUDE_CODE_DISABLE_AUTO_MEMORY=1 (ccstack.render)
    takes the memory instructions out of the prompt; the control shows they come by default."""
    require_prerequisites()
    env = {"CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1"} if disabled else {}
    result = run_in_netns(tmp_path, [{"text": "Hello."}], "Say hello.", claude_env=env)
    assert result.get("returncode") == 0, (result.get("stdout", "") + result.get("stderr", ""))[-3000:]
    turns = main_requests(result)
    assert turns
    prompt = json.dumps(turns[0]["body"], ensure_ascii=False)
    assert ("persistent file-based memory" in prompt) is not disabled
