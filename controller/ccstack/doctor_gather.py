"""The doctor's I/O: everything :func:`ccstack.doctor.judge` needs, gathered into :class:`Facts`.

gather(paths, DoctorRequest) -> Facts    Docker, Compose, images, the port, the model file, the key,
                                         the running stack, the proxy's /health, the tool-call probe
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccstack import local_model, models, pool_status
from ccstack.checks import agent_runtime, port_in_use, require_runtime
from ccstack.doctor import Facts, Reply, probe_request
from ccstack.errors import StackError
from ccstack.modes import Mode, parse_mode
from ccstack.state import Paths, State, load_state
from ccstack.status import proxy_urls

PROBE_TIMEOUT = 600.0
"""A local model on a loaded CPU can take minutes for its first answer."""


@dataclass(frozen=True)
class DoctorRequest:
    mode: str | None = None  # None: the running stack's mode, else local
    publish_port: int | None = None
    model: str | None = None  # local: the model `up` would use
    probe: bool = True
    probe_timeout: float = PROBE_TIMEOUT


def http(method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None,
         timeout: float = 10.0) -> Reply:  # fmt: skip
    """One HTTP exchange; status 0 when nothing answered."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("content-type", "application/json")
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except OSError as e:
        return Reply(0, str(getattr(e, "reason", e)), time.monotonic() - start)
    try:
        decoded: Any = json.loads(raw)
    except ValueError:
        decoded = raw.decode("utf-8", "replace")
    return Reply(status, decoded, time.monotonic() - start)


def _resolvers() -> tuple[str, ...]:
    def read(path: str) -> list[str]:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        return [p[1] for p in (line.split() for line in lines) if len(p) >= 2 and p[0] == "nameserver"]

    found = read("/etc/resolv.conf")
    if found == ["127.0.0.53"]:  # systemd-resolved's stub: Docker uses the real upstreams instead
        found = read("/run/systemd/resolve/resolv.conf") or found
    return tuple(found)


def _docker() -> tuple[Any, str | None, str | None]:
    try:
        import docker

        client = docker.from_env(timeout=10)
        return client, str(client.version().get("Version", "?")), None
    except Exception as e:
        return None, None, f"Docker is not running or not reachable ({type(e).__name__}: {e})"


def _compose_version() -> str | None:
    try:
        cmd = ["docker", "compose", "version", "--short"]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def _images(client: Any, mode: Mode) -> dict[str, bool]:
    wanted = ["proxy", "claude-sandbox", *mode.backend_services]
    present = {}
    for service in wanted:
        image = f"ccsandbox/{service}:local"
        try:
            client.images.get(image)
            present[image] = True
        except Exception:
            present[image] = False
    return present


def _services(client: Any, state: State) -> dict[str, str]:
    found: dict[str, str] = {}
    for service in state.services:
        labels = [f"com.docker.compose.project={state.project}", f"com.docker.compose.service={service}"]
        containers = client.containers.list(all=True, filters={"label": labels})
        if not containers:
            found[service] = "missing"
            continue
        c = containers[0]
        health = (c.attrs.get("State", {}).get("Health") or {}).get("Status")
        found[service] = f"{c.status} ({health})" if health else c.status
    return found


def _model(mode: Mode, req: DoctorRequest, state: State | None) -> dict[str, Any]:
    if not mode.local_model:
        return {}
    if state is not None and req.model is None:
        file = state.extra.get("model_file")
        if file:
            return {"model_file": file, "model_file_exists": Path(file).is_file()}
        if state.extra.get("hub_model"):
            return {}
    try:
        choice = local_model.resolve_model(req.model, fetch=False, say=lambda _m: None)
    except StackError as e:
        return {"model_error": str(e)}
    if choice.hub:
        return {}
    if choice.registry:
        path = models.model_path(choice.name)
        return {"model_file": str(path), "model_file_exists": path.is_file()}
    return {"model_file": choice.file, "model_file_exists": bool(choice.file and Path(choice.file).is_file())}


def _key_source(paths: Paths, mode: Mode, stack_up: bool, environ: Mapping[str, str]) -> str | None:
    if not mode.key_env:
        return None
    if stack_up and paths.upstream_key.is_file():
        return f"secret file {paths.upstream_key} (the proxy's only)"
    if environ.get(mode.key_env, "").strip():
        return f"${mode.key_env}"
    return None


def _probe_model(mode: Mode, state: State) -> str:
    model = state.extra.get("model")
    if isinstance(model, str) and model:
        return model
    return "claude-haiku-4-5" if mode.upstream_kind == "anthropic" else "claude-sonnet-4-5"


def gather(paths: Paths, req: DoctorRequest, environ: Mapping[str, str] | None = None) -> Facts:
    env = os.environ if environ is None else environ
    try:
        state: State | None = load_state(paths)
    except StackError:
        state = None
    mode = parse_mode(req.mode or (state.mode if state else "local"))
    client, version, error = _docker()
    if client is None:
        return Facts(mode=mode, docker_version=None, docker_error=error)
    ours = state if state is not None and state.mode == mode.name else None
    runtime = agent_runtime(paths.repo / "policies", None)
    try:
        require_runtime(runtime)
        runtime_error = None
    except StackError as e:
        runtime_error = str(e)
    facts: dict[str, Any] = {
        "mode": mode,
        "docker_version": version,
        "host_resolvers": _resolvers(),
        "compose_version": _compose_version(),
        "runtime": runtime,
        "runtime_error": runtime_error,
        "images": _images(client, mode),
        "stack_mode": state.mode if state else None,
        **_model(mode, req, ours),
        "key_source": _key_source(paths, mode, ours is not None, env),
    }
    port = req.publish_port or (ours.publish_port if ours else None)
    if port is not None:
        if ours is not None and ours.publish_port == port:
            answers = http("GET", f"http://127.0.0.1:{port}/").status == 200
            facts["port_state"] = "ours" if answers else "taken"
        else:
            facts["port_state"] = "taken" if port_in_use(port) else "free"
        facts["port"] = port
    if ours is None:
        return Facts(**facts)
    facts["services"] = _services(client, ours)
    if mode.pool:
        try:
            servers = pool_status.read_servers(ours.project)
            facts["pool"] = None if servers is None else tuple(servers)
        except ValueError as e:
            facts["pool_error"] = f"cannot read HAProxy's server states: {str(e)[:200]}"
    window = ours.extra.get("context_window") or mode.context_window
    if window:
        facts["window"] = window
        facts["window_source"] = (
            "read from the server by `ccstack up`, or its --context-window"
            if mode.user_server
            else "given to Claude Code by `ccstack up`"
        )
    host_urls = [u for where, u in proxy_urls(ours).items() if where.startswith("on this host")]
    if not host_urls:
        return Facts(**facts)
    url = facts["proxy_url"] = host_urls[0]
    facts["health"] = health = http("GET", f"{url}/health", timeout=15)
    if req.probe and health.status == 200:
        token = paths.token.read_text(encoding="utf-8").strip() if paths.token.is_file() else ""
        headers = {"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01"}
        body = probe_request(_probe_model(mode, ours))
        facts["probe"] = http("POST", f"{url}/v1/messages", body, headers, timeout=req.probe_timeout)
    return Facts(**facts)
