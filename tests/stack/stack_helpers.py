"""Helpers of the stack suite (the Stack driver, HTTP, scripted turns); fixtures are in conftest.py."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from harness import containers
from harness.compose import ComposeProject

REPO = Path(__file__).resolve().parents[2]
AGENT_UID = 1000  # a non-root test user (CI runs as root)
AGENT_GID = 1000


def docker_client() -> Any:
    try:
        return containers.docker_client()
    except containers.ContainerError as e:
        pytest.fail(f"the stack suite: {e}", pytrace=False)


def base_image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    if os.environ.get("CCSTACK_LOCAL_BASES") == "1":
        env |= {"PYTHON_IMAGE": "local/python:3.11-bookworm", "NODE_IMAGE": "local/node:bookworm"}
    for name in ("PYTHON_IMAGE", "NODE_IMAGE"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


class Stack:
    """One throwaway stack: `ccstack --project NAME ...` with its own state directory."""

    def __init__(self, root: Path) -> None:
        self.project = f"ccsbx-test-{secrets.token_hex(3)}"
        self.state_dir = root / "state"
        self.env = os.environ | {
            "CCSANDBOX_STATE_DIR": str(self.state_dir),
            "CCSANDBOX_UID": str(AGENT_UID),
            "CCSANDBOX_GID": str(AGENT_GID),
        }
        for key in ("OPENROUTER_API_KEY", "ANTHROPIC_API_KEY"):
            self.env.pop(key, None)
        self.started = False

    def ccstack(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "ccstack", "--project", self.project, *args]
        if args and args[0] == "up":
            self.started = True
        r = subprocess.run(
            cmd,
            env=self.env | (env or {}),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert r.returncode == 0, (
                f"`ccstack {' '.join(args)}` failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
            )
        return r

    @property
    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state_dir / "state.json").read_text(encoding="utf-8"))
        return data

    def compose(self, workdir: Path | None = None) -> ComposeProject:
        """The stack's Compose project, as the controller runs it (`workdir`: CCSANDBOX_WORKDIR)."""
        state = self.state
        extra = {"CCSANDBOX_WORKDIR": str(workdir)} if workdir is not None else {}
        return ComposeProject(
            REPO,
            compose_file_name=list(state["files"]),
            profiles=list(state["profiles"]),
            project=self.project,
            env=self.env | state["env"] | extra,
            inherit_env=False,
        )

    def container(self, docker: Any, service: str) -> Any:
        found = docker.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.project={self.project}",
                    f"com.docker.compose.service={service}",
                ]
            }
        )
        assert found, f"no running container for {service} in {self.project}"
        return found[0]

    def ip(self, docker: Any, service: str, network: str) -> str:
        nets = self.container(docker, service).attrs["NetworkSettings"]["Networks"]
        return str(nets[f"{self.project}_{network}"]["IPAddress"])

    @property
    def token(self) -> str:
        return (self.state_dir / "secrets" / "proxy_token").read_text(encoding="utf-8").strip()

    def down(self, docker: Any) -> None:
        """`ccstack down --volumes`, then check it left nothing of the project behind."""
        if not self.started:
            return
        if (self.state_dir / "state.json").exists():
            self.ccstack("down", "--volumes", check=False)
        label = {"label": f"com.docker.compose.project={self.project}"}
        left = [c.name for c in docker.containers.list(all=True, filters=label)]
        left += [v.name for v in docker.volumes.list(filters=label)]
        left += [n.name for n in docker.networks.list(filters=label)]
        for c in docker.containers.list(all=True, filters=label):
            c.remove(force=True)
        for v in docker.volumes.list(filters=label):
            v.remove(force=True)
        for n in docker.networks.list(filters=label):
            n.remove()
        assert not left, f"`ccstack down --volumes` left these behind: {left}"


def http_json(
    method: str, url: str, body: object | None = None, headers: dict[str, str] | None = None
) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read() or b"null")


def write_tool_script(path: str, content: str) -> list[dict[str, Any]]:
    """Scripted turns: call Write(path, content), then finish with text."""
    return [
        {
            "tool_calls": [{"name": "Write", "arguments": {"file_path": path, "content": content}}],
            "chunks": 3,
        },
        {"text": "Done: the file is written."},
    ]


CLAUDE_P = ["--dangerously-skip-permissions", "--output-format", "stream-json", "--verbose"]
