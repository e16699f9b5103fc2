"""`openrouter` mode against a fake OpenRouter (the scripted upstream) on the egress network: the fake
sees the upstream key; the key appears nowhere in the agent container (environment, files, docker
inspect), while the per-session token does (positive control for each search)."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from stack_helpers import CLAUDE_P, Stack, http_json, write_tool_script

pytestmark = pytest.mark.stack

FAKE_OPENROUTER = """\
# Test overlay: a fake OpenRouter on the egress network (the scripted upstream image).
services:
  fake-openrouter:
    image: ccsandbox/scripted-upstream:local
    networks: [egress]
    read_only: true
    cap_drop: [ALL]
    stop_signal: SIGINT
  proxy:
    depends_on:
      fake-openrouter: {condition: service_healthy}
"""


def test_openrouter_key_reaches_the_upstream_and_never_the_agent(
    stack: Stack, docker: Any, workdir: Path, tmp_path: Path
) -> None:
    key = f"sk-or-v1-test-{secrets.token_hex(16)}"
    overlay = tmp_path / "fake-openrouter.yaml"
    overlay.write_text(FAKE_OPENROUTER, encoding="utf-8")
    stack.ccstack(
        "up",
        "openrouter",
        "--upstream",
        "http://fake-openrouter:8080/v1",
        "--model",
        "qwen/qwen3-coder",
        "-f",
        str(overlay),
        env={"OPENROUTER_API_KEY": key},
    )
    assert stack.state["services"] == ["proxy"]
    fake = f"http://{stack.ip(docker, 'fake-openrouter', 'egress')}:8080"
    content = f"via openrouter {secrets.token_hex(6)}\n"
    http_json("POST", f"{fake}/_script", write_tool_script("/workspace/or.txt", content))

    r = stack.ccstack("claude", str(workdir), "--", "-p", "Write or.txt.", *CLAUDE_P, check=False)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert (workdir / "or.txt").read_text(encoding="utf-8") == content

    # Positive control: the fake OpenRouter saw the key, and the model the mode asked for.
    log = http_json("GET", f"{fake}/_requests")
    chats = [e for e in log if e.get("path", "").startswith("/v1/chat/completions")]
    assert chats, log
    for entry in chats:
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        assert headers.get("authorization") == f"Bearer {key}"
        assert stack.token not in json.dumps(entry)  # the agent's token stops at the proxy
    assert {e["body"]["model"] for e in chats} == {"qwen/qwen3-coder"}

    # The agent container: a long-running one started the same way (compose run), then searched.
    name = f"{stack.project}-agent-probe"
    started = stack.compose(workdir).run(
        "claude-sandbox", "sleep", "600", options=("-d", "--name", name, "-T")
    )
    assert started.returncode == 0, started.stderr
    try:
        agent = docker.containers.get(name)
        inspect = json.dumps(agent.attrs)
        assert key not in inspect
        environ = agent.exec_run(["sh", "-c", "cat /proc/[0-9]*/environ | tr '\\0' '\\n'"]).output.decode()
        assert f"ANTHROPIC_AUTH_TOKEN={stack.token}" in environ  # control: the search sees environments
        assert key not in environ
        # Every readable file (rootfs, workdir, state volume, secrets), fed the needle on stdin.
        for needle, expect_hit in ((key, False), (stack.token, True)):
            proc = subprocess.run(
                ["docker", "exec", "-i", name, "sh", "-c",
                 "grep -rlsF -f /dev/stdin / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev; true"],
                input=needle + "\n", capture_output=True, text=True, timeout=600, check=True,
            )  # fmt: skip
            hits = proc.stdout.split()
            if expect_hit:
                assert "/run/secrets/proxy_token" in hits  # control: the search reads the files
            else:
                assert hits == [], f"the upstream key was found in the agent: {hits}"
    finally:
        docker.containers.get(name).remove(force=True)

    # The key is where it belongs: in the proxy, as a secret file.
    proxy = stack.container(docker, "proxy")
    assert proxy.exec_run(["cat", "/run/secrets/upstream_key"]).output.decode().strip() == key
    assert key not in json.dumps(proxy.attrs)  # a file, not an environment variable
