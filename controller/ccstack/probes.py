"""Isolation probes: try to break out of the agent container, and prove each attempt was seen to fail.

A probe runs operations inside a container with ``docker exec`` (the runner is ``probe_agent.js``, piped
to the container's ``node``; nothing is installed or written into it). Every probe carries a fresh
nonce. A network probe passes only if it fails from the agent AND no log of the fake internet (canary,
fake DNS, host listener, fake registry) shows that nonce; the same probe run as a positive control from
a container that should reach the target must succeed and appear in the log, so a dead canary cannot
make a probe pass. Probes that need no fake internet (privileges, mounts, key search, ...) are what
``ccstack verify`` runs against a user's stack.

Every probe returns a ``ProbeResult``; nothing here raises on a failed probe (tests assert on results).
Only addresses of containers and networks the caller started are ever probed.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccstack.policy import DEFAULT_PROTECTED

AGENT_SCRIPT = Path(__file__).with_name("probe_agent.js")

Op = dict[str, Any]
Event = dict[str, Any]


class ProbeError(RuntimeError):
    """A probe could not run at all (container missing, no node in it, garbage output)."""


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe: ``passed`` means the isolation held (and the control, if any, worked)."""

    name: str
    area: str
    passed: bool
    detail: str
    control: bool | None = None  # the positive control reached the target (None: no control)

    def row(self) -> tuple[str, str, str, str, str]:
        control = "-" if self.control is None else ("reached" if self.control else "FAILED")
        return (self.area, self.name, "pass" if self.passed else "FAIL", control, self.detail)


def new_nonce() -> str:
    return "n" + secrets.token_hex(8)


# --- docker plumbing ----------------------------------------------------------------------------------


