"""Network probes: the agent reaches the proxy and nothing else — not the fake internet (TCP, UDP, DNS
through its resolver and direct), not a listener on the host, not closed ports, no fetch through the
proxy by request tricks, no IPv6, no host names. A network probe passes only if it fails from the agent
AND the target's log shows no nonce, and its positive control from another container gets through."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

from ccstack.probes.containers import Op, exec_op, exec_ops, exec_parallel
from ccstack.probes.results import ProbeResult, format_errors, new_nonce, verdict
from ccstack.probes.targets import FakeInternet, HostListener, Sandbox, under_gvisor, wait_for_hits


def is_address(host: str) -> bool:
    return ":" in host or bool(re.fullmatch(r"[0-9.]+", host))


def probe_tcp(sb: Sandbox, net: FakeInternet, control: str, *, ipv6: bool = False) -> ProbeResult:
    """TCP to every canary port, by IPv4 or IPv6: refused from the agent, logged from the control."""
    host = net.canary.ipv6 if ipv6 else net.canary.ipv4
    name = f"tcp-canary-ipv{6 if ipv6 else 4}"
    if host is None:
        return verdict(name, "network", False, "the canary has no IPv6 address (engine without IPv6?)")
    nonce = new_nonce()
    ops = [{"op": "tcp", "host": host, "port": p, "send": f"{nonce} tcp {p}\n"} for p in net.tcp_ports]
    agent = exec_parallel(sb.agent, ops)
    leaked = [p for p, r in zip(net.tcp_ports, agent, strict=True) if r.get("connected")]
    log = net.log(net.canary)
    hits = wait_for_hits(log, nonce, 1.5)
    cnonce = new_nonce()
    cops = [{"op": "tcp", "host": host, "port": p, "send": f"{cnonce} tcp {p}\n"} for p in net.tcp_ports]
    ctrl = exec_parallel(control, cops)
    chits = wait_for_hits(log, cnonce)
    ctrl_ok = all(r.get("connected") for r in ctrl) and len({h["port"] for h in chits}) == len(net.tcp_ports)
    detail = f"agent: {format_errors(agent)}; canary hits {len(hits)}; ports {list(net.tcp_ports)}"
    if leaked:
        detail = f"agent CONNECTED to ports {leaked}; " + detail
    return verdict(name, "network", not leaked and not hits, detail, ctrl_ok)


def probe_udp(sb: Sandbox, net: FakeInternet, control: str, *, ipv6: bool = False) -> ProbeResult:
    host = net.canary.ipv6 if ipv6 else net.canary.ipv4
    name = f"udp-canary-ipv{6 if ipv6 else 4}"
    if host is None:
        return verdict(name, "network", False, "the canary has no IPv6 address (engine without IPv6?)")
    nonce = new_nonce()
    ops = [{"op": "udp", "host": host, "port": p, "send": f"{nonce} udp {p}"} for p in net.udp_ports]
    agent = exec_parallel(sb.agent, ops)
    log = net.log(net.canary)
    hits = wait_for_hits(log, nonce, 1.5)
    answered = [r for r in agent if r.get("received")]
    cnonce = new_nonce()
    cops = [{"op": "udp", "host": host, "port": p, "send": f"{cnonce} udp {p}"} for p in net.udp_ports]
    exec_parallel(control, cops)
    chits = wait_for_hits(log, cnonce)
    ctrl_ok = len({h["port"] for h in chits}) == len(net.udp_ports)
    detail = f"agent send: {', '.join(str(r.get('error') or 'sent') for r in agent)}; canary hits {len(hits)}"
    return verdict(name, "network", not hits and not answered, detail, ctrl_ok)


def probe_dns(sb: Sandbox, net: FakeInternet, control: str) -> ProbeResult:
    """``<nonce>.<zone>`` via the agent's resolver: no answer, and no query reaches the fake DNS."""
    nonce = new_nonce()
    name = f"{nonce}.{net.zone}"
    agent = exec_op(sb.agent, {"op": "dns", "name": name})
    log = net.log(net.dns)
    hits = wait_for_hits(log, nonce, 2.0)
    cnonce = new_nonce()
    ctrl = exec_op(control, {"op": "dns", "name": f"{cnonce}.{net.zone}"})
    chits = wait_for_hits(log, cnonce)
    ctrl_ok = net.canary.ipv4 in ctrl.get("addresses", []) and bool(chits)
    detail = (
        f"agent: addresses {agent.get('addresses')} ({agent.get('lookup', {}).get('error')}); "
        f"fake DNS saw the nonce {len(hits)} times"
    )
    return verdict("dns-resolver", "dns", not agent.get("addresses") and not hits, detail, ctrl_ok)


