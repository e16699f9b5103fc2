"""`ccstack status`: what runs, where the proxy answers, whether its upstream does, and what the
backend is doing (one llama-server's slots: ccstack.slots_status; a pool's servers: ccstack.pool_status).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from ccstack import pool_status, slots_status
from ccstack.checks import check_docker
from ccstack.compose import service_table
from ccstack.modes import parse_mode
from ccstack.runtime import describe
from ccstack.state import Paths, State, load_state


@dataclass(frozen=True)
class Status:
    """What `status` found; ``healthy`` is whether the proxy's upstream answers."""

    mode: str
    project: str
    model: str | None
    runtime: str  # described by Docker, or why Docker could not be asked
    services: str  # the table of services, or why Compose could not list them
    urls: dict[str, str]
    health: tuple[int, str] | None = None  # the proxy's /health (None: no URL on this host)
    hint: str | None = None  # what to do when the upstream does not answer
    backend: tuple[str, ...] = ()  # llama-server's slots (idle, a prefill, generating) or the pool's servers

    @property
    def healthy(self) -> bool:
        return self.health is not None and self.health[0] == 200


def container_ip(state: State, service: str, network_suffix: str) -> str | None:
    import docker

    client = docker.from_env()
    found = client.containers.list(
        filters={
            "label": [f"com.docker.compose.project={state.project}", f"com.docker.compose.service={service}"]
        }
    )
    for c in found:
        nets = c.attrs["NetworkSettings"]["Networks"]
        net = nets.get(f"{state.project}_{network_suffix}")
        if net and net.get("IPAddress"):
            return str(net["IPAddress"])
    return None


def proxy_urls(state: State) -> dict[str, str]:
    urls = {"in the stack (the agent)": "http://proxy:8787"}
    if state.publish_port:
        urls["on this host"] = f"http://127.0.0.1:{state.publish_port}"
    else:
        ip = container_ip(state, "proxy", "backend")
        if ip:
            urls["on this host (Linux; --publish PORT for a fixed port)"] = f"http://{ip}:8787"
    return urls


def proxy_health(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except OSError as e:
        return 0, str(e)


def status(paths: Paths) -> Status:
    """The stack's state as found now (Docker asked; nothing changed)."""
    check_docker()
    state = load_state(paths)
    runtime_name = state.extra.get("runtime") or "runc"
    try:
        runtime = describe(runtime_name)
    except Exception as e:  # docker info failing must not hide the rest of the status
        runtime = f"{state.extra.get('runtime')} (cannot ask Docker: {e})"
    urls = proxy_urls(state)
    host_urls = [u for w, u in urls.items() if w.startswith("on this host")]
    health = proxy_health(host_urls[0]) if host_urls else None
    backend: list[str] = []
    # a pool: HAProxy's view of its servers; one llama-server: its slots
    service, reader = (
        ("haproxy", pool_status.read) if "haproxy" in state.services else ("llama-server", slots_status.read)
    )
    if service in state.services:
        try:
            backend = reader(state.project)
        except Exception as e:  # a backend that cannot be asked must not hide the rest of the status
            backend = [f"cannot ask {service} ({type(e).__name__}: {str(e)[:200]})"]
    return Status(
        mode=state.mode,
        project=state.project,
        model=state.extra.get("model"),
        runtime=runtime,
        services=service_table(paths, state),
        urls=urls,
        health=health,
        hint=parse_mode(state.mode).unreachable_hint,
        backend=tuple(backend),
    )


def format_status(st: Status) -> str:
    """What `ccstack status` prints."""
    lines = [
        f"mode: {st.mode}   project: {st.project}   model: {st.model or '-'}",
        f"agent runtime: {st.runtime}",
        st.services,
        "proxy:",
        *(f"  {url:<32} {where}" for where, url in st.urls.items()),
    ]
    if st.health is not None:
        code, body = st.health
        reachable = "reachable" if st.healthy else "NOT reachable"
        lines.append(f"upstream: {reachable} (proxy /health: {code} {body[:200]})")
        if not st.healthy and st.hint:
            lines.append(f"  {st.hint}")
    for i, line in enumerate(st.backend):
        lines.append(f"{'backend:' if i == 0 else '':<9}{line}")
    lines.append(
        "agent: `ccstack claude [DIR]` or `docker compose run --rm claude-sandbox` (CCSANDBOX_WORKDIR=DIR)"
    )
    return "\n".join(lines)
