"""Docker for the suites: a loud failure (never a skip) when Docker, Compose v2 or an image is missing.
`DockerContainer` is testcontainers' own, imported through here so that the harness's settings (Ryuk
off, see harness/__init__.py) are in place before any container starts."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import docker
import docker.errors
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

from harness.net import LOOPBACK, NotReady, wait_http_ok

__all__ = [
    "ContainerError",
    "DockerContainer",
    "HealthWait",
    "docker_client",
    "image_exists",
    "require_image",
]


class ContainerError(AssertionError):
    """Docker, Compose or an image is missing, or a container did not do what it had to."""


def docker_client() -> Any:
    """A client of the running Docker Engine; ContainerError when there is none or Compose v2 is missing."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        raise ContainerError(f"this needs a running Docker Engine: {type(exc).__name__}: {exc}") from None
    if shutil.which("docker") is None:
        raise ContainerError("this needs the docker CLI on PATH")
    r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise ContainerError("this needs Docker Compose v2 (`docker compose version` failed)")
    return client


def image_exists(ref: str) -> bool:
    try:
        docker.from_env(timeout=30).images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.DockerException as exc:
        raise ContainerError(f"this needs a running Docker Engine: {type(exc).__name__}: {exc}") from None
    return True


def require_image(ref: str, how: str = "scripts/build-images.sh") -> None:
    if not image_exists(ref):
        raise ContainerError(f"image {ref} is missing: run {how}")


class HealthWait(WaitStrategy):
    """Ready when `path` on the published `port` answers 200; fails at once (with the container's
    log) when the container stops running, instead of waiting out the startup timeout."""

    def __init__(self, port: int, path: str) -> None:
        super().__init__()
        self.port, self.path = port, path

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        url = f"http://{LOOPBACK}:{container.get_exposed_port(self.port)}{self.path}"

        def alive() -> None:
            container.reload()
            if container.status not in ("created", "running"):
                raise ContainerError(f"the container stopped ({container.status}):\n{_log_text(container)}")

        try:
            wait_http_ok(url, self._startup_timeout, alive=alive, interval=self._poll_interval)
        except NotReady as exc:
            raise NotReady(f"{exc}\n{_log_text(container)}") from None


def _log_text(container: WaitStrategyTarget, lines: int = 80) -> str:
    out, err = container.get_logs()
    text = (out + err).decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])
