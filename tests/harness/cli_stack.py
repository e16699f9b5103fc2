"""Driving the real stack from a benchmark: ``ccstack`` in its own Compose project, throwaway repositories,
the real CLI in the sandbox (``-p`` with stream-json, or the interactive TUI in tmux), its transcripts.

Used by bench/tasks/run.py, bench/first_answer.py and the stack suite's end-to-end task test
(``make_repo``). Each benchmark has its own project and state directory, so it never touches the user's
stack (or another benchmark's).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CCSTACK = REPO / ".venv" / "bin" / "ccstack"
AGENT_UID = 1000
"""The agent's UID when ccstack runs as root (and the workdir's owner, so the agent can write it)."""

Completed = subprocess.CompletedProcess[str]


@dataclass
class Stack:
    """``ccstack`` with a fixed project name and state directory."""

    project: str
    work: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.work / "state"

    def env(self) -> dict[str, str]:
        out = dict(os.environ)
        out.update(CCSANDBOX_PROJECT=self.project, CCSANDBOX_STATE_DIR=str(self.state_dir), **self.extra_env)
        return out

    def run(
        self, *args: str, timeout: float | None = None, capture: bool = False, env: Mapping[str, str] = {}
    ) -> Completed:
        return subprocess.run(
            [str(CCSTACK), *args],
            env={**self.env(), **env},
            timeout=timeout,
            capture_output=capture,
            text=True,
            check=False,
        )

    def up(self, *args: str) -> float:
        """``ccstack up ARGS`` (fails loudly); returns the seconds it took."""
        start = time.monotonic()
        r = self.run("up", *args)
        if r.returncode != 0:
            raise SystemExit(f"ccstack up {' '.join(args)} failed (exit {r.returncode})")
        return time.monotonic() - start

    def down(self, *args: str) -> None:
        self.run("down", *args, capture=True)

    def overlay(self, name: str, text: str) -> Path:
        """An extra Compose file for ``up -f``."""
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def pinned_images(self) -> Path:
        """An overlay that runs this checkout's images under tags of their own, built now.

        Other checkouts (worktrees, CI runs) build ``ccsandbox/*:local`` too, and Compose recreates a
        running service whose image tag moved: a benchmark would silently measure someone else's build.
        The proxy and sandbox images are built from this checkout as ``ccsbx-bench/<service>:<project>``
        (Docker's layer cache: seconds), the llama-server image is pinned by its current ID."""
        tag = self.project
        overlay = self.overlay(
            "images.yaml",
            "services:\n"
            + "".join(f"  {s}:\n    image: ccsbx-bench/{s}:{tag}\n" for s in ("proxy", "claude-sandbox"))
            + f"  llama-server:\n    image: ccsbx-bench/llama-server:{tag}\n",
        )
        subprocess.run(
            ["docker", "tag", "ccsandbox/llama-server:local", f"ccsbx-bench/llama-server:{tag}"], check=True
        )
        r = subprocess.run(
            ["docker", "compose", "--project-directory", str(REPO), "-f", str(REPO / "compose.yaml"),
             "-f", str(overlay), "--profile", "agent", "--profile", "local",
             "build", "proxy", "claude-sandbox"],
            env=self.env(), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if r.returncode != 0:
            raise SystemExit(f"building the benchmark's images failed:\n{r.stderr[-3000:]}")
        return overlay

    def kill_agents(self) -> None:
        """Remove agent containers a killed run left behind (Compose one-off containers of the project)."""
        ids = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={self.project}",
             "--filter", "label=com.docker.compose.oneoff=True"],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)

    def logs(self, service: str, since: float | None = None) -> str:
        args = ["logs", "--no-color"] + ([f"--since={int(since)}"] if since else []) + [service]
        r = subprocess.run(
            ["docker", "compose", "--project-name", self.project, *args],
            capture_output=True,
            text=True,
            check=False,
        )
        return r.stdout + r.stderr

    def container_ip(self, service: str, network: str = "backend") -> str:
        """The service's address on one of the project's networks (the host reaches ``backend``; the
        ``agent`` network has no address on the host's side)."""
        name = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={self.project}",
             "--filter", f"label=com.docker.compose.service={service}"],
            capture_output=True, text=True, check=True,
        ).stdout.split()[0]  # fmt: skip
        networks = json.loads(
            subprocess.run(
                ["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", name],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        return str(networks[f"{self.project}_{network}"]["IPAddress"])


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", f"safe.directory={repo}",
         "-C", str(repo), *args],
        check=True, capture_output=True,
    )  # fmt: skip


def make_repo(files: Mapping[str, str], where: Path) -> Path:
    """A fresh git repository at ``where/repo`` with ``files`` committed, owned by the agent's UID."""
    if where.exists():
        shutil.rmtree(where)
    repo = where / "repo"
    repo.mkdir(parents=True)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "start")
    chown_tree(repo)
    return repo


def chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    for p in [path, *path.rglob("*")]:
        os.lchown(p, AGENT_UID, AGENT_UID)


def parse_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(line)
            if isinstance(value, dict):
                out.append(value)
    return out


def print_mode_args(prompt: str, *extra: str) -> list[str]:
    """``claude`` arguments of a non-interactive run that streams every event as a JSON line."""
    stream = ["--output-format", "stream-json", "--verbose"]
    return ["-p", prompt, "--dangerously-skip-permissions", *stream, *extra]


class Tmux:
    """A detached tmux session running a command; its screen read with capture-pane."""

    def __init__(
        self, name: str, command: Sequence[str], env: Mapping[str, str], size: str = "200x50"
    ) -> None:
        self.name = name
        width, height = size.split("x")
        exports = " ".join(f"{k}={_quote(v)}" for k, v in env.items())
        line = f"env {exports} " + " ".join(_quote(c) for c in command)
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True, check=False)
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", width, "-y", height, line], check=True)

    def screen(self) -> str:
        r = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True, check=False
        )
        return r.stdout

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=False)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=False)

    def wait_for(self, predicate: Any, timeout: float, poll: float = 0.2) -> str | None:
        """The screen once ``predicate(screen)`` holds, or None after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(poll)
        return None

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, check=False)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
