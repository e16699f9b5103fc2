"""What the probes run against: the agent (:class:`Sandbox`), the fake internet of the isolation suite
and a listener on the host, and the logs in which they record every nonce they see."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccstack.policy import DEFAULT_PROTECTED
from ccstack.probes.containers import docker
from ccstack.probes.results import ProbeError

Event = dict[str, Any]


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


def under_gvisor(sb: Sandbox) -> bool:
    """The agent container runs under gVisor (runsc): Docker's record, not the agent's word."""
    from ccstack import gvisor_probes

    return gvisor_probes.agent_is_gvisor(sb.agent)
