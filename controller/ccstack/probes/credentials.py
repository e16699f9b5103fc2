"""Credential probes: the upstream key nowhere in the agent (its files, processes, ``docker inspect``),
the agent's token checked by the proxy and useless from any other container."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from ccstack.probes.containers import docker, exec_op, exec_ops, host_route_is_local, inspect
from ccstack.probes.results import ProbeResult, verdict
from ccstack.probes.targets import Sandbox


def probe_key_inspect(container: str, key: str) -> ProbeResult:
    """The upstream key in ``docker inspect`` of the agent container or its image."""
    data = inspect(container)
    image = docker("image", "inspect", data["Image"]).stdout
    count = json.dumps(data).count(key) + image.count(key)
    return verdict("key-docker-inspect", "credentials", count == 0, f"occurrences {count}")


def probe_key_files(sb: Sandbox, key: str, *, upstream_saw_key: bool | None = None) -> ProbeResult:
    """The upstream key in every readable file and every /proc/*/environ and cmdline of the agent."""
    res = exec_op(sb.agent, {"op": "search", "needle": key}, timeout=900)
    matches = res.get("matches", [])
    detail = (
        f"occurrences {len(matches)} {matches[:5]}; scanned {res.get('files_scanned')} files "
        f"({res.get('bytes_scanned', 0) // 1_000_000} MB), {res.get('processes')} processes, "
        f"unreadable {res.get('unreadable')}"
    )
    ok = not matches and int(res.get("files_scanned", 0)) > 0
    return verdict("key-in-agent-files-environ", "credentials", ok, detail, upstream_saw_key)


def probe_token_checked(sb: Sandbox, token: str) -> ProbeResult:
    """The proxy accepts the agent's token and rejects a different one (the token is actually checked)."""
    bogus = "sk-ant-" + secrets.token_hex(16)

    def req(tok: str) -> str:
        return (
            f"GET /v1/models HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer {tok}\r\nx-api-key: {tok}\r\n"
            "Connection: close\r\n\r\n"
        )

    good, bad, none = exec_ops(
        sb.agent,
        [{"op": "tcp", "host": sb.proxy_host, "port": sb.proxy_port, "send": req(t)} for t in (token, bogus)]
        + [
            {
                "op": "tcp",
                "host": sb.proxy_host,
                "port": sb.proxy_port,
                "send": "GET /v1/models HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n",
            }
        ],
    )

    def status(r: dict[str, Any]) -> str:
        return str(r.get("received", "")[9:12] or r.get("error"))

    ok = status(good) == "200" and status(bad) in ("401", "403") and status(none) in ("401", "403")
    detail = f"own token {status(good)}, other token {status(bad)}, no token {status(none)}"
    return verdict("token-checked", "credentials", ok, detail)


def probe_token_replay(sb: Sandbox, token: str, *, replay_from: Sequence[tuple[str, str]]) -> ProbeResult:
    """The agent's token replayed at the proxy from other containers: (container, proxy address) pairs.

    Only addresses this host routes to one of its own bridges are tried: an address without a host
    route (the agent network has no host address) is unreachable from any other container by
    construction, and a packet sent to it would follow the host's default route off the machine.
    """
    req = (
        f"GET /v1/models HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer {token}\r\nx-api-key: {token}\r\n"
        "Connection: close\r\n\r\n"
    )
    outcomes = []
    accepted = []
    for container, address in replay_from:
        if not host_route_is_local(address):
            outcomes.append(f"{address}: no route from the host (not tried)")
            continue
        r = exec_op(container, {"op": "tcp", "host": address, "port": sb.proxy_port, "send": req})
        status = str(r.get("received", "")[9:12] or r.get("error"))
        outcomes.append(f"{container} -> {address}: {status}")
        if r.get("connected"):
            accepted.append(f"{address} ({status})")
    detail = "; ".join(outcomes)
    if accepted:
        detail = f"REACHED the proxy at {accepted}; " + detail
    return verdict("token-replay-other-container", "credentials", not accepted, detail)
