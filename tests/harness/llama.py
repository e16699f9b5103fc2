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
from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget

from harness.containers import ContainerError, require_image
from harness.net import LOOPBACK, NotReady, wait_http_ok

IMAGE = os.environ.get("CCSANDBOX_LLAMA_IMAGE", "ccsandbox/llama-server:local")
PORT = 8080


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
    ) -> None:
        super().__init__(IMAGE, name=f"{name_prefix}-{uuid.uuid4().hex[:8]}", env=dict(env))
        self.with_volume_mapping(str(model_file), "/models/model.gguf", "ro")
        for host, inside in mounts.items():
            self.with_volume_mapping(host, inside, "rw")
        # published on loopback only: docker-py takes (host ip, host port); None picks a free port
        self.ports[f"{PORT}/tcp"] = (LOOPBACK, None)  # type: ignore[assignment]
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
) -> Iterator[LlamaServer]:
    """Start the container, wait for /health, yield it; removed on the way out (its whole log written
    to `log_file` first, if given)."""
    require_image(IMAGE, "scripts/build-llama-server.sh")
    with LlamaServer(model_file, env=env, mounts=mounts, native=native, name_prefix=name_prefix) as server:
        try:
            yield server
        finally:
            if log_file is not None:
                log_file.write_text(server.logs(0))
