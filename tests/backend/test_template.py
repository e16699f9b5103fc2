"""backends/llama-server/templates/qwen2.5-coder-tools.jinja on the real llama-server with the real
Qwen2.5-Coder-0.5B: what it renders, and that llama-server's --jinja parser turns the model's bare-JSON
tool calls into OpenAI `tool_calls` (streamed and not, tool_choice auto and required)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from harness.llama import LlamaServer
from llama_helpers import OPENAI_WRITE_FILE, REPO, dump

pytestmark = pytest.mark.backend

TEMPLATE = REPO / "backends" / "llama-server" / "templates" / "qwen2.5-coder-tools.jinja"
ASK = [{"role": "user", "content": "Create the file hello.txt containing the text hi. Use write_file."}]


def chat(llama: LlamaServer, **body: Any) -> dict[str, Any]:
    request = {"messages": ASK, "tools": [OPENAI_WRITE_FILE], "temperature": 0, "max_tokens": 64, **body}
    result: dict[str, Any] = llama.post("/v1/chat/completions", request)
    return result


def stream_chat(llama: LlamaServer, **body: Any) -> list[dict[str, Any]]:
    request = {
        "messages": ASK,
        "tools": [OPENAI_WRITE_FILE],
        "temperature": 0,
        "max_tokens": 64,
        "stream": True,
    }
    chunks: list[dict[str, Any]] = []
    with httpx.stream("POST", llama.url + "/v1/chat/completions", json={**request, **body}, timeout=300) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    return chunks


def assert_write_file_call(call: dict[str, Any]) -> None:
    assert call["type"] == "function"
    assert call["function"]["name"] == "write_file"
    arguments = json.loads(call["function"]["arguments"])
    assert isinstance(arguments, dict)
    assert set(arguments) <= {"path", "content"}


def test_server_runs_our_template(llama: LlamaServer) -> None:
    props = llama.get("/props")
    assert props["chat_template"].strip() == TEMPLATE.read_text().strip()
    assert "<tool_call>" not in props["chat_template"]


def test_tools_prompt_asks_for_bare_json(llama: LlamaServer) -> None:
    rendered = llama.post("/apply-template", {"messages": ASK, "tools": [OPENAI_WRITE_FILE]})["prompt"]
    assert "<tools>\n" + json.dumps(OPENAI_WRITE_FILE) in rendered or '"name": "write_file"' in rendered
    assert "without code fences" in rendered
    assert "<tool_call>" not in rendered
    assert rendered.endswith("<|im_start|>assistant\n")


def test_history_tool_calls_render_as_bare_json(llama: LlamaServer) -> None:
    messages = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "write_file", "arguments": '{"path": "hello.txt", "content": "hi"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    ]
    rendered = llama.post("/apply-template", {"messages": messages, "tools": [OPENAI_WRITE_FILE]})["prompt"]
    assert (
        '<|im_start|>assistant\n{"name": "write_file", "arguments": {"path": "hello.txt", "content": "hi"}}'
        "<|im_end|>\n<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>\n"
    ) in rendered


@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_tool_call_is_parsed(llama: LlamaServer, tool_choice: str) -> None:
    result = chat(llama, tool_choice=tool_choice)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls", dump(result)
    calls = choice["message"]["tool_calls"]
    assert len(calls) >= 1
    assert_write_file_call(calls[0])
    assert not (choice["message"].get("content") or "").lstrip().startswith("{"), dump(result)


def test_streamed_tool_call_is_parsed(llama: LlamaServer) -> None:
    chunks = stream_chat(llama, tool_choice="auto")
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in chunks:
        for choice in chunk.get("choices", []):
            for delta in choice["delta"].get("tool_calls") or []:
                call = calls.setdefault(delta["index"], {"type": "function", "function": {"arguments": ""}})
                if delta.get("id"):
                    call["id"] = delta["id"]
                function = delta.get("function") or {}
                if function.get("name"):
                    call["function"]["name"] = function["name"]
                call["function"]["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    assert finish == "tool_calls", dump(chunks)
    assert calls, dump(chunks)
    assert_write_file_call(calls[0])
    assert calls[0].get("id")
    timings = chunks[-1].get("timings") or {}
    assert timings.get("prompt_n", 0) + timings.get("cache_n", 0) > 0
