"""Fixtures of the backend suite: the real llama-server container with the real default model, and the real
ccproxy in front of it (session-scoped: starting them costs ~10 s). Missing prerequisites FAIL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from ccstack import models
from llama_helpers import (
    CTX_PER_SLOT,
    MODEL,
    LlamaServer,
    Proxy,
    start_llama_server,
    start_proxy,
    stop_container,
    stop_proxy,
)


@pytest.fixture(scope="session")
def model_file() -> Path:
    try:
        return models.fetch(MODEL)
    except models.ModelError as exc:
        pytest.fail(f"cannot fetch the model {MODEL}: {exc}")


@pytest.fixture(scope="session")
def llama(model_file: Path) -> Iterator[LlamaServer]:
    server = start_llama_server(
        model_file,
        env={
            "LLAMA_CHAT_TEMPLATE": "qwen2.5-coder-tools",
            "LLAMA_PARALLEL": "2",
            "LLAMA_CTX_PER_SLOT": str(CTX_PER_SLOT),
            "LLAMA_THREADS": "2",
            "LLAMA_SERVER_SLOTS_DEBUG": "1",  # /slots shows each slot's prompt text
        },
        name_prefix="ccsandbox-test-llama",
    )
    try:
        yield server
    finally:
        stop_container(server.container)


@pytest.fixture(scope="session")
def proxy(llama: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    work = tmp_path_factory.mktemp("ccproxy")
    proxy = start_proxy(llama.url + "/v1", work / "ccproxy.log", trace_dir=work / "traces")
    try:
        yield proxy
    finally:
        stop_proxy(proxy)


@pytest.fixture
def client(proxy: Proxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="unused-local", max_retries=0, timeout=300)
