"""`ccstack up` while Compose waits for the health checks: what the stack is doing, not silence.

`docker compose up --wait` prints nothing useful while llama-server loads a model (its ``/health``
answers 503 "Loading model" for seconds to minutes). So Compose runs in the background and, every
``POLL`` seconds, the project's containers are asked (Docker's API: state and health) and, while
llama-server is not healthy, its own ``/health`` (``curl`` inside its container, as its health check
does; no host route needed). :func:`describe` turns that into one line for the spinner:

    llama-server loading the model (503 Loading model); proxy created (waits for llama-server)
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ccstack.compose import compose_base, compose_env
from ccstack.state import Paths, State

POLL = 2.0
BACKEND = "llama-server"
_HEALTH = ["curl", "-s", "-m", "3", "-w", " %{http_code}", "http://127.0.0.1:8080/health"]


@dataclass(frozen=True)
class Service:
    """One container of the project as Docker reports it."""

    name: str
    state: str  # created, running, restarting, exited, ...
    health: str | None = None  # starting, healthy, unhealthy; None: no health check


def health_message(answer: str) -> str:
    """llama-server's /health answer (body, then the status code, as ``_HEALTH`` prints them) in a few
    words: ``503 Loading model``, ``200 ok``, or what there was."""
    body, _, code = answer.strip().rpartition(" ")
    if not code.isdigit():
        body, code = answer.strip(), ""
    try:
        data = json.loads(body)
    except ValueError:
        return " ".join(f"{code} {body.strip()[:80]}".split())
    detail: object = ""
    if isinstance(data, dict):
        error = data.get("error")
        detail = error.get("message", "") if isinstance(error, dict) else data.get("status", "")
    return f"{code} {detail}".strip()


def describe(services: Sequence[Service], backend_health: str | None = None) -> str:
    """What the stack is doing, in one line: each service not yet ready, with what it waits for."""
    if not services:
        return "creating the containers"
    waiting = [s for s in services if not _ready(s)]
    if not waiting:
        return "all services ready"
    unready_names = [s.name for s in waiting]
    parts = []
    for s in waiting:
        if s.name == BACKEND and s.state == "running" and (backend_health or "").startswith("200"):
            what = f"answers ({backend_health}), Docker's health check pending"
        elif s.name == BACKEND and s.state == "running":
            what = "loading the model"
            if backend_health:
                what += f" ({backend_health})"
        elif s.state == "created":
            others = [n for n in unready_names if n != s.name]
            what = f"created (waits for {', '.join(others)})" if others else "created"
        elif s.state == "running" and s.health == "starting":
            what = "starting (health check pending)"
        else:
            what = s.state + (f", {s.health}" if s.health else "")
        parts.append(f"{s.name} {what}")
    return "; ".join(parts)


def _ready(s: Service) -> bool:
    return s.state == "running" and s.health in (None, "healthy")


def services(project: str) -> list[Service]:
    """The project's containers (Docker's API; no Compose process per look)."""
    import docker

    client = docker.from_env()
    found = []
    for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}):
        if c.labels.get("com.docker.compose.oneoff") == "True":
            continue
        health = (c.attrs.get("State") or {}).get("Health") or {}
        name = c.labels.get("com.docker.compose.service", c.name)
        found.append(Service(name, c.status, health.get("Status")))
    return sorted(found, key=lambda s: s.name)


def backend_health(project: str) -> str | None:
    """llama-server's own /health, asked inside its container (None: no such container running)."""
    import docker

    client = docker.from_env()
    labels = [f"com.docker.compose.project={project}", f"com.docker.compose.service={BACKEND}"]
    for c in client.containers.list(filters={"label": labels}):
        result: Any = c.exec_run(_HEALTH)
        return health_message(result.output.decode("utf-8", "replace"))
    return None


def look(project: str) -> str:
    """One look at the stack, described (errors of the look itself become the line)."""
    try:
        found = services(project)
        backend = next((s for s in found if s.name == BACKEND), None)
        loading = backend is not None and backend.state == "running" and not _ready(backend)
        health = backend_health(project) if loading else None
        return describe(found, health)
    except Exception as e:  # a look that fails must not stop `up`
        return f"cannot ask Docker ({type(e).__name__})"


def compose_up(
    paths: Paths,
    state: State,
    args: Sequence[str],
    update: Callable[[str], None],
    *,
    poll: float = POLL,
    look_at: Callable[[str], str] = look,
) -> subprocess.CompletedProcess[str]:
    """``docker compose ARGS`` (an ``up --wait``), calling ``update(what the stack does)`` meanwhile."""
    cmd = [*compose_base(paths, state), *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        with subprocess.Popen(cmd, env=compose_env(state), stdout=out, stderr=err, text=True) as proc:
            while proc.poll() is None:
                update(look_at(state.project))
                deadline = time.monotonic() + poll
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
