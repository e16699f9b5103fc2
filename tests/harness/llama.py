"""A real llama-server in a container (testcontainers `DockerContainer`): the image
ccsandbox/llama-server:local (scripts/build-llama-server.sh; `CCSANDBOX_LLAMA_IMAGE` overrides it) with
a model file from the model cache (`python -m ccstack.models fetch`) mounted read-only, its port 8080
published on 127.0.0.1 only (a random host port), ready once `/health` answers 200.

    with llama_server(model_file, env={"LLAMA_PARALLEL": "2"}) as server:
        server.url            # http://127.0.0.1:PORT
        server.slots(); server.logs(); server.exec(["ls", "/slots"])

`native=True` runs llama-server's own defaults (no entrypoint, no flags but the model) instead of the
image's entrypoint with the stack's settings. A missing image or Docker fails with `ContainerError`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from testcontainers.core.container import DockerContainer

from harness.containers import ContainerError, HealthWait, require_image
from harness.net import LOOPBACK

IMAGE = os.environ.get("CCSANDBOX_LLAMA_IMAGE", "ccsandbox/llama-server:local")
PORT = 8080


class LlamaServer(DockerContainer):
    """The container; use `llama_server()` to start and stop it."""

    def __init__(
        self,
        model_file: Path,
        *,
        env: Mapping[str, str] = {},
        mounts: Mapping[str, str] = {},
        native: bool = False,
        name_prefix: str = "ccsandbox-test-llama",
        startup_timeout: float = 180,
        publish: tuple[str, int | None] = (LOOPBACK, None),
    ) -> None:
        super().__init__(IMAGE, name=f"{name_prefix}-{uuid.uuid4().hex[:8]}", env=dict(env))
        self.with_volume_mapping(str(model_file), "/models/model.gguf", "ro")
        for host, inside in mounts.items():
            self.with_volume_mapping(host, inside, "rw")
        # `publish`: (host address, host port) for docker-py; loopback and a free port unless asked
        self.ports[f"{PORT}/tcp"] = publish  # type: ignore[assignment]
        if native:  # llama-server's defaults: no flags but the model and the listen address
            self.with_kwargs(entrypoint="/app/llama-server")
            self.with_command(["-m", "/models/model.gguf", "--host", "0.0.0.0", "--port", str(PORT)])
        self.waiting_for(HealthWait(PORT, "/health").with_startup_timeout(int(startup_timeout)))

    @property
    def name(self) -> str:
        return self.get_wrapped_container().name  # type: ignore[no-any-return]

    @property
    def url(self) -> str:
        """Root URL on the host, e.g. http://127.0.0.1:PORT."""
        return f"http://{LOOPBACK}:{self.get_exposed_port(PORT)}"

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

    def logs(self, lines: int = 80) -> str:
        """The last `lines` of its output (`lines=0`: all of it)."""
        out, err = self.get_logs()
        text = (out + err).decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:]) if lines else text

    def exec(self, command: str | list[str]) -> Any:  # type: ignore[override]
        """Run `command` inside; raises ContainerError unless it exits 0. Returns its output."""
        result = super().exec(command)
        if result.exit_code != 0:
            raise ContainerError(f"{command!r} failed ({result.exit_code}): {result.output!r}")
        return result.output

    def state(self) -> str:
        """What Docker says about the container (after a failure: did it exit, was it OOM-killed?)."""
        try:
            container = self.get_wrapped_container()
            container.reload()
        except Exception as exc:
            return f"docker inspect failed: {exc!r}"[:200]
        st = container.attrs.get("State", {})
        keys = ("Status", "Running", "ExitCode", "OOMKilled", "Error")
        return "container " + ", ".join(f"{k}={st.get(k)!r}" for k in keys)


@contextmanager
def llama_server(
    model_file: Path,
    *,
    env: Mapping[str, str] = {},
    mounts: Mapping[str, str] = {},
    native: bool = False,
    name_prefix: str = "ccsandbox-test-llama",
    log_file: Path | None = None,
    startup_timeout: float = 180,
    publish: tuple[str, int | None] = (LOOPBACK, None),
) -> Iterator[LlamaServer]:
    """Start the container, wait for /health, yield it; removed on the way out (its whole log written
    to `log_file` first, if given)."""
    require_image(IMAGE, "scripts/build-llama-server.sh")
    server = LlamaServer(
        model_file,
        env=env,
        mounts=mounts,
        native=native,
        name_prefix=name_prefix,
        startup_timeout=startup_timeout,
        publish=publish,
    )
    with server:
        try:
            yield server
        finally:
            if log_file is not None:
                log_file.write_text(server.logs(0))
