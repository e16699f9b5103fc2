"""Checks before the controller touches containers: Docker and Compose usable, the agent's runtime
registered, a port free. Each raises :class:`StackError` saying what to do."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from ccstack.errors import StackError
from ccstack.runtime import RuntimeNotRegistered, check_registered, load_sandbox_policy, resolve_runtime


def check_docker() -> None:
    """Raise StackError when the Docker daemon or Compose v2 is not usable."""
    if shutil.which("docker") is None:
        raise StackError("Docker is not installed (no `docker` command on PATH)")
    try:
        import docker

        docker.from_env(timeout=10).ping()
    except Exception as e:
        raise StackError(
            f"Docker is not running or not reachable ({type(e).__name__}: {e}). Start Docker "
            "(Docker Desktop, or `sudo systemctl start docker`) and check `docker info`."
        ) from None
    r = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise StackError("Docker Compose v2 is missing (`docker compose version` failed); install it")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the kernel's pick), for a process this controller starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def check_port_free(port: int) -> None:
    if port_in_use(port):
        raise StackError(
            f"port {port} on 127.0.0.1 is in use: stop what listens there or pick another (--publish PORT)"
        )


def agent_runtime(policies_dir: Path, flag: str | None) -> str:
    """The agent's OCI runtime: --runtime, else policies/sandbox.yaml (runc by default)."""
    try:
        policy = load_sandbox_policy(policies_dir)
    except ValueError as e:
        raise StackError(f"bad policy: {e}") from None
    try:
        return resolve_runtime(flag, policy)
    except ValueError as e:
        raise StackError(str(e)) from None


def require_runtime(name: str) -> list[str]:
    """Fail with how to install/register it unless Docker knows the runtime ``name``; returns the
    warnings to show (e.g. a runsc entry with an option known to break the agent)."""
    try:
        return check_registered(name)
    except RuntimeNotRegistered as e:
        raise StackError(str(e)) from None
