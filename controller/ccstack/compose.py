"""The Compose runner: every ``docker compose`` command of the controller, with the state's files.

Compose always runs with explicit files (``-f compose.yaml -f .stack/compose.<mode>.yaml``), project
name and profiles, and with ``COMPOSE_PROFILES``/``COMPOSE_FILE`` of the caller's environment removed,
so a user's shell settings cannot change what the controller starts.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from ccstack.errors import StackError
from ccstack.state import Paths, State


def compose_base(paths: Paths, state: State) -> list[str]:
    cmd = ["docker", "compose", "--project-name", state.project, "--project-directory", str(paths.repo)]
    for f in state.files:
        cmd += ["-f", f]
    for p in state.profiles:
        cmd += ["--profile", p]
    return cmd


def compose_env(state: State, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("COMPOSE_PROFILES", None)
    env.pop("COMPOSE_FILE", None)
    env.update(state.env)
    if extra:
        env.update(extra)
    return env


def run_compose(
    paths: Paths,
    state: State,
    args: Sequence[str],
    *,
    capture: bool = False,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    cmd = [*compose_base(paths, state), *args]
    r = subprocess.run(cmd, env=compose_env(state, env), capture_output=capture, text=True, check=False)
    if check and r.returncode != 0:
        detail = f"\n{r.stderr.strip()}" if capture and r.stderr else ""
        raise StackError(f"`docker compose {' '.join(args)}` failed (exit {r.returncode}){detail}")
    return r


def validate(paths: Paths, state: State) -> None:
    r = run_compose(paths, state, ["config", "--quiet"], capture=True, check=False)
    if r.returncode != 0:
        raise StackError(f"the generated Compose configuration is invalid:\n{r.stderr.strip()}")


def config(paths: Paths, state: State) -> dict[str, Any]:
    """The merged Compose model (`docker compose config --format json`)."""
    r = run_compose(paths, state, ["config", "--format", "json"], capture=True)
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def parse_ps(out: str) -> list[dict[str, Any]]:
    """`docker compose ps --format json`: a JSON array (older Compose) or one object per line."""
    out = out.strip()
    if not out:
        return []
    if out.startswith("["):
        rows: list[dict[str, Any]] = json.loads(out)
        return rows
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def services_status(paths: Paths, state: State) -> list[dict[str, Any]]:
    r = run_compose(paths, state, ["ps", "--all", "--format", "json"], capture=True)
    return parse_ps(r.stdout)


def format_services(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"{'SERVICE':<20} {'STATE':<10} HEALTH"]
    for row in rows:
        lines.append(f"{row.get('Service', '?'):<20} {row.get('State', '?'):<10} {row.get('Health') or '-'}")
    return "\n".join(lines)


def service_table(paths: Paths, state: State) -> str:
    try:
        rows = services_status(paths, state)
    except StackError as e:
        return str(e)
    return format_services(rows)
