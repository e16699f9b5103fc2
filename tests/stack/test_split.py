"""`split` mode: the real 0.5B model's layers on two llama.cpp rpc-server containers, llama-server in front
(`--rpc`), answering a tool call through the proxy; the same greedy request then gives the same answer on
a single llama-server (`local`)."""

from __future__ import annotations

from typing import Any

import pytest
from stack_helpers import Stack, http_json

pytestmark = [pytest.mark.stack, pytest.mark.timeout(3600)]

WINDOW = ("--context-window", "2048")
TOOL = {
    "name": "get_weather",
    "description": "The current weather of a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 48,
    "temperature": 0,
    "tools": [TOOL],
    "tool_choice": {"type": "tool", "name": "get_weather"},
    "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
}


def ask(stack: Stack, docker: Any) -> dict[str, Any]:
    url = f"http://{stack.ip(docker, 'proxy', 'backend')}:8787/v1/messages"
    headers = {"authorization": f"Bearer {stack.token}", "anthropic-version": "2023-06-01"}
    msg: dict[str, Any] = http_json("POST", url, REQUEST, headers)
    return msg


def test_split_answers_a_tool_call_like_one_server(stack: Stack, docker: Any, llama_image: str) -> None:
    stack.ccstack("up", "split", "--rpc-workers", "2", *WINDOW, timeout=1800)
    assert stack.state["services"] == ["proxy", "llama-server", "rpc-server", "rpc-server-2"]
    for worker in ("rpc-server", "rpc-server-2"):
        container = stack.container(docker, worker)
        assert container.attrs["Config"]["User"] == "1000:1000"
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    split = ask(stack, docker)
    log = stack.container(docker, "llama-server").logs().decode(errors="replace")
    # llama-server loaded the layers onto both rpc-servers (its device list names them)
    assert "rpc-server:50052" in log, log[-3000:]
    assert "rpc-server-2:50052" in log, log[-3000:]
    assert split["stop_reason"] == "tool_use"
    (call,) = [b for b in split["content"] if b["type"] == "tool_use"]
    assert call["name"] == "get_weather"
    assert isinstance(call["input"].get("city"), str)

    stack.ccstack("down")
    stack.ccstack("up", "local", "--no-prewarm", *WINDOW, timeout=1800)
    single = ask(stack, docker)
    blocks = [{k: v for k, v in b.items() if k != "id"} for b in split["content"]]
    assert blocks == [{k: v for k, v in b.items() if k != "id"} for b in single["content"]]
    print(f"split and single server: {blocks}")
