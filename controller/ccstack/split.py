"""The split mode: one model's layers spread over llama.cpp RPC servers (pure: data in, services out).

llama-server started with ``--rpc HOST:PORT,...`` (entrypoint variable ``LLAMA_RPC``) loads the model
onto ggml's RPC devices, ``rpc-server`` processes that hold their share of the layers and compute it;
``-ngl all`` puts every layer on them, split by the memory each reports. The proxy talks to the one
llama-server exactly as in ``local`` (slots, exact counts and the prefix cache included).

- rpc-servers in the stack (``--rpc-workers N``): containers of the llama-server image (``rpc-server``,
  ``rpc-server-2``, ...; the others extend compose.yaml's first) on the internal backend network;
- rpc-servers on other machines (``--rpc HOST:PORT``, repeatable): llama-server then joins the egress
  network to reach them. ggml's RPC protocol has no authentication and no encryption: run them only on
  a network you trust, never on an open one.

The image must be built from sources (``LLAMA_DOCKERFILE=Dockerfile.source``: ``-DGGML_RPC=ON`` and the
``ggml-rpc-server`` target); llama.cpp's official server image has no rpc-server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RPC_PORT = 50052
WORKER = "rpc-server"
MAX_WORKERS = 8
ENDPOINT_RE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})$")


@dataclass(frozen=True)
class SplitSpec:
    workers: int = 2  # rpc-server containers in the stack
    remote: tuple[str, ...] = ()  # HOST:PORT of rpc-servers elsewhere

    def __post_init__(self) -> None:
        if not 0 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"--rpc-workers must be 0..{MAX_WORKERS}, got {self.workers}")
        for endpoint in self.remote:
            match = ENDPOINT_RE.match(endpoint)
            if not match or not 0 < int(match.group(3)) < 65536:
                raise ValueError(f"--rpc {endpoint!r}: give HOST:PORT of an rpc-server")
        if not self.workers and not self.remote:
            raise ValueError("the split mode needs rpc-servers: --rpc-workers N or --rpc HOST:PORT")

    @property
    def worker_names(self) -> tuple[str, ...]:
        return tuple(WORKER if i == 1 else f"{WORKER}-{i}" for i in range(1, self.workers + 1))

    @property
    def endpoints(self) -> tuple[str, ...]:
        """llama-server's ``--rpc`` list: the stack's workers, then the ones elsewhere."""
        return (*(f"{name}:{RPC_PORT}" for name in self.worker_names), *self.remote)


def compose_services(spec: SplitSpec, *, compose_file: str) -> dict[str, Any]:
    """The overlay's services: the workers after the first extend compose.yaml's rpc-server;
    llama-server waits for them to listen (it loads the model onto them at start)."""
    services: dict[str, Any] = {
        name: {"extends": {"file": compose_file, "service": WORKER}} for name in spec.worker_names[1:]
    }
    llama: dict[str, Any] = {}
    if spec.workers:
        llama["depends_on"] = {name: {"condition": "service_healthy"} for name in spec.worker_names}
    if spec.remote:
        llama["networks"] = ["backend", "egress"]
    services["llama-server"] = llama
    return services


def llama_environment(spec: SplitSpec) -> Mapping[str, str]:
    """What backends/llama-server/entrypoint.sh turns into ``--rpc LIST -ngl all``."""
    return {"LLAMA_RPC": ",".join(spec.endpoints)}
