"""Modes for a server the user runs, and the subscription mode, against real server processes:

- `openai`: a real llama-server (the stack's image, the 0.5B model) published on a host port, reached as
  "a server on the host" through host.docker.internal; its context window and model read from it;
- `openai --upstream-kind anthropic`: the scripted upstream's /v1/messages on a host port (the host
  gateway path), passed through;
- `subscription`: the scripted upstream standing in for api.anthropic.com on the egress network; the
  proxy sends the OAuth token as Bearer with the oauth beta, and the token appears nowhere in the agent.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from harness import free_port
from harness.containers import DockerContainer, HealthWait
from harness.llama import llama_server
from stack_helpers import CLAUDE_P, REPO, Stack, http_json

pytestmark = pytest.mark.stack

MODELS = Path.home() / ".cache" / "ccsandbox" / "models"
MODEL = MODELS / "qwen2.5-coder-0.5b.gguf"
NO_TOOLS_MODEL = MODELS / "smollm2-135m.gguf"  # a tiny chat model: answers text when asked for a tool
LLAMA_CTX = 4096
SCRIPT = REPO / "backends" / "scripted-upstream" / "scripted_upstream.py"
SCRIPT_IN_IMAGE = "/opt/scripted-upstream/scripted_upstream.py"
"""This checkout's script, mounted over the image's: the image tag is shared by every checkout on the
machine, and its /v1/messages is what these tests use."""


@contextmanager
def llama_on_a_host_port(model: Path, template: str) -> Iterator[int]:
    """llama-server as a user runs it by hand: a container published on a host port (all interfaces)."""
    if not model.is_file():
        pytest.fail(f"{model} is missing: `just model {model.stem}`")
    port = free_port("0.0.0.0")
    with llama_server(
        model,
        env={"LLAMA_CTX_PER_SLOT": str(LLAMA_CTX), "LLAMA_CHAT_TEMPLATE": template},
        name_prefix="ccsbx-test-host-llama",
        startup_timeout=300,
        publish=("0.0.0.0", port),
    ):
        yield port


@pytest.fixture(scope="module")
def host_llama() -> Iterator[int]:
    with llama_on_a_host_port(MODEL, "qwen2.5-coder-tools") as port:
        yield port


@pytest.fixture
def host_scripted() -> Iterator[int]:
    """The scripted upstream's image published on a host port: an Anthropic-compatible server on the host."""
    port = free_port("0.0.0.0")
    server = DockerContainer(
        "ccsandbox/scripted-upstream:local", name=f"ccsbx-test-host-scripted-{secrets.token_hex(3)}"
    )
    server.with_volume_mapping(str(SCRIPT), SCRIPT_IN_IMAGE, "ro")
    server.ports["8080/tcp"] = ("0.0.0.0", port)  # type: ignore[assignment]
    with server.waiting_for(HealthWait(8080, "/health").with_startup_timeout(60)):
        yield port


def proxy_message(stack: Stack, docker: Any, body: dict[str, Any]) -> Any:
    url = f"http://{stack.ip(docker, 'proxy', 'backend')}:8787/v1/messages"
    headers = {"authorization": f"Bearer {stack.token}", "anthropic-version": "2023-06-01"}
    return http_json("POST", url, body, headers)


def overlay_text(stack: Stack, mode: str) -> str:
    return (stack.state_dir / f"compose.{mode}.yaml").read_text(encoding="utf-8")


