"""llama.cpp's native ``/v1/messages`` as the benchmarks' anchor: a llama-server container with the stack's
image, model, chat template and flags, but no proxy in front (so: no prompt layout, no prefix cache).

    native = NativeServer.for_stack(stack, model=None)
    native.restart()                          # seconds until healthy
    native.first_token(anthropic_body)        # {"first_token_s", "prompt_tokens", "cached_tokens"}
    native.stop()
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from ccstack import models
from harness.cli_stack import REPO, Stack

IMAGE = "ccsandbox/llama-server:local"
DEFAULT_MODEL = "qwen2.5-coder-0.5b"


@dataclass
class NativeServer:
    model_file: Path
    name: str
    port: int | None = None

    @classmethod
    def for_stack(cls, stack: Stack, model: str | None) -> NativeServer:
        path = Path(model) if model and model.endswith(".gguf") else models.fetch(model or DEFAULT_MODEL)
        return cls(model_file=path, name=f"{stack.project}-native-{uuid.uuid4().hex[:6]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)

    def restart(self, timeout: float = 300) -> float:
        """(Re)start the container as the stack starts its llama-server; seconds until /health is 200."""
        self.stop()
        start = time.monotonic()
        subprocess.run(
            ["docker", "run", "-d", "--name", self.name, "-p", "127.0.0.1::8080",
             "-v", f"{self.model_file}:/models/model.gguf:ro",
             "-v", f"{REPO / 'backends' / 'llama-server' / 'templates'}:/templates:ro",
             "-e", "LLAMA_CHAT_TEMPLATE=qwen2.5-coder-tools", "-e", "LLAMA_PARALLEL=2",
             "-e", "LLAMA_CTX_PER_SLOT=32768", IMAGE],
            check=True, capture_output=True,
        )  # fmt: skip
        port = subprocess.run(
            ["docker", "port", self.name, "8080/tcp"], capture_output=True, text=True, check=True
        ).stdout.split(":")[-1]
        self.port = int(port)
        while time.monotonic() - start < timeout:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return round(time.monotonic() - start, 1)
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"native llama-server {self.name} not healthy after {timeout} s")

    def first_token(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Stream the request (max_tokens 16) to /v1/messages: seconds to the first content delta."""
        if self.port is None:
            self.restart()
        body = {**request, "stream": True, "max_tokens": 16}
        start = time.monotonic()
        first: float | None = None
        usage: dict[str, Any] = {}
        with httpx.stream("POST", self.url + "/v1/messages", json=body, timeout=timeout) as response:
            if response.status_code != 200:
                return {"first_token_s": None, "error": f"HTTP {response.status_code}"}
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if first is None and event.get("type") == "content_block_delta":
                    first = time.monotonic() - start
                if event.get("type") == "message_start":
                    usage.update(event.get("message", {}).get("usage") or {})
                if event.get("type") == "message_delta":
                    usage.update(event.get("usage") or {})
        return {
            "first_token_s": None if first is None else round(first, 1),
            "total_s": round(time.monotonic() - start, 1),
            "input_tokens": usage.get("input_tokens"),
            "cache_read_input_tokens": usage.get("cache_read_input_tokens"),
        }
