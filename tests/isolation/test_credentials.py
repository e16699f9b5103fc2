"""The upstream key never reaches the agent; the agent's token is checked and worthless elsewhere; the
proxy cannot be talked into fetching anything for the agent."""

from __future__ import annotations

import json

import pytest
from ccstack import probes

pytestmark = pytest.mark.isolation

PROJECT = "ccsandbox-iso"


def _upstream_requests(iso) -> list[dict]:
    code = "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8080/_requests').read().decode())"
    r = probes.docker("exec", iso.upstream, "python3", "-c", code)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    return data if isinstance(data, list) else data.get("requests", [])


def _messages_request(token: str) -> str:
    body = json.dumps(
        {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}
    )
    return (
        f"POST /v1/messages HTTP/1.1\r\nHost: proxy:8787\r\nAuthorization: Bearer {token}\r\n"
        f"anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n{body}"
    )


def test_upstream_key_nowhere_in_agent(iso, record) -> None:
    # Positive control: a request from the agent through the proxy arrives at the fake OpenRouter
    # with the real key (so the key is live, and the search below looks for the right string).
    reply = probes.exec_op(
        iso.sandbox.agent,
        {
            "op": "tcp",
            "host": "proxy",
            "port": 8787,
            "send": _messages_request(iso.token),
            "timeout_ms": 30000,
        },
    )
    seen = json.dumps(_upstream_requests(iso))
    upstream_saw_key = f"Bearer {iso.key}" in seen
    status = reply.get("received", "")[9:12]
    inspect = probes.probe_key_inspect(iso.sandbox.agent, iso.key)
    files = probes.probe_key_files(iso.sandbox, iso.key, upstream_saw_key=upstream_saw_key)
    record(inspect, files)
    assert status == "200", f"the agent's request through the proxy failed: {reply}"
    assert upstream_saw_key, "the fake upstream never saw the key: the positive control failed"
    assert iso.token not in seen, "the agent's token reached the upstream"
    assert inspect.passed, inspect.detail
    assert files.passed, files.detail


def test_token_is_checked(iso, record) -> None:
    r = probes.probe_token_checked(iso.sandbox, iso.token)
    record(r)
    assert r.passed, r.detail


def test_token_replayed_from_other_containers(iso, record) -> None:
    """The agent's token, taken to another container of the user's, opens nothing: that container (on
    its own internal network, as any other Compose project's would be) reaches no address of the proxy.
    (From the proxy's own backend network it would work: see the informational part of the detail.)"""
    nets = probes.container_networks(iso.proxy)
    addresses = [n["IPAddress"] for n in nets.values() if n.get("IPAddress")]
    other, other_net = "ccsandbox-iso-other", "ccsandbox-iso-outside"
    probes.docker("rm", "-f", other)
    probes.docker("network", "rm", other_net)
    created = probes.docker("network", "create", "--internal", other_net)
    assert created.returncode == 0, created.stderr
    started = probes.docker(
        "run",
        "--detach",
        "--name",
        other,
        "--network",
        other_net,
        "--user",
        "1000:1000",
        "--entrypoint",
        "sleep",
        "ccsandbox/claude-sandbox:local",
        "300",
    )
    assert started.returncode == 0, started.stderr
    backend = f"{PROJECT}_backend"
    try:
        r = probes.probe_token_replay(iso.sandbox, iso.token, replay_from=[(other, a) for a in addresses])
        # Informational: a container on the backend network (a model server's place) can use the token.
        assert probes.docker("network", "connect", backend, iso.control).returncode == 0
        inside = probes.probe_token_replay(
            iso.sandbox, iso.token, replay_from=[(iso.control, nets[backend]["IPAddress"])]
        )
    finally:
        probes.docker("rm", "-f", other)
        probes.docker("network", "rm", other_net)
        probes.docker("network", "disconnect", "-f", backend, iso.control)
    tried = [o for o in r.detail.split("; ") if "not tried" not in o]
    r = probes.ProbeResult(
        r.name, r.area, r.passed, f"{r.detail} (informational, backend network: {inside.detail})"
    )
    record(r)
    assert tried, "no proxy address was routable from the host: the probe tried nothing"
    assert r.passed, r.detail


def test_proxy_cannot_be_made_to_fetch(iso, net, record) -> None:
    def control(nonce: str) -> bool:
        ok = probes.python_tcp(iso.proxy, net.canary.ipv4, 80, f"GET /{nonce} HTTP/1.0\r\n\r\n")
        return ok and bool(probes.wait_for_hits(net.log(net.canary), nonce))

    r = probes.probe_proxy_tricks(iso.sandbox, net, token=iso.token, control=control)
    record(r)
    assert r.passed, r.detail
