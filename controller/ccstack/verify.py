"""``ccstack verify`` (``just verify``): the isolation self-check against your running stack.

    ccstack verify [--agent CONTAINER] [--state-dir DIR] [--no-host-listener] [--json]

Runs the non-destructive subset of the isolation probes (ccstack.probes) and prints a table:
privileges (capabilities, no-new-privileges, seccomp, not root), sudo/su, writes to the root
filesystem and to the protected workdir paths refused, the workdir writable and owned by you, the
mounts, no docker socket or ssh agent, IPv6 off, no host gateway names, a listener on this host's
0.0.0.0 and [::] unreachable from the agent, the proxy's other ports and the model server closed to
the agent, the upstream key nowhere in the agent (``docker inspect``, every process environment, every
readable file), the agent's token checked by the proxy, the Docker Engine's DNS behaviour, and the
agent's runtime (runc, or gVisor's runsc when the stack asks for it; ``uname -r`` in the agent shows
which kernel answers it: gVisor's 4.4.0 under runsc).

Unless ``--agent`` names a running agent container, a throwaway one is started with
``docker compose run`` (exactly how ``ccstack claude`` starts it) on an empty temporary workdir, so
nothing is written to your projects; it is removed at the end. Nothing is sent anywhere but to this
host and the stack's own containers. Exit status 0 when every probe passed, 1 otherwise.

What it cannot check without the test suite's fake internet (tests/isolation): that no packet and no
DNS query leaves through some path nobody thought of; run ``just test isolation`` for that.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from ccstack import agent_session, gvisor_probes, probes
from ccstack.checks import check_docker
from ccstack.compose import run_compose
from ccstack.errors import StackError
from ccstack.protection import GIT_EXCLUDES_TARGET, Protection
from ccstack.state import Paths, State, default_paths, load_state

AGENT_MOUNTS = (
    "/etc/claude-code/managed-settings.json",
    "/home/claude/.claude",
    "/run/secrets/proxy_token",
    GIT_EXCLUDES_TARGET,  # a session's list of its placeholder files (read-only), for git in the sandbox
)
PROXY_EXTRA_PORTS = (22, 80, 443, 3128, 8000, 8080, 8788, 9090)


class _Listener:
    """A TCP listener on this host's 0.0.0.0 and [::] (one port) that records what it receives."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind(("::", 0))
        self.port: int = v6.getsockname()[1]
        v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        v4.bind(("0.0.0.0", self.port))
        for s in (v4, v6):
            s.listen(16)
            s.settimeout(0.5)
            self._socks.append(s)
            threading.Thread(target=self._loop, args=(s,), daemon=True).start()

    def _loop(self, s: socket.socket) -> None:
        while self._socks:
            try:
                conn, peer = s.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    data = conn.recv(4096).decode("latin-1")
                except OSError:
                    data = ""
            with self._lock:
                self.received.append(f"{peer} {data}")

    def hits(self, nonce: str) -> list[str]:
        with self._lock:
            return [r for r in self.received if nonce in r]

    def close(self) -> None:
        socks, self._socks = self._socks, []
        for s in socks:
            s.close()


def probe_host_listener_local(sb: probes.Sandbox, network: str | None) -> probes.ProbeResult:
    """A listener on this host (0.0.0.0 and [::]): unreachable from the agent by every host address."""
    listener = _Listener()
    try:
        targets: list[str] = []
        if network:
            with contextlib.suppress(probes.ProbeError, IndexError, KeyError, json.JSONDecodeError):
                targets += probes.network_gateways(network)
                bridge = probes.network_bridge(network)
                targets += [
                    f"{a['local']}%eth0" for a in probes.host_addresses(bridge) if a["family"] == "inet6"
                ]
        targets += [a["local"] for a in probes.host_addresses() if a["scope"] == "global"]
        targets += ["host.docker.internal", "gateway.docker.internal"]
        targets = list(dict.fromkeys(targets))
        nonce = probes.new_nonce()
        ops = [
            {"op": "tcp", "host": t, "port": listener.port, "send": f"{nonce}\n", "timeout_ms": 2000}
            for t in targets
        ]
        res = probes.exec_ops(sb.agent, [{"op": "all", "ops": ops}])[0]
        time.sleep(0.5)
        reached = [t for t, r in zip(targets, res, strict=True) if r.get("connected")]
        hits = listener.hits(nonce)
        detail = f"{len(targets)} host addresses/names tried, reached {reached or 'none'}; hits {len(hits)}"
        return probes.ProbeResult("host-listener", "host", not reached and not hits, detail)
    finally:
        listener.close()


