"""The translation core is pure: data in, data out. None of its modules imports an I/O library."""

from __future__ import annotations

import importlib

import pytest
from imports import imported_roots

pytestmark = pytest.mark.unit

PURE = (
    "auth",
    "budget",
    "config_values",
    "errors",
    "layout",
    "model_map",
    "plan",
    "prefill_log",
    "prefix_key",
    "profile",
    "repeat_hint",
    "session_stats",
    "sse",
    "text_repair",
    "text_tool_calls",
    "tool_grammar",
    "translate_messages",
    "translate_request",
    "translate_response",
    "translate_stream",
    "types_anthropic",
    "types_events",
    "types_openai",
    "validate",
)
IO = {"httpx", "httpx_aiohttp", "starlette", "asyncio", "aiohttp", "uvicorn", "anyio", "socket", "subprocess"}
IO |= {"os", "prometheus_client"}


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_import_no_io_library(name: str) -> None:
    module = importlib.import_module(f"ccproxy.{name}")
    assert not imported_roots(module) & IO
