"""Docker plumbing of the probes: ``docker exec`` of ``probe_agent.js`` (piped to the container's
``node``; nothing is installed or written into it), inspection of containers and networks, the host's
addresses and routes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ccstack.probes.results import ProbeError

AGENT_SCRIPT = Path(__file__).resolve().parents[1] / "probe_agent.js"

Op = dict[str, Any]


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
