"""Registry egress through Squid (``policies/egress.yaml``): the allowlisted registry works; every other
destination, port, literal address form, private address or plain-HTTP request is refused by the egress
proxy and leaves no trace at the canary. Only addresses on test networks are ever probed."""

from __future__ import annotations

import socket
import time

from ccstack.probes.containers import Op, docker, exec_op
from ccstack.probes.results import ProbeError, ProbeResult, new_nonce, verdict
from ccstack.probes.targets import EventLog, FakeInternet, Sandbox, wait_for_hits


def routes_locally(route_table: str, address: str) -> bool:
    """Whether a /proc/net/route table sends IPv4 ``address`` to a directly attached network.

    The most specific matching route must have no gateway (a default route does not count).
    """
    target = int.from_bytes(socket.inet_aton(address), "big")
    best: tuple[int, bool] | None = None
    for line in route_table.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        dest, gateway, mask = (int.from_bytes(bytes.fromhex(x)[::-1], "big") for x in (f[1], f[2], f[7]))
        if target & mask == dest and (best is None or mask > best[0]):
            best = (mask, gateway == 0)
    return best is not None and best[1]


def route_is_local(container: str, address: str) -> bool:
    """``routes_locally`` for a container (no tools needed in it): probes send to an address only when
    it belongs to a network we created."""
    proc = docker("exec", container, "cat", "/proc/net/route")
    if proc.returncode != 0:
        raise ProbeError(f"cannot read the routes of {container}: {proc.stderr.strip()}")
    return routes_locally(proc.stdout, address)


def egress_cases(net: FakeInternet, nonce: str) -> list[tuple[str, str, str, tuple[str, int]]]:
    """(probe name, CONNECT target or raw request, kind, where it would land) for every refused request."""
    ip = net.canary.ipv4
    a, b, c, d = (int(x) for x in ip.split("."))
    decimal = str((a << 24) | (b << 16) | (c << 8) | d)
    hex_ = f"0x{(a << 24) | (b << 16) | (c << 8) | d:08x}"
    octal = ".".join(f"0{int(x):o}" for x in ip.split("."))
    dotted_hex = ".".join(f"0x{int(x):x}" for x in ip.split("."))
    priv, v6 = net.canary_private_ipv4, net.canary.ipv6 or "::1"
    return [
        ("egress-not-allowlisted", f"{nonce}.{net.zone}:443", "connect", (ip, 443)),
        ("egress-port-22", f"{net.allowed_canary_name}:22", "connect", (ip, 22)),
        ("egress-port-80", f"{net.allowed_canary_name}:80", "connect", (ip, 80)),
        (
            "egress-plain-http",
            f"GET http://{net.allowed_canary_name}/{nonce} HTTP/1.1\r\n"
            f"Host: {net.allowed_canary_name}\r\n\r\n",
            "raw",
            (ip, 80),
        ),
        (
            "egress-squid-manager",
            "GET /squid-internal-mgr/menu HTTP/1.1\r\nHost: egress-proxy:3128\r\n\r\n",
            "raw",
            (ip, 80),
        ),
        ("egress-literal-dotted", f"{ip}:443", "connect", (ip, 443)),
        ("egress-literal-decimal", f"{decimal}:443", "connect", (ip, 443)),
        ("egress-literal-hex", f"{hex_}:443", "connect", (ip, 443)),
        ("egress-literal-dotted-hex", f"{dotted_hex}:443", "connect", (ip, 443)),
        ("egress-literal-octal", f"{octal}:443", "connect", (ip, 443)),
        ("egress-literal-ipv6", f"[{v6}]:443", "connect", (v6, 443)),
        ("egress-private-literal", f"{priv}:443", "connect", (priv, 443)),
        ("egress-private-by-name", f"{net.rebind_name}:443", "connect", (priv, 443)),
        ("egress-metadata-169.254.169.254", "169.254.169.254:443", "connect", ("169.254.169.254", 443)),
    ]


def bash_tcp_control(container: str, log: EventLog, host: str, port: int) -> bool:
    """Positive control from a container with bash only (Squid's): connect + send a nonce, see it logged."""
    nonce = new_nonce()
    script = f"exec 3<>/dev/tcp/{host}/{port} && echo {nonce} >&3 && sleep 0.3"
    proc = docker("exec", container, "timeout", "5", "bash", "-c", script, timeout=20)
    return proc.returncode == 0 and bool(wait_for_hits(log, nonce))


def probe_egress(
    sb: Sandbox,
    net: FakeInternet,
    *,
    egress_container: str,
    egress_host: str = "egress-proxy",
    egress_port: int = 3128,
) -> list[ProbeResult]:
    """The registry egress proxy from the agent: the allowlisted registry works, everything else refused.

    A refused request must get a 403 from Squid and leave no trace at the canary (no connection from
    anywhere during the probe) or, for names carrying the nonce, at the fake DNS.
    """
    for address in (net.canary.ipv4, net.canary_private_ipv4, "169.254.169.254"):
        # Every refused destination must be one of our canary's addresses, never a real one.
        if not route_is_local(egress_container, address):
            raise ProbeError(f"{egress_container} does not reach {address} on a test network: not probing it")
    results = []
    nonce = new_nonce()
    ok = exec_op(
        sb.agent,
        {
            "op": "connect",
            "proxy_host": egress_host,
            "proxy_port": egress_port,
            "target": f"{net.registry_name}:443",
            "tls_get": f"/simple/{nonce}/",
        },
    )
    hits = wait_for_hits(net.log(net.registry), nonce)
    reached = ok.get("status") == 200 and "200 OK" in ok.get("response", "") and bool(hits)
    results.append(
        verdict(
            "egress-allowlisted-registry",
            "registries",
            reached,
            f"CONNECT {net.registry_name}:443 -> {ok.get('status_line') or ok.get('error')}; "
            f"TLS {'ok' if ok.get('tls') else ok.get('tls_error')}; registry saw the nonce {len(hits)} times",
        )
    )
    canary_log = net.log(net.canary)
    cases = egress_cases(net, nonce)
    # Positive controls: from the egress proxy's own container, each destination does reach the canary.
    controls = {dest: bash_tcp_control(egress_container, canary_log, *dest) for dest in {c[3] for c in cases}}
    for name, target, kind, dest in cases:
        before = len(canary_log.events())
        op: Op = {
            "op": "connect",
            "proxy_host": egress_host,
            "proxy_port": egress_port,
            "target": target,
            "tls_get": f"/{nonce}",
        }
        if kind == "raw":
            op["raw"] = target
        r = exec_op(sb.agent, op)
        time.sleep(0.3)
        new_events = canary_log.events()[before:]
        dns_hits = net.log(net.dns).hits(nonce) if nonce in target else []
        refused = r.get("status") == 403
        detail = (
            f"{target.splitlines()[0] if kind == 'raw' else 'CONNECT ' + target} -> "
            f"{r.get('status_line') or r.get('error')}; canary events {len(new_events)}"
        )
        if dns_hits:
            detail += f"; the name reached the fake DNS ({len(dns_hits)})"
        ok_ = refused and not new_events and not dns_hits
        results.append(verdict(name, "registries", ok_, detail, controls[dest]))
    # The agent cannot skip the egress proxy and go to the registry directly.
    direct = exec_op(sb.agent, {"op": "tcp", "host": net.registry.ipv4, "port": 443, "send": f"{nonce}\n"})
    results.append(
        verdict(
            "egress-bypass-direct",
            "registries",
            not direct.get("connected"),
            f"{net.registry.ipv4}:443 -> {direct.get('error') or 'CONNECTED'}",
        )
    )
    return results