def _nameservers(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    return [
        p[1] for p in (line.split() for line in text.splitlines()) if len(p) >= 2 and p[0] == "nameserver"
    ]


def engine_dns_verdict(version: str, host_resolvers: Sequence[str]) -> tuple[bool, str]:
    """Docker Engine < 26 forwards DNS queries of containers on internal networks from the host's own
    namespace when its upstream resolver is a loopback address (CVE-2024-29018): a DNS leak."""
    m = re.match(r"(\d+)", version)
    major = int(m.group(1)) if m else 0
    loopback = [ns for ns in host_resolvers if ns.startswith("127.") or ns == "::1"]
    ok = major >= 26 or not loopback
    detail = f"engine {version or '?'}; loopback upstream resolvers: {loopback or 'none'}"
    if not ok:
        detail += " -> upgrade Docker Engine to 26+: the agent's DNS queries can leak through the host"
    return ok, detail


def probe_engine_dns() -> probes.ProbeResult:
    version = probes.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    resolvers = _nameservers(Path("/etc/resolv.conf"))
    if resolvers == ["127.0.0.53"]:  # systemd-resolved's stub: Docker uses the real upstreams instead
        resolvers = _nameservers(Path("/run/systemd/resolve/resolv.conf")) or resolvers
    ok, detail = engine_dns_verdict(version, resolvers)
    return probes.ProbeResult("engine-dns-forwarding", "dns", ok, detail)


def _find_agent(project: str) -> str | None:
    r = probes.docker(
        "ps",
        "--filter",
        f"label=com.docker.compose.project={project}",
        "--filter",
        "label=com.docker.compose.service=claude-sandbox",
        "--format",
        "{{.Names}}",
    )
    names = [n for n in r.stdout.split() if n]
    return names[0] if names else None


@contextlib.contextmanager
def throwaway_agent(paths: Paths, state: State, uid: int, gid: int) -> Iterator[tuple[str, Path, Protection]]:
    """A fresh agent container on an empty temporary workdir, started the way `ccstack claude` starts
    one (its protective mounts and placeholders); removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="ccstack-verify-"))
    name = f"{state.project}-verify-{secrets.token_hex(3)}"
    prepared = None
    try:
        if os.getuid() == 0:
            os.chown(workdir, uid, gid)
        prepared = agent_session.prepare(paths, workdir, uid, gid)
        r = run_compose(
            paths,
            agent_session.session_state(state, prepared),
            ["run", "--detach", "--name", name, "claude-sandbox", "sleep", "900"],
            capture=True,
            env={"CCSANDBOX_WORKDIR": str(workdir)},
            check=False,
        )
        if r.returncode != 0:
            raise StackError(f"could not start a sandbox container to verify:\n{r.stderr.strip()[-2000:]}")
        for _ in range(60):
            if probes.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true":
                break
            time.sleep(0.5)
        yield name, workdir, prepared.protection
    finally:
        probes.docker("rm", "-f", name)
        if prepared is not None:
            agent_session.finish(paths, prepared)
        shutil.rmtree(workdir, ignore_errors=True)


def run_probes(
    sb: probes.Sandbox,
    *,
    proxy_container: str | None,
    network: str | None,
    key: str | None,
    token: str | None,
    host_listener: bool = True,
    writes: bool = True,
    runtime: str | None = None,
) -> list[probes.ProbeResult]:
    """The non-destructive probes against one agent container (each failure is a result, not an error)."""
    results: list[probes.ProbeResult] = []

    def attempt(name: str, area: str, fn: object) -> None:
        try:
            out = fn()  # type: ignore[operator]
        except (probes.ProbeError, OSError, subprocess.SubprocessError, KeyError, ValueError) as e:
            results.append(probes.ProbeResult(name, area, False, f"could not run: {e}"))
            return
        results.extend(out if isinstance(out, list) else [out])

    attempt("privileges", "privilege", lambda: probes.probe_privileges(sb))
    attempt("sudo-su", "privilege", lambda: probes.probe_no_escalation(sb))
    if writes:
        attempt("writes", "files", lambda: probes.probe_writes(sb))
    attempt("mounts", "files", lambda: probes.probe_mounts(sb))
    attempt("docker-socket-ssh-agent", "files", lambda: probes.probe_sockets_and_agent_env(sb))
    attempt("ipv6-disabled", "network", lambda: probes.probe_ipv6_off(sb))
    attempt("host-names", "host", lambda: probes.probe_host_names(sb))
    if host_listener:
        attempt("host-listener", "host", lambda: probe_host_listener_local(sb, network))
    if proxy_container:

        def proxy_ports() -> probes.ProbeResult:
            nets = probes.container_networks(proxy_container)
            agent_ip = nets[network]["IPAddress"] if network in nets else sb.proxy_host
            targets = [(agent_ip, p) for p in PROXY_EXTRA_PORTS]
            targets += [(n["IPAddress"], sb.proxy_port) for name, n in nets.items() if name != network]
            targets += [("llama-server", 8080), ("scripted-upstream", 8080)]
            return probes.probe_ports_closed(sb, targets, name="proxy-other-ports-model-server")

        attempt("proxy-other-ports-model-server", "network", proxy_ports)
    if key:
        attempt("key-docker-inspect", "credentials", lambda: probes.probe_key_inspect(sb.agent, key))
        attempt("key-in-agent-files-environ", "credentials", lambda: probes.probe_key_files(sb, key))
    if token:
        attempt("token-checked", "credentials", lambda: probes.probe_token_checked(sb, token))
    attempt("engine-dns-forwarding", "dns", probe_engine_dns)
    attempt("agent-runtime", "kernel", lambda: gvisor_probes.probe_runtime(sb, runtime))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ccstack verify", description=__doc__.splitlines()[0])
    parser.add_argument("--agent", help="a running agent container (default: start a throwaway one)")
    parser.add_argument("--state-dir", type=Path, help="the stack's state directory (default: .stack)")
    parser.add_argument("--no-host-listener", action="store_true", help="skip the host listener probe")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    if args.state_dir:
        environ["CCSANDBOX_STATE_DIR"] = str(args.state_dir)
    try:
        check_docker()
        paths = default_paths(environ)
        state = load_state(paths)
        uid = int(state.env.get("CCSANDBOX_UID", "1000"))
        gid = int(state.env.get("CCSANDBOX_GID", str(uid)))
        key = paths.upstream_key.read_text(encoding="utf-8").strip() if paths.upstream_key.exists() else None
        token = paths.token.read_text(encoding="utf-8").strip() if paths.token.exists() else None
        proxy = f"{state.project}-proxy-1"
        network = f"{state.project}_agent"
        with contextlib.ExitStack() as cleanup:
            agent = args.agent
            host_workdir = None
            sb = probes.Sandbox(
                agent=agent or "",
                proxy=proxy,
                expected_uid=uid,
                extra_mounts=AGENT_MOUNTS,
                agent_network=network,
            )
            if agent is None:
                agent, host_workdir, protection = cleanup.enter_context(
                    throwaway_agent(paths, state, uid, gid)
                )
                pins = tuple(g.target for g in protection.guards if g.kind == "pin")
                sb = dataclasses.replace(
                    sb,
                    agent=agent,
                    host_workdir=host_workdir,
                    protected=tuple(g.path + ("/" if g.is_dir else "") for g in protection.read_only),
                    extra_mounts=AGENT_MOUNTS + pins,
                )
            results = run_probes(
                sb,
                proxy_container=proxy,
                network=network,
                key=key,
                token=token,
                host_listener=not args.no_host_listener,
                writes=host_workdir is not None,  # never write into the project of a running session
                runtime=state.extra.get("runtime") if args.agent is None else None,
            )
    except StackError as e:
        print(f"ccstack verify: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(probes.format_table(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
