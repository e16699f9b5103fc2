"""`local` mode: the real llama-server image (scripts/build-llama-server.sh) with the real small model
shipped on PyPI (ccstack.models) comes up through `ccstack up local` and answers /v1/messages, plain and
streamed, through the proxy container. Asserts the protocol, not the wisdom of a 0.5B model."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from stack_helpers import Stack, http_json

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3600)]


def test_local_mode_answers_messages_through_the_proxy(
    stack: Stack, docker: Any, llama_image: str, workdir: Path
) -> None:
    # default model: fetched once into the model cache; the prefix prewarm is covered by test_local_task.py
    stack.ccstack("up", "local", "--no-prewarm", timeout=1800)
    assert stack.state["services"] == ["proxy", "llama-server"]
    llama = stack.container(docker, "llama-server")
    assert llama.attrs["Config"]["User"] == "1000:1000"
    assert llama.attrs["HostConfig"]["ReadonlyRootfs"] is True

    status = stack.ccstack("status")
    assert "upstream: reachable" in status.stdout, status.stdout

    url = f"http://{stack.ip(docker, 'proxy', 'backend')}:8787"
    headers = {"authorization": f"Bearer {stack.token}", "anthropic-version": "2023-06-01"}
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 24,
        "messages": [{"role": "user", "content": "Reply with one word: hello"}],
    }
    msg = http_json("POST", f"{url}/v1/messages", body, headers)
    assert msg["type"] == "message"
    assert msg["role"] == "assistant"
    assert msg["stop_reason"] in ("end_turn", "max_tokens")
    assert [b["type"] for b in msg["content"]] == ["text"]
    assert msg["content"][0]["text"].strip()
    assert msg["usage"]["input_tokens"] > 0
    assert 0 < msg["usage"]["output_tokens"] <= 24

    # Streamed: Anthropic SSE from message_start to message_stop.
    req = urllib.request.Request(
        f"{url}/v1/messages",
        data=json.dumps(body | {"stream": True}).encode(),
        headers={"content-type": "application/json", **headers},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=300) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [
            line.split(":", 1)[1].strip()
            for line in resp.read().decode().splitlines()
            if line.startswith("event:")
        ]
    events = [e for e in events if e != "ping"]
    assert events[0] == "message_start"
    assert events[-2:] == ["message_delta", "message_stop"]
    assert "content_block_delta" in events

    # Without the session token the proxy refuses (the agent's token is the only key to it).
    with pytest.raises(urllib.error.HTTPError) as err:
        http_json("POST", f"{url}/v1/messages", body, {"anthropic-version": "2023-06-01"})
    assert err.value.code == 401

    # The agent learns the backend's real context window (llama-server's n_ctx per slot, through the
    # proxy's /health) at start, so Claude Code compacts before the backend rejects a prompt.
    r = stack.compose(workdir).run(
        "claude-sandbox", "bash", "-c", 'echo "window=$CLAUDE_CODE_MAX_CONTEXT_TOKENS"', timeout=300
    )
    assert r.returncode == 0, r.stderr
    health = http_json("GET", f"{url}/health", None, {})
    assert health["backend"]["n_ctx"] == 32768  # LLAMA_CTX_PER_SLOT of the local mode
    assert f"window={health['backend']['n_ctx']}" in r.stdout.splitlines(), r.stdout