def probe_dns_direct(sb: Sandbox, net: FakeInternet, control: str) -> ProbeResult:
    """A DNS query sent straight to the fake DNS server's address (bypassing the embedded resolver)."""
    nonce = new_nonce()
    agent = exec_op(sb.agent, {"op": "dns", "name": f"{nonce}.{net.zone}", "server": net.dns.ipv4})
    log = net.log(net.dns)
    hits = wait_for_hits(log, nonce, 2.0)
    cnonce = new_nonce()
    ctrl = exec_op(control, {"op": "dns", "name": f"{cnonce}.{net.zone}", "server": net.dns.ipv4})
    ctrl_ok = net.canary.ipv4 in ctrl.get("resolve4", {}).get("addresses", []) and bool(
        wait_for_hits(log, cnonce)
    )
    got = agent.get("resolve4", {})
    detail = f"agent: {got.get('addresses') or got.get('error')}; fake DNS saw the nonce {len(hits)} times"
    return verdict("dns-direct-server", "dns", not got.get("addresses") and not hits, detail, ctrl_ok)


def probe_host_listener(
    sb: Sandbox,
    listener: HostListener,
    targets: Sequence[str],
    *,
    control: str | None = None,
    control_targets: Sequence[str] = (),
    name: str = "host-listener",
) -> ProbeResult:
    """TCP + UDP from the agent to the host listener at each address/name in ``targets``."""
    nonce = new_nonce()
    ops: list[Op] = []
    for t in targets:
        ops.append({"op": "tcp", "host": t, "port": listener.port, "send": f"{nonce} {t}\n"})
        if is_address(t):  # UDP to literal addresses only
            ops.append({"op": "udp", "host": t, "port": listener.port, "send": f"{nonce} {t}"})
    agent = exec_parallel(sb.agent, ops)
    hits = wait_for_hits(listener.log, nonce, 1.5)
    connected = [
        o["host"] for o, r in zip(ops, agent, strict=True) if r.get("connected") or r.get("received")
    ]
    ctrl_ok: bool | None = None
    if control is not None:
        cnonce = new_nonce()
        cops = [
            {"op": "tcp", "host": t, "port": listener.port, "send": f"{cnonce} {t}\n"}
            for t in control_targets
        ]
        ctrl = exec_parallel(control, cops)
        ctrl_ok = all(r.get("connected") for r in ctrl) and bool(wait_for_hits(listener.log, cnonce))
    errors = ", ".join(
        f"{o['op']} {o['host']}: {r.get('error') or 'sent'}" for o, r in zip(ops, agent, strict=True)
    )
    detail = f"{errors}; listener hits {len(hits)}"
    if connected:
        detail = f"REACHED {connected}; " + detail
    return verdict(name, "host", not connected and not hits, detail, ctrl_ok)


def probe_ports_closed(
    sb: Sandbox,
    targets: Sequence[tuple[str, int]],
    *,
    name: str,
    area: str = "network",
    control: Callable[[], bool] | None = None,
) -> ProbeResult:
    """TCP from the agent to (host, port) pairs that must not be reachable (model server, proxy extras)."""
    nonce = new_nonce()
    ops = [{"op": "tcp", "host": h, "port": p, "send": f"{nonce}\n", "timeout_ms": 2000} for h, p in targets]
    agent = exec_parallel(sb.agent, ops)
    open_ = [f"{o['host']}:{o['port']}" for o, r in zip(ops, agent, strict=True) if r.get("connected")]
    detail = ", ".join(
        f"{o['host']}:{o['port']} {r.get('error') or 'open'}" for o, r in zip(ops, agent, strict=True)
    )
    return verdict(name, area, not open_, detail, None if control is None else control())


