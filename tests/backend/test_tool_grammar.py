"""The tool-call grammar (ccproxy.tool_grammar) against the real llama-server and Qwen2.5-Coder-0.5B.

llama-server must parse the grammar built from every recorded Claude Code tool set, and the grammar must
turn the small model's made-up calls into valid calls: the same greedy prompt that, without it, names a
tool that does not exist gives a call of a real tool with schema-valid arguments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import jsonschema
import pytest
from ccproxy.tool_grammar import for_tools
from harness import Ccproxy
from harness.llama import LlamaServer

pytestmark = pytest.mark.backend

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
RECORDED = {
    "cli": FIXTURES / "01-turn1.json",
    "interactive": FIXTURES / "interactive" / "03-turn1.json",
    "sandbox": FIXTURES / "sessions" / "day1" / "01-turn1.json",
}
# Greedy, without the grammar, the 0.5B model answers this with a call of a tool named after the task.
RUN_TESTS = "Run the tests with python3 -m pytest and tell me the result."


def recorded_tools(name: str) -> list[dict[str, Any]]:
    body = json.loads(RECORDED[name].read_text())
    return list(body.get("body", body)["tools"])


def short(tool: dict[str, Any]) -> dict[str, Any]:
    """The tool with only the first sentence of its description: a short prompt for this CPU."""
    return {**tool, "description": tool["description"].split(". ")[0][:200]}


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_llama_server_parses_the_grammar_of_every_recorded_tool_set(llama: LlamaServer, name: str) -> None:
    tools = [
        {"type": "function", "function": {"name": t["name"], "parameters": t["input_schema"]}}
        for t in recorded_tools(name)
    ]
    body = {
        "messages": [{"role": "user", "content": "Say hi."}],
        "tools": tools,
        "tool_choice": "none",
        "grammar": for_tools(tools),
        "max_tokens": 4,
        "temperature": 0,
    }
    r = httpx.post(llama.url + "/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 200, r.text[:500]


def client(proxy: Ccproxy) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key="unused-local", max_retries=0, timeout=900)


def run_tests_request(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """The greedy "run the tests" request, as keyword arguments of ``messages.create`` / ``.stream``."""
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 160,
        "system": "You are a coding agent. Use the tools to act on files and run commands.",
        "tools": tools,
        "messages": [{"role": "user", "content": RUN_TESTS}],
        "extra_body": {"temperature": 0},
    }


def ask(proxy: Ccproxy, tools: list[dict[str, Any]]) -> anthropic.types.Message:
    return client(proxy).messages.create(**run_tests_request(tools))


def test_grammar_turns_a_made_up_call_into_a_valid_call(
    proxy: Ccproxy, proxy_without_grammar: Ccproxy
) -> None:
    tools = [short(t) for t in recorded_tools("cli") if t["name"] in ("Bash", "Edit", "Read", "Write")]
    by_name = {t["name"]: t for t in tools}

    plain = ask(proxy_without_grammar, tools)
    assert plain.stop_reason != "tool_use"  # the made-up call stays text: nothing would run
    assert not [b for b in plain.content if b.type == "tool_use"]

    constrained = ask(proxy, tools)
    assert constrained.stop_reason == "tool_use", constrained
    calls = [b for b in constrained.content if b.type == "tool_use"]
    assert calls
    for call in calls:
        assert call.name in by_name
        jsonschema.validate(call.input, by_name[call.name]["input_schema"])
    assert calls[0].name == "Bash"
    assert "pytest" in str(calls[0].input.get("command"))


def test_a_constrained_call_streams_while_the_model_writes_it(proxy: Ccproxy) -> None:
    """Streamed, the call's tool_use block opens once its name is written and its arguments arrive in
    many fragments as the model writes them (not in one piece at the end), and they add up to the
    same schema-valid call."""
    tools = [short(t) for t in recorded_tools("cli") if t["name"] in ("Bash", "Edit", "Read", "Write")]
    kinds: list[str] = []
    with client(proxy).messages.stream(**run_tests_request(tools)) as stream:
        for event in stream:
            if event.type == "content_block_start":
                kinds.append(f"start:{event.content_block.type}")
            elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                kinds.append("json")
        message = stream.get_final_message()
    assert message.stop_reason == "tool_use", message
    start = kinds.index("start:tool_use")
    fragments = kinds[start + 1 :].count("json")
    assert fragments >= 5, kinds  # one per few tokens of `{"command": "python3 -m pytest ..."}`
    call = next(b for b in message.content if b.type == "tool_use")
    assert call.name == "Bash"
    jsonschema.validate(call.input, next(t for t in tools if t["name"] == "Bash")["input_schema"])
    assert "pytest" in str(call.input.get("command"))