def test_openai_mode_reads_window_and_model_from_llama_server_on_the_host(
    stack: Stack, docker: Any, host_llama: int
) -> None:
    stack.ccstack("up", "openai", "--upstream", f"http://host.docker.internal:{host_llama}/v1")
    extra = stack.state["extra"]
    assert extra["context_window"] == LLAMA_CTX  # from /props
    assert extra["model"] == "/models/model.gguf"  # the one model of /v1/models
    overlay = overlay_text(stack, "openai")
    assert f"CLAUDE_CODE_MAX_CONTEXT_TOKENS: '{LLAMA_CTX}'" in overlay
    assert "CCPROXY_UPSTREAM_KIND: openai" in overlay

    reply = proxy_message(
        stack,
        docker,
        {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi."}]},
    )
    assert reply["type"] == "message"
    assert reply["content"][0]["type"] == "text"
    assert reply["content"][0]["text"].strip()

    r = stack.ccstack("doctor", "--json", check=False, timeout=900)
    report = json.loads(r.stdout)
    rows = {c["name"]: c for c in report["checks"]}
    print(json.dumps(report, indent=1))
    assert rows["backend"]["status"] == "ok"
    assert rows["context window"]["status"] == "ok"
    assert f"{LLAMA_CTX} tokens" in rows["context window"]["detail"]
    assert rows["tool call"]["status"] == "ok", rows["tool call"]
    assert report["ok"], report
    assert r.returncode == 0


def test_doctor_finds_a_real_model_that_cannot_call_tools(stack: Stack, docker: Any) -> None:
    with llama_on_a_host_port(NO_TOOLS_MODEL, "") as port:  # its own chat template
        stack.ccstack("up", "openai", "--upstream", f"http://host.docker.internal:{port}/v1")
        r = stack.ccstack("doctor", "--json", check=False, timeout=900)
    report = json.loads(r.stdout)
    rows = {c["name"]: c for c in report["checks"]}
    print(json.dumps(rows["tool call"], indent=1))
    assert r.returncode == 1
    assert rows["backend"]["status"] == "ok"
    assert rows["tool call"]["status"] == "fail"
    assert "answered text, no tool call" in rows["tool call"]["detail"]
    assert "tool-capable model" in rows["tool call"]["fix"]
    assert [c["name"] for c in report["checks"] if c["status"] == "fail"] == ["tool call"]


def test_anthropic_kind_passes_through_to_a_server_on_the_host(
    stack: Stack, docker: Any, host_scripted: int
) -> None:
    fake = f"http://127.0.0.1:{host_scripted}"
    http_json("POST", f"{fake}/_script", [{"text": "hello from /v1/messages on the host"}])
    stack.ccstack(
        "up", "openai", "--upstream", f"http://host.docker.internal:{host_scripted}/v1",
        "--upstream-kind", "anthropic", "--model", "scripted", "--context-window", "8192",
    )  # fmt: skip
    assert "CCPROXY_UPSTREAM_KIND: anthropic" in overlay_text(stack, "openai")
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "noop", "description": "does nothing", "input_schema": {"type": "object"}}],
    }
    reply = proxy_message(stack, docker, body)
    assert reply["content"] == [{"type": "text", "text": "hello from /v1/messages on the host"}]
    posts = [e for e in http_json("GET", f"{fake}/_requests") if e["method"] == "POST"]
    assert [e["path"] for e in posts] == ["/v1/messages"]
    assert posts[0]["body"]["messages"] == body["messages"]  # passed through, not translated
    assert stack.token not in json.dumps(posts)


FAKE_ANTHROPIC = f"""\
# Test overlay: the scripted upstream standing in for api.anthropic.com on the egress network.
services:
  fake-anthropic:
    image: ccsandbox/scripted-upstream:local
    volumes:
      - {{type: bind, source: {SCRIPT}, target: {SCRIPT_IN_IMAGE}, read_only: true}}
    networks: [egress]
    read_only: true
    cap_drop: [ALL]
    stop_signal: SIGINT
  proxy:
    depends_on:
      fake-anthropic: {{condition: service_healthy}}
"""

AGENT_REQUESTS = """
for path in / /health /v1/models /metrics /v1/messages/count_tokens; do
  node -e '
    const [url, token] = process.argv.slice(1);
    fetch(url, {method: url.endsWith("count_tokens") ? "POST" : "GET",
                headers: {authorization: "Bearer " + token, "content-type": "application/json",
                          "anthropic-version": "2023-06-01"},
                body: url.endsWith("count_tokens") ? JSON.stringify({model: "claude-opus-4-8",
                  messages: [{role: "user", content: "hi"}]}) : undefined})
      .then(async r => console.log(r.status, JSON.stringify([...r.headers]), await r.text()))
      .catch(e => console.log("error", e.message));
  ' "http://proxy:8787$path" "$(cat /run/secrets/proxy_token)"
done
"""


