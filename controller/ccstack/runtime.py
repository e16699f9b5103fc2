"""The agent's OCI runtime: ``runc`` (Docker's default) or gVisor's ``runsc`` (opt-in kernel isolation).

Chosen by ``ccstack up MODE --runtime NAME``, else by ``policies/sandbox.yaml``::

    runtime: runc        # runsc: the agent's syscalls go to gVisor's user-space kernel

It applies to the ``claude-sandbox`` service only (the rendered overlay sets ``runtime:`` on it, so
``docker compose run`` — ``ccstack claude``, ``ccstack verify`` — uses it too). Pure parts:
:func:`parse_sandbox_policy`, :func:`resolve_runtime`, :func:`registration_problems`. I/O edge:
:func:`load_sandbox_policy`, :func:`docker_runtimes`, :func:`check_registered`. The gVisor-aware
probes live in ``ccstack.gvisor_probes``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNC = "runc"
RUNSC = "runsc"
POLICY_FILE = "sandbox.yaml"
POLICY_KEYS = frozenset({"runtime"})
# What scripts/install-gvisor.sh registers: runsc's own network stack cannot start containers on every
# host (ENVIRONMENT.md); with --network=host gVisor uses the kernel's stack inside the container's own
# network namespace. Not --oci-seccomp: with Debian bookworm's runsc, Docker's seccomp profile applied
# inside the sandbox makes thread creation fail (node aborts at start).
RUNSC_ARGS = ("--network=host",)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class RuntimeNotRegistered(Exception):
    """The chosen runtime is not in ``docker info``'s Runtimes; the message says how to fix it."""


@dataclass(frozen=True)
class SandboxPolicy:
    runtime: str = RUNC


def check_name(name: object, *, field: str = "runtime") -> str:
    """A runtime name as Docker accepts it; raises ValueError naming ``field``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{field}: {name!r} is not a runtime name (runc, runsc, or one in `docker info`)")
    return name


def parse_sandbox_policy(data: object) -> SandboxPolicy:
    """policies/sandbox.yaml (parsed YAML) -> SandboxPolicy; a missing file or key means runc."""
    if data is None:
        return SandboxPolicy()
    if not isinstance(data, Mapping):
        raise ValueError("sandbox policy: must be a mapping")
    unknown = sorted(str(k) for k in data if k not in POLICY_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(POLICY_KEYS))})")
    raw = data.get("runtime")
    return SandboxPolicy(runtime=RUNC if raw is None else check_name(raw))


def load_sandbox_policy(directory: Path) -> SandboxPolicy:
    """``directory/sandbox.yaml``; raises ValueError naming the file."""
    import yaml

    path = directory / POLICY_FILE
    if not path.exists():
        return SandboxPolicy()
    try:
        return parse_sandbox_policy(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (ValueError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: {e}") from None


def resolve_runtime(flag: str | None, policy: SandboxPolicy) -> str:
    """The flag (``--runtime``) wins over the policy file."""
    return check_name(flag, field="--runtime") if flag else policy.runtime


def is_gvisor(name: str, runtimes: Mapping[str, Any] | None = None) -> bool:
    """``runsc`` (or another name whose registered binary is runsc)."""
    if name.startswith(RUNSC):
        return True
    entry = (runtimes or {}).get(name)
    path = str(entry.get("path", "")) if isinstance(entry, Mapping) else ""
    return Path(path).name.startswith(RUNSC)


def install_hint(name: str) -> str:
    if not name.startswith(RUNSC):
        return (
            f'Register it in /etc/docker/daemon.json under "runtimes" and reload dockerd '
            f"(`sudo kill -HUP $(pidof dockerd)`), or choose --runtime {RUNC}."
        )
    args = ", ".join(f'"{a}"' for a in RUNSC_ARGS)
    return (
        "Install gVisor and register it with Docker: `sudo scripts/install-gvisor.sh` (just install-gvisor), "
        "or by hand:\n"
        "  sudo apt-get install -y runsc        # Debian/Ubuntu (or gVisor's own apt repository)\n"
        f'  /etc/docker/daemon.json: {{"runtimes": {{"{name}": {{"path": "/usr/bin/runsc", '
        f'"runtimeArgs": [{args}]}}}}}}   (merged into what is there)\n'
        "  sudo kill -HUP $(pidof dockerd)      # reloads the configuration; running containers stay up\n"
        f"Or run the agent with Docker's default runtime: --runtime {RUNC} (policies/sandbox.yaml)."
    )


def registration_problems(name: str, runtimes: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(error, warnings) for running the agent under ``name`` given ``docker info``'s Runtimes."""
    if name == RUNC and not runtimes:
        return None, []  # engines that list no runtimes still have runc
    if name not in runtimes:
        listed = ", ".join(sorted(runtimes)) or "none"
        return (
            f"the agent's runtime {name!r} is not registered with Docker (`docker info` lists: {listed}).\n"
            + install_hint(name)
        ), []
    warnings = []
    entry = runtimes[name]
    args = (entry.get("runtimeArgs") or []) if isinstance(entry, Mapping) else []
    if is_gvisor(name, runtimes) and "--oci-seccomp" in args:
        warnings.append(
            f"runtime {name!r} is registered with --oci-seccomp: with Debian bookworm's runsc, Docker's "
            "seccomp profile inside the sandbox makes thread creation fail (Claude Code's node aborts at "
            "start). Remove it from its runtimeArgs (gVisor's own seccomp filter protects the host kernel) "
            "and reload dockerd."
        )
    return None, warnings


def docker_runtimes() -> dict[str, Any]:
    """``docker info``'s Runtimes (name -> {path, runtimeArgs})."""
    import docker

    info: dict[str, Any] = docker.from_env(timeout=10).info()
    runtimes: dict[str, Any] = info.get("Runtimes") or {}
    return runtimes


def check_registered(name: str) -> list[str]:
    """Raise RuntimeNotRegistered unless Docker knows ``name``; returns warnings to show."""
    if name == RUNC:
        return []
    error, warnings = registration_problems(name, docker_runtimes())
    if error:
        raise RuntimeNotRegistered(error)
    return warnings


def describe(name: str, runtimes: Mapping[str, Any] | None = None) -> str:
    """One line for ``ccstack status``: the runtime and whether Docker knows it."""
    if name == RUNC:
        return (
            f"{RUNC} (Docker's default; the agent shares the host kernel; opt-in gVisor: --runtime {RUNSC})"
        )
    known = runtimes if runtimes is not None else docker_runtimes()
    kind = "gVisor, a user-space kernel" if is_gvisor(name, known) else "custom"
    state = "registered with Docker" if name in known else "NOT registered with Docker: see `ccstack up`"
    return f"{name} ({kind}; {state})"
