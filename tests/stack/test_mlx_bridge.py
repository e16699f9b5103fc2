"""The MLX host bridge: the proxy container reaches an OpenAI-compatible server running on this host
(as mlx_lm.server runs on a Mac; here the scripted upstream stands in for it), through
host.docker.internal, while the sandbox container cannot reach that same server by any address."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import scripted_upstream
from stack_helpers import Stack, http_json

pytestmark = pytest.mark.stack

REPLY = "hello from the server on the host"


@pytest.fixture
def host_server(tmp_path: Path) -> Iterator[int]:
    """The scripted upstream on the host's 0.0.0.0 (every interface, as a careless user would run it)."""
    with scripted_upstream(log=tmp_path / "host-server.log", host="0.0.0.0") as server:
        http_json("POST", f"{server.url}/_script", [{"text": REPLY}])
        yield server.port


def host_addresses(docker: Any, project: str) -> list[str]:
    """Every IPv4 address of this host the agent might try: interfaces, bridge gateways (docker0 too)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    addrs = {line.split()[3].split("/")[0] for line in out.splitlines()}
    for net in docker.networks.list():
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            if cfg.get("Gateway"):
                addrs.add(cfg["Gateway"])
    return sorted(addrs)


PROBE = """
for target in "$@"; do
  if timeout 3 bash -c "exec 3<>/dev/tcp/${target%:*}/${target##*:}" 2>/dev/null; then echo "OPEN $target"
  else echo "closed $target"; fi
done
"""


def test_proxy_reaches_the_host_server_and_the_agent_does_not(
    stack: Stack, docker: Any, host_server: int, workdir: Path
) -> None:
    upstream = f"http://host.docker.internal:{host_server}/v1"
    stack.ccstack("up", "mlx", "--upstream", upstream)

    # Through the proxy container: an Anthropic request answered by the host server.
    proxy_url = f"http://{stack.ip(docker, 'proxy', 'backend')}:8787"
    reply = http_json(
        "POST",
        f"{proxy_url}/v1/messages",
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
            # A tool makes it a main request (the scripted server answers tool-less ones with "OK").
            "tools": [{"name": "noop", "description": "does nothing", "input_schema": {"type": "object"}}],
        },
        {"authorization": f"Bearer {stack.token}", "anthropic-version": "2023-06-01"},
    )
    assert reply["type"] == "message"
    assert reply["content"][0]["text"] == REPLY
    seen = http_json("GET", f"http://127.0.0.1:{host_server}/_requests")
    assert any(e["body"] and e["body"].get("model") == "default_model" for e in seen if e["method"] == "POST")

    assert_only_the_proxy_reaches_host_port(stack, docker, workdir, host_server)


def assert_only_the_proxy_reaches_host_port(stack: Stack, docker: Any, workdir: Path, port: int) -> None:
    """The proxy opens a server on the host's `port` via host.docker.internal (positive control); the
    agent has no host.docker.internal entry and finds the port closed on every host address (bridge
    gateways, docker0, every interface), although the server listens on 0.0.0.0."""
    targets = [f"{a}:{port}" for a in host_addresses(docker, stack.project)]
    proxy = stack.container(docker, "proxy")
    ctl = proxy.exec_run(["bash", "-c", PROBE, "probe", f"host.docker.internal:{port}"])
    assert f"OPEN host.docker.internal:{port}" in ctl.output.decode(), ctl.output.decode()

    r = stack.compose(workdir).run(
        "claude-sandbox", "bash", "-c",
        "getent hosts host.docker.internal || echo no-host-entry; " + PROBE,
        "probe", f"host.docker.internal:{port}", *targets,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "no-host-entry" in r.stdout
    assert "OPEN" not in r.stdout, r.stdout
    assert r.stdout.count("closed ") == len(targets) + 1