def test_subscription_token_reaches_the_upstream_as_bearer_and_never_the_agent(
    stack: Stack, docker: Any, workdir: Path, tmp_path: Path
) -> None:
    token = f"sk-ant-oat01-test-{secrets.token_hex(16)}"
    overlay = tmp_path / "fake-anthropic.yaml"
    overlay.write_text(FAKE_ANTHROPIC, encoding="utf-8")
    stack.ccstack(
        "up", "subscription", "--upstream", "http://fake-anthropic:8080/v1", "-f", str(overlay),
        env={"CLAUDE_CODE_OAUTH_TOKEN": token},
    )  # fmt: skip
    fake = f"http://{stack.ip(docker, 'fake-anthropic', 'egress')}:8080"
    reply = f"answered on your plan {secrets.token_hex(4)}"
    http_json("POST", f"{fake}/_script", [{"text": reply}])

    r = stack.ccstack("claude", str(workdir), "--", "-p", "Say hello.", *CLAUDE_P, check=False)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert reply in r.stdout

    # What the proxy sent upstream: the token as Bearer, the oauth beta after the CLI's own betas.
    log = http_json("GET", f"{fake}/_requests")
    main = [e for e in log if e["path"].startswith("/v1/messages") and (e["body"] or {}).get("tools")]
    assert main, log
    for entry in main:
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        assert headers["authorization"] == f"Bearer {token}"
        assert "x-api-key" not in headers
        betas = headers["anthropic-beta"].split(",")
        assert betas[-1] == "oauth-2025-04-20"
        assert "claude-code-20250219" in betas  # the CLI's own betas are kept, first
        assert stack.token not in json.dumps(entry)  # the agent's token stops at the proxy
    print("anthropic-beta sent upstream:", main[0]["headers"].get("anthropic-beta"))

    name = f"{stack.project}-agent-probe"
    run_detached = ("-d", "--name", name, "-T")
    started = stack.compose(workdir).run("claude-sandbox", "sleep", "600", options=run_detached)
    assert started.returncode == 0, started.stderr
    try:
        agent = docker.containers.get(name)
        assert token not in json.dumps(agent.attrs)
        environ = agent.exec_run(["sh", "-c", "cat /proc/[0-9]*/environ | tr '\\0' '\\n'"]).output.decode()
        assert f"ANTHROPIC_AUTH_TOKEN={stack.token}" in environ  # control: the search sees environments
        assert token not in environ
        assert "CLAUDE_CODE_OAUTH_TOKEN" not in environ
        # The requests the agent can make to its only peer: nothing answers with the token.
        answers = agent.exec_run(["bash", "-c", AGENT_REQUESTS]).output.decode()
        assert answers.count("\n") >= 5, answers
        assert "ccproxy" in answers  # control: the proxy answered
        assert token not in answers
        for needle, expect_hit in ((token, False), (stack.token, True)):
            proc = subprocess.run(
                ["docker", "exec", "-i", name, "sh", "-c",
                 "grep -rlsF -f /dev/stdin / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev; true"],
                input=needle + "\n", capture_output=True, text=True, timeout=600, check=True,
            )  # fmt: skip
            hits = proc.stdout.split()
            if expect_hit:
                assert "/run/secrets/proxy_token" in hits  # control: the search reads the files
            else:
                assert hits == [], f"the OAuth token was found in the agent: {hits}"
    finally:
        docker.containers.get(name).remove(force=True)

    proxy = stack.container(docker, "proxy")
    assert proxy.exec_run(["cat", "/run/secrets/upstream_key"]).output.decode().strip() == token
    assert token not in json.dumps(proxy.attrs)  # a file, not an environment variable