def docker(*args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["docker", *args], input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as e:
        raise ProbeError("the docker CLI is not installed") from e


def exec_ops(
    container: str, ops: Sequence[Op], *, user: str | None = None, timeout: float = 300
) -> list[Any]:
    """Run probe operations in ``container`` with its node; one result dict per operation."""
    args = ["exec", "-i"]
    if user is not None:
        args += ["-u", user]
    args += [container, "node", "-", json.dumps(list(ops))]
    proc = docker(*args, input=AGENT_SCRIPT.read_text(encoding="utf-8"), timeout=timeout)
    if proc.returncode != 0:
        raise ProbeError(
            f"docker exec {container} node failed ({proc.returncode}): {proc.stderr.strip()[:500]}"
        )
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise ProbeError(f"probe runner in {container} printed garbage: {proc.stdout[:300]!r}") from e
    if not isinstance(results, list) or len(results) != len(ops):
        raise ProbeError(f"probe runner in {container} returned {results!r:.300}")
    return results


def exec_parallel(
    container: str, ops: Sequence[Op], *, user: str | None = None, timeout: float = 300
) -> list[Any]:
    """Like exec_ops, but the operations run concurrently inside the container."""
    results: list[Any] = exec_ops(container, [{"op": "all", "ops": list(ops)}], user=user, timeout=timeout)[0]
    return results


def exec_op(container: str, op: Op, *, user: str | None = None, timeout: float = 300) -> dict[str, Any]:
    result: dict[str, Any] = exec_ops(container, [op], user=user, timeout=timeout)[0]
    return result


def python_tcp(container: str, host: str, port: int, send: str, timeout: float = 5) -> bool:
    """Positive control from a container that has python but maybe no node (the proxy): connect + send."""
    code = (
        "import socket,sys\n"
        f"s=socket.create_connection(({host!r},{port}),{timeout})\n"
        f"s.sendall({send!r}.encode())\n"
        "s.settimeout(2)\n"
        "try: s.recv(100)\nexcept OSError: pass\n"
    )
    for python in ("python3", "python"):
        proc = docker("exec", container, python, "-c", code, timeout=timeout + 10)
        if "executable file not found" in proc.stderr:
            continue
        return proc.returncode == 0
    raise ProbeError(f"no python in {container} for the positive control")


def inspect(container: str) -> dict[str, Any]:
    proc = docker("inspect", container)
    if proc.returncode != 0:
        raise ProbeError(f"docker inspect {container}: {proc.stderr.strip()}")
    data: list[dict[str, Any]] = json.loads(proc.stdout)
    return data[0]


def container_networks(container: str) -> dict[str, dict[str, Any]]:
    """network name -> its endpoint settings (IPAddress, GlobalIPv6Address, Gateway, ...)."""
    nets: dict[str, dict[str, Any]] = inspect(container)["NetworkSettings"]["Networks"]
    return nets


def network_gateways(network: str) -> list[str]:
    proc = docker("network", "inspect", network)
    if proc.returncode != 0:
        raise ProbeError(f"docker network inspect {network}: {proc.stderr.strip()}")
    configs = json.loads(proc.stdout)[0].get("IPAM", {}).get("Config") or []
    return [c["Gateway"] for c in configs if c.get("Gateway")]


def network_bridge(network: str) -> str:
    """The host interface of a bridge network (br-<id12> unless named by an option)."""
    data = json.loads(docker("network", "inspect", network).stdout)[0]
    return str(data.get("Options", {}).get("com.docker.network.bridge.name") or "br-" + data["Id"][:12])


def host_addresses(interface: str | None = None) -> list[dict[str, str]]:
    """The host's own addresses (``ip -j addr``): [{"ifname", "family", "local", "scope"}]."""
    cmd = ["ip", "-j", "addr", "show"] + (["dev", interface] if interface else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return []
    if r.returncode != 0:
        return []
    out = []
    for link in json.loads(r.stdout or "[]"):
        for a in link.get("addr_info", []):
            out.append(
                {"ifname": link["ifname"], "family": a["family"], "local": a["local"], "scope": a["scope"]}
            )
    return out


def host_route_is_local(address: str) -> bool:
    """Whether this host routes ``address`` to one of its own bridges (no gateway): a packet a container
    sends there through the host stays on this machine. An address of a network without a host address
    (``inhibit_ipv4``) would instead follow the host's default route out of the machine."""
    try:
        r = subprocess.run(["ip", "-j", "route", "get", address], capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    if r.returncode != 0:
        return False
    routes = json.loads(r.stdout or "[]")
    return bool(routes) and all(
        "gateway" not in route and str(route.get("dev", "")).startswith(("br-", "docker")) for route in routes
    )


# --- logs of the fake internet ------------------------------------------------------------------------


class EventLog:
    """JSON-lines events written by fakenet.py, in a container (``docker exec cat``) or a host file."""

    def __init__(self, *, container: str | None = None, path: str = "/log/events.jsonl") -> None:
        self.container = container
        self.path = path

    def events(self) -> list[Event]:
        if self.container is None:
            try:
                text = Path(self.path).read_text(encoding="utf-8")
            except FileNotFoundError:
                text = ""
        else:
            proc = docker("exec", self.container, "cat", self.path)
            if proc.returncode != 0:
                raise ProbeError(f"cannot read {self.path} in {self.container}: {proc.stderr.strip()}")
            text = proc.stdout
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def hits(self, nonce: str) -> list[Event]:
        return [e for e in self.events() if nonce.lower() in json.dumps(e).lower()]

    def alive(self) -> bool:
        return any(e.get("kind") == "ready" for e in self.events())


def wait_for_hits(log: EventLog, nonce: str, timeout: float = 3.0) -> list[Event]:
    deadline = time.monotonic() + timeout
    while True:
        hits = log.hits(nonce)
        if hits or time.monotonic() > deadline:
            return hits
        time.sleep(0.2)


# --- what the probes run against ----------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    container: str
    ipv4: str
    ipv6: str | None = None


@dataclass(frozen=True)
class FakeInternet:
    """The test-only fake internet (tests/isolation/compose.fakenet.yaml)."""

    canary: Endpoint
    dns: Endpoint
    registry: Endpoint
    canary_private_ipv4: str  # the canary's address on a private-range network (10.x)
    zone: str = "canary.test"  # the fake DNS answers every name under it with the canary
    registry_name: str = "registry.fake.test"  # allowlisted; resolves to the fake registry
    allowed_canary_name: str = "allowed-canary.fake.test"  # allowlisted; resolves to the canary
    rebind_name: str = "rebind.fake.test"  # allowlisted; resolves to the canary's private address
    tcp_ports: tuple[int, ...] = (22, 80, 443, 8080)
    udp_ports: tuple[int, ...] = (53, 123, 443)

    def log(self, ep: Endpoint) -> EventLog:
        return EventLog(container=ep.container)


@dataclass(frozen=True)
class HostListener:
    """A listener on the host's 0.0.0.0 and [::] (fakenet.py canary run as a host process)."""

    port: int
    log_path: Path

    @property
    def log(self) -> EventLog:
        return EventLog(path=str(self.log_path))


@dataclass(frozen=True)
class Sandbox:
    """The agent container under test and what is expected of it."""

    agent: str
    proxy: str
    proxy_host: str = "proxy"
    proxy_port: int = 8787
    workdir: str = "/workspace"
    host_workdir: Path | None = None
    expected_uid: int | None = None
    # Read-only workdir paths ("/" ends a directory): compose.yaml's baseline by default; a session
    # started the `ccstack claude` way has more (ccstack.protection).
    protected: tuple[str, ...] = DEFAULT_PROTECTED
    extra_mounts: tuple[str, ...] = ()  # mount points allowed besides the standard ones
    agent_network: str | None = None


# --- helpers for results ------------------------------------------------------------------------------


def _fmt_errors(results: Iterable[dict[str, Any]]) -> str:
    return ", ".join(str(r.get("error") or r.get("status_line") or "connected") for r in results)


def _result(name: str, area: str, ok: bool, detail: str, control: bool | None = None) -> ProbeResult:
    passed = ok and control is not False
    return ProbeResult(name=name, area=area, passed=passed, detail=detail, control=control)


def _is_address(host: str) -> bool:
    return ":" in host or bool(re.fullmatch(r"[0-9.]+", host))


# --- network probes (need the fake internet) ----------------------------------------------------------


def probe_tcp(sb: Sandbox, net: FakeInternet, control: str, *, ipv6: bool = False) -> ProbeResult:
    """TCP to every canary port, by IPv4 or IPv6: refused from the agent, logged from the control."""
    host = net.canary.ipv6 if ipv6 else net.canary.ipv4
    name = f"tcp-canary-ipv{6 if ipv6 else 4}"
    if host is None:
        return _result(name, "network", False, "the canary has no IPv6 address (engine without IPv6?)")
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
    detail = f"agent: {_fmt_errors(agent)}; canary hits {len(hits)}; ports {list(net.tcp_ports)}"
    if leaked:
        detail = f"agent CONNECTED to ports {leaked}; " + detail
    return _result(name, "network", not leaked and not hits, detail, ctrl_ok)


def probe_udp(sb: Sandbox, net: FakeInternet, control: str, *, ipv6: bool = False) -> ProbeResult:
    host = net.canary.ipv6 if ipv6 else net.canary.ipv4
    name = f"udp-canary-ipv{6 if ipv6 else 4}"
    if host is None:
        return _result(name, "network", False, "the canary has no IPv6 address (engine without IPv6?)")
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
    return _result(name, "network", not hits and not answered, detail, ctrl_ok)


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
    return _result("dns-resolver", "dns", not agent.get("addresses") and not hits, detail, ctrl_ok)


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
    return _result("dns-direct-server", "dns", not got.get("addresses") and not hits, detail, ctrl_ok)


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
        if _is_address(t):  # UDP to literal addresses only
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
    return _result(name, "host", not connected and not hits, detail, ctrl_ok)


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
    return _result(name, area, not open_, detail, None if control is None else control())


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
    return _result("proxy-fetch-tricks", "proxy", reached and not hits, detail, ctrl)


# --- registry egress (Squid) --------------------------------------------------------------------------


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
        _result(
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
        results.append(_result(name, "registries", ok_, detail, controls[dest]))
    # The agent cannot skip the egress proxy and go to the registry directly.
    direct = exec_op(sb.agent, {"op": "tcp", "host": net.registry.ipv4, "port": 443, "send": f"{nonce}\n"})
    results.append(
        _result(
            "egress-bypass-direct",
            "registries",
            not direct.get("connected"),
            f"{net.registry.ipv4}:443 -> {direct.get('error') or 'CONNECTED'}",
        )
    )
    return results


# --- credentials --------------------------------------------------------------------------------------


def probe_key_inspect(container: str, key: str) -> ProbeResult:
    """The upstream key in ``docker inspect`` of the agent container or its image."""
    data = inspect(container)
    image = docker("image", "inspect", data["Image"]).stdout
    count = json.dumps(data).count(key) + image.count(key)
    return _result("key-docker-inspect", "credentials", count == 0, f"occurrences {count}")


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
    return _result("key-in-agent-files-environ", "credentials", ok, detail, upstream_saw_key)


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
    return _result("token-checked", "credentials", ok, detail)


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
    return _result("token-replay-other-container", "credentials", not accepted, detail)


# --- privileges, files, mounts ------------------------------------------------------------------------


def _under_gvisor(sb: Sandbox) -> bool:
    """The agent container runs under gVisor (runsc): Docker's record, not the agent's word."""
    from ccstack import gvisor_probes

    return gvisor_probes.agent_is_gvisor(sb.agent)


def _status_fields(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if k}


def probe_privileges(sb: Sandbox) -> ProbeResult:
    """/proc/self/status and /proc/1/status: no capabilities, no new privileges, seccomp filter, not root."""
    if _under_gvisor(sb):
        from ccstack import gvisor_probes  # gVisor's /proc shows these differently

        return gvisor_probes.probe_privileges(sb)
    own, pid1, ident = exec_ops(
        sb.agent,
        [
            {"op": "read", "path": "/proc/self/status"},
            {"op": "read", "path": "/proc/1/status"},
            {"op": "identity"},
        ],
    )
    problems = []
    for label, res in (("exec", own), ("pid1", pid1)):
        if not res.get("ok"):
            problems.append(f"{label}: cannot read status ({res.get('error')})")
            continue
        f = _status_fields(res["text"])
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            if int(f.get(cap, "1"), 16) != 0:
                problems.append(f"{label} {cap}={f.get(cap)}")
        if f.get("NoNewPrivs") != "1":
            problems.append(f"{label} NoNewPrivs={f.get('NoNewPrivs')}")
        if f.get("Seccomp") != "2":
            problems.append(f"{label} Seccomp={f.get('Seccomp')}")
        uids = f.get("Uid", "0").split()
        if "0" in uids:
            problems.append(f"{label} runs as uid {uids}")
    uid = ident.get("uid")
    if sb.expected_uid is not None and uid != sb.expected_uid:
        problems.append(f"exec uid {uid} != expected {sb.expected_uid}")
    detail = "; ".join(problems) or f"uid {uid}, CapEff 0, CapBnd 0, NoNewPrivs 1, Seccomp 2 (exec and pid 1)"
    return _result("privileges", "privilege", not problems, detail)


def probe_no_escalation(sb: Sandbox) -> ProbeResult:
    """sudo / su / setuid binaries: absent or failing."""
    runs = exec_ops(
        sb.agent,
        [
            {"op": "run", "argv": ["sudo", "-n", "id", "-u"]},
            {"op": "run", "argv": ["su", "-c", "id -u", "root"], "input": "\n"},
            {"op": "run", "argv": ["sh", "-c", "find / -xdev -perm -4000 -type f 2>/dev/null | head -20"]},
        ],
    )
    sudo, su, suid = runs
    escalated = [r for r in (sudo, su) if r.get("status") == 0 and r.get("stdout", "").strip() == "0"]
    suid_list = suid.get("stdout", "").split()
    detail = (
        f"sudo: {sudo.get('error') or 'exit ' + str(sudo.get('status'))}; "
        f"su: {su.get('error') or 'exit ' + str(su.get('status'))}; setuid files: {suid_list or 'none'}"
    )
    return _result("sudo-su", "privilege", not escalated, detail)


def probe_writes(sb: Sandbox) -> list[ProbeResult]:
    """Writes to the root filesystem and the protected workdir paths refused; the workdir writable."""
    nonce = new_nonce()
    rootfs = ["/" + nonce, f"/usr/local/bin/{nonce}", f"/etc/{nonce}", f"/opt/{nonce}"]
    ops: list[Op] = [{"op": "write", "path": p, "cleanup": True} for p in rootfs]
    protected_ops: list[Op] = []
    for rel in sb.protected:
        full = f"{sb.workdir}/{rel.rstrip('/')}"
        if not rel.endswith("/"):
            protected_ops.append({"op": "write", "path": full, "mode": "append", "content": f"\n# {nonce}\n"})
            protected_ops.append({"op": "stat", "path": full})
        else:
            protected_ops.append({"op": "write", "path": f"{full}/{nonce}", "cleanup": True})
            protected_ops.append({"op": "stat", "path": full})
    work = {"op": "write", "path": f"{sb.workdir}/{nonce}.txt", "content": nonce}
    res = exec_ops(sb.agent, [*ops, *protected_ops, work])
    out = []
    written = [p for p, r in zip(rootfs, res, strict=False) if r.get("ok")]
    out.append(
        _result(
            "write-rootfs",
            "files",
            not written,
            ", ".join(f"{p}: {r.get('error') or 'WRITTEN'}" for p, r in zip(rootfs, res, strict=False)),
        )
    )
    pres = res[len(rootfs) : len(rootfs) + len(protected_ops)]
    details, bad = [], []
    for i, rel in enumerate(sb.protected):
        wr, st = pres[2 * i], pres[2 * i + 1]
        if wr.get("ok"):
            bad.append(rel)
        state = "exists" if st.get("exists") else "MISSING"
        details.append(f"{rel} ({state}): {wr.get('error') or 'WRITTEN'}")
        if not st.get("exists"):
            bad.append(rel + " (missing: a later host-side creation would not be protected)")
    out.append(_result("write-protected-paths", "files", not bad, "; ".join(details)))
    wres = res[-1]
    uid_ok = wres.get("ok") and (sb.expected_uid is None or wres.get("uid") == sb.expected_uid)
    detail = f"write {wres.get('error') or 'ok'}, uid {wres.get('uid')} (expected {sb.expected_uid})"
    if sb.host_workdir is not None and wres.get("ok"):
        host_file = sb.host_workdir / f"{nonce}.txt"
        try:
            st = host_file.stat()
            detail += f", on the host uid {st.st_uid} content ok {host_file.read_text() == nonce}"
            uid_ok = uid_ok and (sb.expected_uid is None or st.st_uid == sb.expected_uid)
            uid_ok = uid_ok and host_file.read_text() == nonce
            host_file.unlink()
        except OSError as e:
            uid_ok = False
            detail += f", not seen on the host ({e})"
    elif wres.get("ok"):
        exec_op(sb.agent, {"op": "run", "argv": ["rm", "-f", f"{sb.workdir}/{nonce}.txt"]})
    out.append(_result("write-workdir-owned-by-user", "files", bool(uid_ok), detail))
    return out


STANDARD_MOUNTS = (
    "/",
    "/proc",
    "/dev",
    "/dev/pts",
    "/dev/mqueue",
    "/dev/shm",
    "/sys",
    "/sys/fs/cgroup",
    "/sys/firmware",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/etc/hosts",
    "/dev/console",
    "/usr/sbin/docker-init",  # the engine's tini (compose `init: true`), read-only
)
SENSITIVE_MOUNT = re.compile(r"docker\.sock|/\.ssh|\.aws|\.config/gcloud|\.claude\.json$|\.gnupg")
STANDARD_PREFIXES = ("/proc/", "/sys/fs/cgroup/", "/dev/")
# Filesystems that carry nothing of the host (scratch space, kernel views).
VIRTUAL_FS = frozenset({"tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"})


def parse_mountinfo(text: str) -> list[tuple[str, str, str, str]]:
    """(mount point, options, fstype, source) per line of /proc/<pid>/mountinfo."""
    out = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 6 or len(rest) < 2:
            continue
        out.append((fields[4], fields[5], rest[0], rest[1]))
    return out


def probe_mounts(sb: Sandbox) -> ProbeResult:
    """/proc/self/mountinfo: host files only at the workdir, its read-only overlays and declared extras."""
    res = exec_op(sb.agent, {"op": "read", "path": "/proc/self/mountinfo"})
    if not res.get("ok"):
        return _result("mounts", "files", False, f"cannot read mountinfo: {res.get('error')}")
    protected = {f"{sb.workdir}/{p.rstrip('/')}" for p in sb.protected}
    allowed = set(STANDARD_MOUNTS) | {sb.workdir} | protected | set(sb.extra_mounts)
    problems, scratch, host_mounts = [], [], []
    mounts = parse_mountinfo(res["text"])
    for mount_point, options, fstype, _source in mounts:
        ro = "ro" in options.split(",")
        if mount_point in protected and not ro:
            problems.append(f"{mount_point} is writable")
        sensitive = re.search(
            r"docker\.sock|/\.ssh|\.aws|\.config/gcloud|\.claude\.json$|\.gnupg", mount_point
        )
        # The workdir's own copies (a read-only guard over /workspace/.claude.json) are not host secrets.
        if sensitive and not (mount_point in protected and ro):
            problems.append(f"sensitive mount {mount_point}")
        if mount_point in STANDARD_MOUNTS or mount_point.startswith(STANDARD_PREFIXES):
            continue
        if fstype in VIRTUAL_FS:
            scratch.append(f"{mount_point} ({fstype})")
            continue
        host_mounts.append(mount_point)
        if mount_point not in allowed:
            problems.append(f"unexpected host mount {mount_point} ({fstype}{', ro' if ro else ', rw'})")
    detail = "; ".join(problems) or (
        f"{len(mounts)} mounts; host mounts {sorted(host_mounts)}; scratch {scratch or 'none'}"
    )
    return _result("mounts", "files", not problems, detail)


def probe_sockets_and_agent_env(sb: Sandbox) -> ProbeResult:
    """No docker socket (any unix socket on the filesystem), no SSH_AUTH_SOCK / DOCKER_HOST anywhere."""
    socks, env = exec_ops(
        sb.agent,
        [{"op": "sockets"}, {"op": "search", "needles": ["SSH_AUTH_SOCK=", "DOCKER_HOST="], "roots": []}],
    )
    fs_socks = socks.get("filesystem", [])
    problems = [f"socket {s}" for s in fs_socks]
    problems += [f"docker socket listed by the kernel: {s}" for s in socks.get("kernel", []) if "docker" in s]
    problems += [f"ssh/docker env in {m}" for m in env.get("matches", [])]
    procs = env.get("processes")
    detail = (
        "; ".join(problems)
        or f"no sockets on the filesystem; SSH_AUTH_SOCK/DOCKER_HOST in none of {procs} processes"
    )
    return _result("docker-socket-ssh-agent", "files", not problems, detail)


def probe_ipv6_off(sb: Sandbox) -> ProbeResult:
    if _under_gvisor(sb):
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
    return _result(
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
    return _result(
        "host-names",
        "host",
        not resolved and not in_hosts,
        f"resolved {resolved or 'none'}; in /etc/hosts {in_hosts or 'none'}",
    )


def format_table(results: Sequence[ProbeResult], *, width: int = 100) -> str:
    """A plain-text table (area, probe, result, control, detail) and a summary line."""
    rows = [("area", "probe", "result", "control", "detail")] + [r.row() for r in results]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for r in rows:
        detail = r[4] if len(r[4]) <= width else r[4][: width - 3] + "..."
        lines.append("  ".join(c.ljust(w[i]) for i, c in enumerate(r[:4])) + "  " + detail)
    passed = sum(r.passed for r in results)
    lines.append(f"{passed}/{len(results)} probes passed")
    return "\n".join(lines)


@dataclass
class Collector:
    """Results gathered over a test session (the suite writes the table at the end)."""

    results: list[ProbeResult] = field(default_factory=list)

    def add(self, *results: ProbeResult) -> None:
        self.results.extend(results)
