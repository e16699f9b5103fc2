"""The real Claude Code CLI inside the claude-sandbox container, started the way a user starts it
(`ccstack claude DIR`, and plain `docker compose run --rm claude-sandbox`), completes a tool-using task
through the proxy container against the scripted upstream (mode `test`)."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from stack_helpers import AGENT_GID, AGENT_UID, CLAUDE_P, Stack, http_json, write_tool_script

pytestmark = pytest.mark.stack


def script_upstream(stack: Stack, docker: Any, turns: list[dict[str, Any]]) -> str:
    url = f"http://{stack.ip(docker, 'scripted-upstream', 'backend')}:8080"
    assert http_json("POST", f"{url}/_script", turns) == {"loaded": True}
    http_json("DELETE", f"{url}/_requests")
    return url


def main_requests(url: str) -> list[dict[str, Any]]:
    log = http_json("GET", f"{url}/_requests")
    return [r for r in log if r.get("path", "").startswith("/v1/chat/completions") and r["body"].get("tools")]


def result_event(stdout: str) -> dict[str, Any]:
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    results = [e for e in events if e.get("type") == "result"]
    assert results, f"no result event in the CLI output:\n{stdout[-3000:]}"
    result: dict[str, Any] = results[-1]
    return result


def test_claude_writes_a_file_into_the_workdir_as_the_user(stack: Stack, docker: Any, workdir: Path) -> None:
    stack.ccstack("up", "test")
    content = f"written by the sandboxed agent {secrets.token_hex(8)}\n"
    url = script_upstream(stack, docker, write_tool_script("/workspace/notes/result.txt", content))

    r = stack.ccstack("claude", str(workdir), "--", "-p", "Write the result file.", *CLAUDE_P, check=False)
    assert r.returncode == 0, f"claude in the sandbox failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    result = result_event(r.stdout)
    assert result["subtype"] == "success"
    assert result["is_error"] is False
    # the stack's model name ("scripted") is one Claude Code accepts silently (entrypoint.sh's --settings)
    assert "unrecognized_model" not in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]

    written = workdir / "notes" / "result.txt"
    assert written.read_text(encoding="utf-8") == content
    st = written.stat()
    assert (st.st_uid, st.st_gid) == (AGENT_UID, AGENT_GID)
    assert (workdir / "notes").stat().st_uid == AGENT_UID
    # The placeholders created for the read-only mounts (.git/config, CLAUDE.md, .vscode/, ...) are
    # gone again: the workdir holds what the agent wrote and nothing else.
    assert sorted(p.name for p in workdir.iterdir()) == ["notes"]

    reqs = main_requests(url)
    assert len(reqs) == 2, [r["body"].get("messages", [])[-1:] for r in reqs]
    last = reqs[1]["body"]["messages"]
    tool_msgs = [m for m in last if m.get("role") == "tool"]
    assert tool_msgs, "the second turn carries the Write tool result"
    assert "/workspace/notes/result.txt" in json.dumps(tool_msgs[-1])


def test_git_status_in_the_sandbox_lists_the_agents_files_not_the_sessions_placeholders(
    stack: Stack, docker: Any, workdir: Path
) -> None:
    """`ccstack claude` creates empty placeholders (CLAUDE.md, .mcp.json, .bashrc, ...) for its read-only
    mounts; the image's git config names the session's list of them as excludes file, so what the agent
    (and Claude Code's git-status snapshot) sees is the repository as the user left it."""
    stack.ccstack("up", "test")
    git = ["git", "-C", str(workdir), "-c", "safe.directory=*", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(workdir)], check=True)
    (workdir / "app.py").write_text("print('hi')\n")
    subprocess.run([*git, "add", "app.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    subprocess.run(["chown", "-R", f"{AGENT_UID}:{AGENT_GID}", str(workdir)], check=True)
    command = "touch mine.txt && git status --porcelain --untracked-files=all && ls -A && echo END"
    url = script_upstream(
        stack,
        docker,
        [
            {"tool_calls": [{"name": "Bash", "arguments": {"command": command}}]},
            {"text": "Done."},
        ],
    )
    r = stack.ccstack("claude", str(workdir), "--", "-p", "Show git status.", *CLAUDE_P, check=False)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    reqs = main_requests(url)
    assert len(reqs) == 2
    content = [m for m in reqs[1]["body"]["messages"] if m.get("role") == "tool"][-1]["content"]
    text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
    listing = text.splitlines()
    assert "END" in listing, text
    assert ".mcp.json" in listing, text  # the placeholders are there ...
    assert "CLAUDE.md" in listing, text
    assert [line for line in listing if line.startswith("??")] == ["?? mine.txt"], text  # ... git hides them


def test_plain_docker_compose_run_works_with_the_workdir_from_an_env_var(
    stack: Stack, docker: Any, workdir: Path
) -> None:
    stack.ccstack("up", "test")
    content = f"plain compose run {secrets.token_hex(8)}\n"
    script_upstream(stack, docker, write_tool_script("/workspace/plain.txt", content))
    r = stack.compose(workdir).run("claude-sandbox", "claude", "-p", "Write plain.txt.", *CLAUDE_P)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert result_event(r.stdout)["subtype"] == "success"
    assert (workdir / "plain.txt").read_text(encoding="utf-8") == content
    assert (workdir / "plain.txt").stat().st_uid == AGENT_UID


def test_the_sandbox_is_preconfigured_and_hardened(stack: Stack, docker: Any, workdir: Path) -> None:
    stack.ccstack("up", "test")
    probe = (
        "id -u; id -g; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; "
        "cat /proc/sys/net/ipv6/conf/all/disable_ipv6; "
        'node -e \'const c=require(process.env.CLAUDE_CONFIG_DIR+"/.claude.json");'
        'console.log(c.hasCompletedOnboarding, c.projects["/workspace"].hasTrustDialogAccepted)\'; '
        'test -n "$ANTHROPIC_AUTH_TOKEN" && echo token-set; echo "$ANTHROPIC_BASE_URL"; '
        "touch /usr/x 2>/dev/null || echo rootfs-ro; "
        "touch /workspace/.mcp.json 2>/dev/null || echo mcp-ro; "
        "touch /workspace/.git/hooks/x 2>/dev/null || echo hooks-ro; "
        "cat /etc/claude-code/managed-settings.json >/dev/null && echo managed; "
        "test -S /var/run/docker.sock || echo no-docker-sock; "
        'echo "suid=$(find / -xdev -type f -perm /6000 2>/dev/null | wc -l)"'
    )
    r = stack.compose(workdir).run("claude-sandbox", "bash", "-c", probe, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[:2] == [str(AGENT_UID), str(AGENT_GID)]
    out = r.stdout
    assert "CapEff:\t0000000000000000" in out
    assert "NoNewPrivs:\t1" in out
    for word in ("true true", "token-set", "http://proxy:8787", "rootfs-ro", "mcp-ro", "hooks-ro", "managed"):
        assert word in out, (word, out)
    assert "no-docker-sock" in out
    assert "suid=0" in out  # no setuid/setgid binaries in the image
    assert out.splitlines()[4] == "1"  # IPv6 disabled
    assert stack.token not in out  # only its presence was printed


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_a_session_whose_terminal_closes_removes_the_agent_then_audits(
    stack: Stack, docker: Any, workdir: Path, signum: int
) -> None:
    """The terminal closes (SIGHUP) or `kill` (SIGTERM) arrives while the model is still answering: the
    agent's container is removed before the audit, and the session ends as a normal one would."""
    stack.ccstack("up", "test")
    url = script_upstream(stack, docker, [{"text": "never sent in time", "delay": 600}])
    cmd = [sys.executable, "-m", "ccstack", "--project", stack.project, "claude", str(workdir), "--",
           "-p", "Write the result file.", *CLAUDE_P]  # fmt: skip
    session = subprocess.Popen(cmd, env=stack.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not main_requests(url) and time.monotonic() < deadline and session.poll() is None:
            time.sleep(0.5)
        assert main_requests(url), f"the agent never asked the model:\n{session.communicate(timeout=60)}"
        agents = docker.containers.list(filters={"name": f"{stack.project}-agent-"})
        assert len(agents) == 1, agents
        assert (workdir / ".git" / "config").exists()  # a placeholder, while the agent runs
        session.send_signal(signum)
        _out, err = session.communicate(timeout=60)
    finally:
        if session.poll() is None:
            session.kill()
    assert session.returncode == 128 + signum, err
    assert signal.Signals(signum).name in err
    assert docker.containers.list(all=True, filters={"name": f"{stack.project}-agent-"}) == []
    assert list(workdir.iterdir()) == []  # every placeholder removed, nothing left behind
    assert list(stack.state_dir.glob("session-*")) == []
    # The next session starts clean: nothing reported as left over by a session that did not end.
    url = script_upstream(stack, docker, [{"text": "Hello."}])
    r = stack.ccstack("claude", str(workdir), "--", "-p", "Say hello.", *CLAUDE_P, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "did not end cleanly" not in r.stderr
