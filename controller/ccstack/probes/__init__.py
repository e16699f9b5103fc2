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

The package, by attack surface (each module's probes, with what they need):

    results      ProbeResult, ProbeError, nonces, verdict(), the table `ccstack verify` prints
    containers   docker exec of probe_agent.js, inspection of containers and networks, host routes
    targets      Sandbox (the agent under test), FakeInternet, HostListener, their event logs
    network      the fake internet, the host, closed ports, proxy fetch tricks, IPv6, host names
    registries   registry egress through Squid: the allowlist holds
    credentials  the upstream key nowhere in the agent, the agent's token useless elsewhere
    privileges   capabilities, no_new_privs, seccomp, uid, sudo/su/setuid
    filesystem   read-only root and protected paths, mounts, sockets

Everything is re-exported here: ``from ccstack import probes; probes.probe_tcp(...)``.
"""

from __future__ import annotations

from ccstack.probes.containers import (
    AGENT_SCRIPT,
    Op,
    container_networks,
    docker,
    exec_op,
    exec_ops,
    exec_parallel,
    host_addresses,
    host_route_is_local,
    inspect,
    network_bridge,
    network_gateways,
    python_tcp,
)
from ccstack.probes.credentials import (
    probe_key_files,
    probe_key_inspect,
    probe_token_checked,
    probe_token_replay,
)
from ccstack.probes.filesystem import (
    SENSITIVE_MOUNT,
    STANDARD_MOUNTS,
    STANDARD_PREFIXES,
    VIRTUAL_FS,
    parse_mountinfo,
    probe_mounts,
    probe_sockets_and_agent_env,
    probe_writes,
)
from ccstack.probes.network import (
    PROXY_TRICKS,
    is_address,
    probe_dns,
    probe_dns_direct,
    probe_host_listener,
    probe_host_names,
    probe_ipv6_off,
    probe_ports_closed,
    probe_proxy_tricks,
    probe_tcp,
    probe_udp,
)
from ccstack.probes.privileges import (
    probe_no_escalation,
    probe_privileges,
    status_fields,
)
from ccstack.probes.registries import (
    bash_tcp_control,
    egress_cases,
    probe_egress,
    route_is_local,
    routes_locally,
)
from ccstack.probes.results import (
    Collector,
    ProbeError,
    ProbeResult,
    format_errors,
    format_table,
    new_nonce,
    verdict,
)
from ccstack.probes.targets import (
    Endpoint,
    Event,
    EventLog,
    FakeInternet,
    HostListener,
    Sandbox,
    under_gvisor,
    wait_for_hits,
)

__all__ = [
    "AGENT_SCRIPT",
    "PROXY_TRICKS",
    "SENSITIVE_MOUNT",
    "STANDARD_MOUNTS",
    "STANDARD_PREFIXES",
    "VIRTUAL_FS",
    "Collector",
    "Endpoint",
    "Event",
    "EventLog",
    "FakeInternet",
    "HostListener",
    "Op",
    "ProbeError",
    "ProbeResult",
    "Sandbox",
    "bash_tcp_control",
    "container_networks",
    "docker",
    "egress_cases",
    "exec_op",
    "exec_ops",
    "exec_parallel",
    "format_errors",
    "format_table",
    "host_addresses",
    "host_route_is_local",
    "inspect",
    "is_address",
    "network_bridge",
    "network_gateways",
    "new_nonce",
    "parse_mountinfo",
    "probe_dns",
    "probe_dns_direct",
    "probe_egress",
    "probe_host_listener",
    "probe_host_names",
    "probe_ipv6_off",
    "probe_key_files",
    "probe_key_inspect",
    "probe_mounts",
    "probe_no_escalation",
    "probe_ports_closed",
    "probe_privileges",
    "probe_proxy_tricks",
    "probe_sockets_and_agent_env",
    "probe_tcp",
    "probe_token_checked",
    "probe_token_replay",
    "probe_udp",
    "probe_writes",
    "python_tcp",
    "route_is_local",
    "routes_locally",
    "status_fields",
    "under_gvisor",
    "verdict",
    "wait_for_hits",
]
