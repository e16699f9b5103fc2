"""Fixtures of the backend suite: the real llama-server container with the real default model, and the real
ccproxy in front of it (session-scoped: starting them costs ~10 s). Missing prerequisites FAIL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from ccstack import models
from harness import Ccproxy
from harness.llama import LlamaServer, llama_server
from llama_helpers import MODEL, STACK_ENV, backend_proxy


@pytest.fixture(scope="session")
def model_file() -> Path:
    try:
        return models.fetch(MODEL)
    except models.ModelError as exc:
        pytest.fail(f"cannot fetch the model {MODEL}: {exc}")


@pytest.fixture(scope="session")
def llama(model_file: Path) -> Iterator[LlamaServer]:
    # LLAMA_SERVER_SLOTS_DEBUG: /slots shows each slot's prompt text
    with llama_server(model_file, env=STACK_ENV | {"LLAMA_SERVER_SLOTS_DEBUG": "1"}) as server:
        yield server


@pytest.fixture(scope="session")
def proxy(llama: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ccproxy]:
    work = tmp_path_factory.mktemp("ccproxy")
    with backend_proxy(llama.url + "/v1", work / "ccproxy.log", trace_dir=work / "traces") as proxy:
        yield proxy


@pytest.fixture(scope="session")
def proxy_without_grammar(llama: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ccproxy]:
    """The proxy with `--tool-grammar off`: text tool calls recovered from unconstrained text."""
    work = tmp_path_factory.mktemp("ccproxy-no-grammar")
    with backend_proxy(
        llama.url + "/v1", work / "ccproxy.log", "--tool-grammar", "off", trace_dir=work / "traces"
    ) as proxy:
        yield proxy


@pytest.fixture
def client(proxy: Ccproxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="unused-local", max_retries=0, timeout=300)
