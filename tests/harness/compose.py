"""A Compose project (testcontainers `DockerCompose`) with a fixed project name and its own variables,
as the controller runs it: `docker compose --project-name P --project-directory DIR -f ... --profile ...`
with the stack's variables over this process's environment (COMPOSE_FILE / COMPOSE_PROFILES dropped).

    project = ComposeProject(REPO, compose_file_name=files, profiles=["agent"], project="p", env=env)
    project.get_config()                                  # `config --format json`, merged
    project.run("claude-sandbox", "bash", "-c", "id")     # `run --rm -T SERVICE ...`
    project.exec_in_container(["ls"], "proxy"); project.get_container("proxy"); project.stop()

A failing compose command raises `ContainerError` with its output (`run` returns it: tests assert on it).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from testcontainers.compose import DockerCompose

from harness.containers import ContainerError


@dataclass
class ComposeProject(DockerCompose):
    """`env` is laid over this process's environment, or is the whole environment with `inherit_env=False`."""

    project: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    inherit_env: bool = True

    @cached_property
    def compose_command_property(self) -> list[str]:
        base = super().compose_command_property
        named = ["--project-name", self.project] if self.project else []
        return [*base[:2], *named, "--project-directory", str(self.context), *base[2:]]

    def environment(self) -> dict[str, str]:
        env = (dict(os.environ) if self.inherit_env else {}) | dict(self.env)
        return {k: v for k, v in env.items() if k not in ("COMPOSE_FILE", "COMPOSE_PROFILES")}

    def _run_command(
        self, cmd: str | list[str], context: str | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Every DockerCompose command, with this project's variables (the base class passes none)."""
        r = subprocess.run(
            cmd, cwd=context or str(self.context), env=self.environment(), capture_output=True, check=False
        )
        if r.returncode != 0:
            out = (r.stdout + r.stderr).decode(errors="replace")
            raise ContainerError(f"`{' '.join(map(str, cmd))}` failed ({r.returncode}):\n{out[-4000:]}")
        return r

    def run(
        self, service: str, *command: str, options: tuple[str, ...] = ("--rm", "-T"), timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """`docker compose run OPTIONS SERVICE COMMAND...`, its result returned whatever its exit code."""
        cmd = [*self.compose_command_property, "run", *options, service, *command]
        return subprocess.run(
            cmd,
            cwd=str(self.context),
            env=self.environment(),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