PROXY_TRICKS: tuple[tuple[str, str], ...] = (
    ("absolute-url", "GET http://{canary}/{nonce} HTTP/1.1\r\nHost: {canary}\r\n\r\n"),
    (
        "absolute-url-post",
        "POST http://{canary}/v1/messages?{nonce} HTTP/1.1\r\nHost: {canary}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
    ),
    ("host-header", "GET /{nonce} HTTP/1.1\r\nHost: {canary}\r\n\r\n"),
    (
        "host-header-messages",
        "POST /v1/messages HTTP/1.1\r\nHost: {canary}:80\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: {body_len}\r\n\r\n{body}",
    ),
    (
        "forwarded-host",
        "GET /v1/models HTTP/1.1\r\nHost: proxy\r\nX-Forwarded-Host: {canary}\r\n"
        "X-Forwarded-Proto: http\r\nForwarded: host={canary}\r\nAuthorization: Bearer {token}\r\n\r\n",
    ),
    ("connect-method", "CONNECT {canary}:80 HTTP/1.1\r\nHost: {canary}:80\r\n\r\n{nonce}\n"),
    ("double-slash", "GET //{canary}/{nonce} HTTP/1.1\r\nHost: proxy\r\n\r\n"),
    ("dot-dot", "GET /v1/../../http://{canary}/{nonce} HTTP/1.1\r\nHost: proxy\r\n\r\n"),
    ("at-sign", "GET @{canary}/{nonce} HTTP/1.1\r\nHost: proxy\r\n\r\n"),
    (
        "encoded-url",
        "GET /v1/messages/%2e%2e/%2e%2e/http%3a%2f%2f{canary}%2f{nonce} HTTP/1.1\r\nHost: proxy\r\n\r\n",
    ),
    ("name-in-host", "GET /{nonce} HTTP/1.1\r\nHost: {nonce}.{zone}\r\n\r\n"),
)


def probe_proxy_tricks(
    sb: Sandbox, net: FakeInternet, *, token: str, control: Callable[[str], bool] | None = None
) -> ProbeResult:
    """Requests to the LLM proxy trying to make it fetch the canary; the canary and DNS must see nothing."""
    nonce = new_nonce()
    body = json.dumps(
        {
            "model": f"http://{net.canary.ipv4}/{nonce}",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": nonce}],
        }
    )
    ops = []
    for _trick, template in PROXY_TRICKS:
        raw = template.format(
            canary=net.canary.ipv4, nonce=nonce, token=token, body=body, body_len=len(body), zone=net.zone
        )
        ops.append(
            {"op": "tcp", "host": sb.proxy_host, "port": sb.proxy_port, "send": raw, "timeout_ms": 8000}
        )
    agent = exec_parallel(sb.agent, ops)
    hits = wait_for_hits(net.log(net.canary), nonce, 2.0) + wait_for_hits(net.log(net.dns), nonce, 0.5)
    statuses = []
    for (trick, _t), r in zip(PROXY_TRICKS, agent, strict=True):
        line = r.get("received", "").split("\r\n", 1)[0]
        statuses.append(f"{trick}: {line[9:12] or r.get('error') or 'no answer'}")
    detail = f"{'; '.join(statuses)}; canary/DNS hits {len(hits)}"
    ctrl = None if control is None else control(new_nonce())
    reached = all(r.get("connected") for r in agent)
    if not reached:
        detail = "the proxy was not reachable from the agent (probe meaningless); " + detail
    return verdict("proxy-fetch-tricks", "proxy", reached and not hits, detail, ctrl)


def probe_ipv6_off(sb: Sandbox) -> ProbeResult:
    if under_gvisor(sb):
        from ccstack import gvisor_probes  # gVisor shows no /proc/sys/net

        return gvisor_probes.probe_ipv6_off(sb)
    res = exec_ops(
        sb.agent,
        [
            {"op": "read", "path": "/proc/sys/net/ipv6/conf/all/disable_ipv6"},
            {"op": "read", "path": "/proc/net/if_inet6"},
        ],
    )
    disabled = res[0].get("text", "").strip()
    addrs = [line.split()[0] for line in res[1].get("text", "").splitlines() if line.strip()]
    ok = disabled == "1" and not [a for a in addrs if a != "00000000000000000000000000000001"]
    return verdict(
        "ipv6-disabled",
        "network",
        ok,
        f"disable_ipv6={disabled or res[0].get('error')}, IPv6 addresses {addrs}",
    )


def probe_host_names(sb: Sandbox) -> ProbeResult:
    """No ``host.docker.internal`` / ``gateway.docker.internal`` in the agent (hosts file or DNS)."""
    names = ["host.docker.internal", "gateway.docker.internal", "host-gateway", "docker.for.mac.localhost"]
    res = exec_ops(
        sb.agent, [{"op": "dns", "name": n} for n in names] + [{"op": "read", "path": "/etc/hosts"}]
    )
    resolved = {n: r.get("addresses") for n, r in zip(names, res, strict=False) if r.get("addresses")}
    hosts = res[-1].get("text", "")
    in_hosts = [n for n in names if n in hosts]
    return verdict(
        "host-names",
        "host",
        not resolved and not in_hosts,
        f"resolved {resolved or 'none'}; in /etc/hosts {in_hosts or 'none'}",
    )
