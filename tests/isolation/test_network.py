"""The agent reaches the proxy and nothing else: not the (fake) internet over TCP/UDP, IPv4 or IPv6,
not DNS, not the host, not the model server, not the proxy's other ports. Each probe has a positive
control from a container that should reach the target, so a dead canary cannot make a probe pass."""

from __future__ import annotations

import pytest
from ccstack import probes

pytestmark = pytest.mark.isolation

PROJECT = "ccsandbox-iso"


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_tcp_to_canary(iso, net, record, ipv6: bool) -> None:
    r = probes.probe_tcp(iso.sandbox, net, iso.control, ipv6=ipv6)
    record(r)
    assert r.passed, r.detail


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_udp_to_canary(iso, net, record, ipv6: bool) -> None:
    r = probes.probe_udp(iso.sandbox, net, iso.control, ipv6=ipv6)
    record(r)
    assert r.passed, r.detail


def test_dns_names_never_leave(iso, net, record) -> None:
    r = probes.probe_dns(iso.sandbox, net, iso.control)
    record(r)
    assert r.passed, r.detail


def test_dns_server_not_reachable_directly(iso, net, record) -> None:
    r = probes.probe_dns_direct(iso.sandbox, net, iso.control)
    record(r)
    assert r.passed, r.detail


def test_ipv6_disabled_in_agent(iso, record) -> None:
    r = probes.probe_ipv6_off(iso.sandbox)
    record(r)
    assert r.passed, r.detail


def test_no_host_gateway_names(iso, record) -> None:
    r = probes.probe_host_names(iso.sandbox)
    record(r)
    assert r.passed, r.detail


def test_host_listener_unreachable(iso, host_listener, record) -> None:
    """A service on the host's 0.0.0.0/[::]: via the agent network's gateway, every host address,
    host.docker.internal and the IPv6 link-local address of the agent's bridge."""
    agent_net = f"{PROJECT}_agent"
    agent_bridge = probes.network_bridge(agent_net)
    addrs = probes.host_addresses()
    targets = probes.network_gateways(agent_net)
    targets += [a["local"] for a in addrs if a["scope"] == "global"]
    targets += [f"{a['local']}%eth0" for a in probes.host_addresses(agent_bridge) if a["family"] == "inet6"]
    targets += ["host.docker.internal", "gateway.docker.internal"]
    fake_bridge = probes.network_bridge(f"{PROJECT}_fakenet")
    control_targets = [
        a["local"] + ("%eth0" if a["scope"] == "link" else "") for a in probes.host_addresses(fake_bridge)
    ]
    assert control_targets, f"no host address on {fake_bridge}: the control has no path to the host"
    r = probes.probe_host_listener(
        iso.sandbox,
        host_listener,
        list(dict.fromkeys(targets)),
        control=iso.control,
        control_targets=control_targets,
    )
    record(r)
    assert r.passed, r.detail


def test_model_server_unreachable(iso, record) -> None:
    """The model server (here the scripted upstream on the backend network), by name and address."""
    backend_ip = probes.container_networks(iso.upstream)[f"{PROJECT}_backend"]["IPAddress"]
    targets = [("scripted-upstream", 8080), (backend_ip, 8080), ("llama-server", 8080)]
    r = probes.probe_ports_closed(
        iso.sandbox,
        targets,
        name="model-server-direct",
        control=lambda: probes.python_tcp(iso.proxy, backend_ip, 8080, "GET /health HTTP/1.0\r\n\r\n"),
    )
    record(r)
    assert r.passed, r.detail


def test_proxy_other_ports_and_addresses(iso, record) -> None:
    """Only the proxy's API port on its agent-network address; not its other ports or networks."""
    nets = probes.container_networks(iso.proxy)
    agent_ip = nets[f"{PROJECT}_agent"]["IPAddress"]
    targets = [(agent_ip, p) for p in (22, 80, 443, 3128, 8000, 8080, 8788, 9090)]
    targets += [(n["IPAddress"], 8787) for name, n in nets.items() if name != f"{PROJECT}_agent"]

    def api_reachable() -> bool:
        r = probes.exec_op(
            iso.sandbox.agent, {"op": "tcp", "host": "proxy", "port": 8787, "send": "GET / HTTP/1.0\r\n\r\n"}
        )
        return bool(r.get("connected"))

    r = probes.probe_ports_closed(iso.sandbox, targets, name="proxy-other-ports", control=api_reachable)
    record(r)
    assert r.passed, r.detail
