"""The status line in the real interactive CLI: `just up local` (llama-server with the default 0.5B model,
a session token budget, traces on), a tmux session runs `just claude DIR`, a prompt is sent, and
`capture-pane` shows the status line with the real figures of the session's last turn: the prompt
against llama-server's real window (n_ctx per slot), the share of it read from the cache, llama-server's
own generation speed, and the session's spend against its budget. Each number is checked against the
proxy's trace of that turn; the figures are readable from the session's own container only."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from harness.cli_stack import Tmux
from stack_helpers import REPO, Stack

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3600)]

BUDGET = 5_000_000
PROMPT = "Reply with one short sentence: what is 2 + 2?"
LINE = re.compile(
    r"ctx (?P<prompt>[\d,]+)/(?P<window>[\d,]+) \((?P<used>\d+)%\) \| cache (?P<cache>\d+)% \| "
    r"(?P<tps>[\d.]+) tok/s \| session (?P<spent>[\d.,]+[kM]?)/5\.0M tok"
)
STATUS_SCRIPT = "node /usr/local/lib/ccsandbox/status-line.js"


def just() -> str:
    found = REPO / ".venv" / "bin" / "just"
    path = str(found) if found.exists() else shutil.which("just")
    if path is None:
        pytest.fail("`just` is needed (pip install rust-just: the dev extra)")
    return path


def tokens(n: int) -> str:
    """status-line.js's token count format."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 10_000:
        return f"{int(n / 1e3 + 0.5)}k"
    return f"{n:,}"


def answered(traces: Path) -> list[dict[str, Any]]:
    """The proxy's traces of answered /v1/messages requests, oldest first."""
    out = []
    for path in traces.glob("*.json") if traces.is_dir() else ():
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("path") == "/v1/messages" and record.get("status") == 200:
            out.append(record)
    return sorted(out, key=lambda r: r["time"])


def is_main(record: dict[str, Any]) -> bool:
    """A main-conversation request (not a side request: max_tokens 1, haiku, title)."""
    body = record.get("request_body") or {}
    return body.get("max_tokens") != 1 and "haiku" not in str(body.get("model")) and body.get("tools") != []


def usage_of(record: dict[str, Any]) -> dict[str, int]:
    usage: dict[str, int] = {}
    for event in record.get("response_events") or ():
        if event.get("type") == "message_start":
            usage.update(event["message"].get("usage") or {})
        elif event.get("type") == "message_delta":
            usage.update(event.get("usage") or {})
    return usage


def prompt_of(usage: dict[str, int]) -> int:
    keys = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    return sum(int(usage.get(k) or 0) for k in keys)


def test_status_line_shows_the_sessions_real_figures(stack: Stack, docker: Any, tmp_path: Path) -> None:
    up = stack.ccstack(
        "up", "local", "--trace", "--budget-session-tokens", str(BUDGET), timeout=2400
    )  # the default model, prewarm on
    assert "prewarm" in up.stdout + up.stderr
    proxy = stack.container(docker, "proxy")
    health = proxy.exec_run(
        ["python", "-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8787/health').read().decode())"]
    )  # fmt: skip
    n_ctx = json.loads(health.output.decode())["backend"]["n_ctx"]
    assert n_ctx > 0

    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "README.md").write_text("# a project\n", encoding="utf-8")
    shutil.chown(workdir, 1000, 1000)
    shutil.chown(workdir / "README.md", 1000, 1000)
    env = {k: v for k, v in stack.env.items() if k.startswith(("CCSANDBOX_", "PATH", "HOME", "DOCKER"))}
    env |= {"CCSANDBOX_PROJECT": stack.project, "TERM": "xterm-256color"}
    tmux = Tmux(f"ccsbx-status-{stack.project}", [just(), "claude", str(workdir)], env)
    traces = stack.state_dir / "traces"
    screen = ""
    try:
        ready = tmux.wait_for(lambda s: "\u276f" in s or "? for shortcuts" in s, timeout=300)
        assert ready is not None, tmux.screen()
        time.sleep(1.0)
        tmux.type(PROMPT)
        time.sleep(0.5)
        tmux.send("Enter")
        # The line on screen once it shows the session's latest answered turn (refreshed every 5 s).
        deadline = time.monotonic() + 1800
        match, turns = None, []
        while time.monotonic() < deadline:
            screen = tmux.screen()
            match = LINE.search(screen)
            turns = [t for t in answered(traces) if is_main(t)]
            idle = "esc to interrupt" not in screen
            if (
                match
                and turns
                and idle
                and int(match["prompt"].replace(",", "")) == prompt_of(usage_of(turns[-1]))
            ):
                break
            time.sleep(2)
        assert match is not None, f"no status line with figures on screen:\n{screen}"
        assert turns, "no answered turn traced"
        print(f"status line: {match.group(0)}")

        last = turns[-1]
        usage = usage_of(last)
        prompt = prompt_of(usage)
        assert int(match["prompt"].replace(",", "")) == prompt
        assert int(match["window"].replace(",", "")) == n_ctx  # llama-server's real window per slot
        assert int(match["used"]) == pytest.approx(100 * prompt / n_ctx, abs=0.51)
        cached = int(usage.get("cache_read_input_tokens") or 0)
        assert int(match["cache"]) == pytest.approx(100 * cached / prompt, abs=0.51)
        rate = float(last["upstream_timings"]["predicted_per_second"])
        assert float(match["tps"]) == pytest.approx(rate, abs=0.051)  # llama-server's own figure
        session = last["request_headers"]["x-claude-code-session-id"]
        calls = [
            usage_of(t)
            for t in answered(traces)
            if t["request_headers"].get("x-claude-code-session-id") == session and t["time"] <= last["time"]
        ]
        spent = sum(prompt_of(u) + int(u.get("output_tokens") or 0) for u in calls)
        assert match["spent"] == tokens(spent), (match["spent"], spent)
        assert prompt > 1000  # Claude Code's real prompt
        assert cached > 0.5 * prompt  # the prewarmed prefix served the session from the cache

        # The same line from the session's own container; nothing of it from another sandbox.
        stdin = json.dumps({"session_id": session}).replace("'", "")
        read = f"printf '%s' '{stdin}' | ANTHROPIC_AUTH_TOKEN=$(cat /run/secrets/proxy_token) {STATUS_SCRIPT}"
        agents = docker.containers.list(
            filters={
                "label": [f"com.docker.compose.project={stack.project}", "com.docker.compose.oneoff=True"]
            }
        )
        assert len(agents) == 1, [a.name for a in agents]
        own = agents[0].exec_run(["sh", "-c", read]).output.decode().strip()
        assert LINE.search(own), own
        other = stack.compose(workdir).run("claude-sandbox", "sh", "-c", read, options=("--rm", "-T"))
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip().startswith(f"ctx -/{n_ctx:,} | no turn yet | session 0/5.0M tok"), (
            other.stdout
        )
    finally:
        (tmp_path / "screen.txt").write_text(screen or tmux.screen(), encoding="utf-8")
        tmux.send("C-c")
        tmux.send("C-c")
        time.sleep(1)
        tmux.close()
