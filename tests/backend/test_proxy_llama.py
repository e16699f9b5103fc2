"""The official anthropic SDK -> the real ccproxy (--backend-features llama-server) -> the real llama-server
container with --jinja and the real Qwen2.5-Coder-0.5B. Asserts protocol and cache behaviour, not wisdom."""

from __future__ import annotations

import concurrent.futures
import re
import uuid
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message, ToolUseBlock
from harness import Ccproxy
from harness.llama import LlamaServer
from llama_helpers import dump

pytestmark = pytest.mark.backend

MAIN_MODEL = "claude-opus-4-8"
WRITE_FILE: dict[str, Any] = {
    "name": "write_file",
    "description": "Write text content to a file",
    "input_schema": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    },
}
READ_FILE: dict[str, Any] = {
    "name": "read_file",
    "description": "Read a text file",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
}
ASK = "Create the file hello.txt containing the text hi. Use write_file."
# A Claude-Code-shaped system prompt, shortened: 0.5B on 2 cores prefills ~80-100 tokens/s.
SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.a1b; cc_entrypoint=cli;"},
    {"type": "text", "text": "You are a coding assistant working in /workspace."},
    {
        "type": "text",
        "text": "Rules: keep answers short. Prefer small edits. Read a file before changing it. "
        "Never invent file contents. Report what you changed in one sentence. "
        "Use the tools for every file operation; do not print file contents in prose.",
        "cache_control": {"type": "ephemeral"},
    },
]
TITLE_FORMAT = {
    "type": "json_schema",
    "schema": {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    },
}


def metric(llama: LlamaServer, name: str) -> float:
    text = httpx.get(llama.url + "/metrics", timeout=10).text
    match = re.search(rf"^llamacpp:{name} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def create(client: anthropic.Anthropic, **params: Any) -> Message:
    """messages.create with plain dicts (the SDK's TypedDicts would need casts everywhere); greedy decoding
    (the SDK no longer has a temperature parameter: it goes in the body)."""
    params.setdefault("extra_body", {"temperature": 0})
    message = client.messages.create(**params)
    assert isinstance(message, Message)
    return message


def tool_use(message: Message) -> ToolUseBlock:
    blocks = [b for b in message.content if isinstance(b, ToolUseBlock)]
    assert message.stop_reason == "tool_use", dump(message.model_dump())
    assert len(blocks) >= 1, dump(message.model_dump())
    return blocks[0]


def session(client: anthropic.Anthropic) -> anthropic.Anthropic:
    return client.with_options(default_headers={"X-Claude-Code-Session-Id": str(uuid.uuid4())})


def test_tool_call_non_streamed(client: anthropic.Anthropic) -> None:
    message = create(
        client,
        model=MAIN_MODEL,
        max_tokens=96,
        system=SYSTEM,
        tools=[WRITE_FILE, READ_FILE],
        messages=[{"role": "user", "content": ASK}],
    )
    block = tool_use(message)
    assert block.name == "write_file"
    assert isinstance(block.input, dict)
    assert block.id
    assert message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0) > 50


def test_tool_call_streamed(client: anthropic.Anthropic) -> None:
    events: list[str] = []
    params: dict[str, Any] = {
        "model": MAIN_MODEL,
        "max_tokens": 96,
        "system": SYSTEM,
        "tools": [WRITE_FILE, READ_FILE],
        "messages": [{"role": "user", "content": ASK}],
        "extra_body": {"temperature": 0},
    }
    with client.messages.stream(**params) as stream:
        for event in stream:
            events.append(event.type)
        message = stream.get_final_message()
    block = tool_use(message)
    assert block.name == "write_file"
    assert isinstance(block.input, dict)
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"
    assert "input_json" in events  # arguments arrived as input_json_delta events


def test_tool_round_trip_then_text(client: anthropic.Anthropic) -> None:
    """A tool_result goes back through the template (bare-JSON history) and the model answers."""
    first = create(
        client,
        model=MAIN_MODEL,
        max_tokens=96,
        system=SYSTEM,
        tools=[WRITE_FILE],
        messages=[{"role": "user", "content": ASK}],
    )
    block = tool_use(first)
    second = create(
        client,
        model=MAIN_MODEL,
        max_tokens=32,
        system=SYSTEM,
        tools=[WRITE_FILE],
        messages=[
            {"role": "user", "content": ASK},
            reply(first),
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "ok"}]},
        ],
    )
    assert second.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert second.content, dump(second.model_dump())


def test_count_tokens_equals_the_backend_prompt_n(
    client: anthropic.Anthropic, proxy: Ccproxy, llama: LlamaServer
) -> None:
    request: dict[str, Any] = {
        "model": MAIN_MODEL,
        "system": SYSTEM,
        "tools": [WRITE_FILE, READ_FILE],
        "messages": [{"role": "user", "content": f"Say hi. ({uuid.uuid4().hex})"}],
    }
    counted = client.messages.count_tokens(**request).input_tokens
    assert counted > 50

    # Through the proxy: the upstream's prompt size (uncached + cached) is the count.
    before = metric(llama, "prompt_tokens_total")
    message = create(client, **request, max_tokens=1)
    usage = message.usage
    assert usage.input_tokens + (usage.cache_read_input_tokens or 0) == counted, dump(usage.model_dump())
    # ...and llama-server's own counter agrees on the uncached part (independent of the proxy's arithmetic).
    assert metric(llama, "prompt_tokens_total") - before == usage.input_tokens

    # Directly: the very upstream request the proxy sent, without the prompt cache, has prompt_n == count.
    upstream = [t for t in proxy.traces() if t.get("upstream_request")][-1]["upstream_request"]
    direct = llama.post(
        "/v1/chat/completions", {**upstream, "stream": False, "cache_prompt": False, "max_tokens": 1}
    )
    assert direct["timings"]["cache_n"] == 0
    assert direct["timings"]["prompt_n"] == counted


def turn(client: anthropic.Anthropic, messages: list[dict[str, Any]], max_tokens: int = 24) -> Message:
    return create(
        client,
        model=MAIN_MODEL,
        max_tokens=max_tokens,
        system=SYSTEM,
        tools=[WRITE_FILE, READ_FILE],
        messages=messages,
    )


def reply(message: Message) -> dict[str, Any]:
    return {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]}


def prompt_size(message: Message) -> int:
    return message.usage.input_tokens + (message.usage.cache_read_input_tokens or 0)


def test_multi_turn_session_reads_the_prefix_from_cache(client: anthropic.Anthropic) -> None:
    chat = session(client)
    messages: list[dict[str, Any]] = []
    previous = 0
    for i, text in enumerate(["What is 2+2? Answer in one word.", "And 3+3?", "And 4+4?"]):
        messages.append({"role": "user", "content": text})
        message = turn(chat, messages)
        size = prompt_size(message)
        if i > 0:
            cached = message.usage.cache_read_input_tokens or 0
            # the whole previous prompt is a prefix of this one (deterministic rendering, same slot);
            # one token of slack at the boundary where the reply was appended
            assert cached >= previous - 1, dump(message.usage.model_dump())
            assert message.usage.input_tokens < size - previous + 8
        previous = size
        messages.append(reply(message))


def test_side_request_does_not_evict_the_main_slot(client: anthropic.Anthropic, llama: LlamaServer) -> None:
    chat = session(client)
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is 5+5? Answer in one word."}]
    first = turn(chat, messages)
    messages.append(reply(first))
    messages.append({"role": "user", "content": "And 7+7?"})

    def title() -> Message:
        # Claude Code's title request: same session, tools: [], a JSON-schema output format
        return create(
            chat,
            model=MAIN_MODEL,
            max_tokens=24,
            system=[{"type": "text", "text": "Name this coding session in two to five words."}],
            tools=[],
            messages=[{"role": "user", "content": f"<session>\n{messages[0]['content']}\n</session>"}],
            extra_body={"output_config": {"format": TITLE_FORMAT}},
        )

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        side = pool.submit(title)
        main = pool.submit(turn, chat, messages)
        second, side_message = main.result(timeout=600), side.result(timeout=600)
    assert side_message.content
    # the two ran on different slots (LLAMA_SERVER_SLOTS_DEBUG=1 makes /slots show each slot's prompt)
    slots = llama.slots()
    main_slots = [x["id"] for x in slots if "And 7+7?" in str(x.get("prompt"))]
    side_slots = [x["id"] for x in slots if "Name this coding session" in str(x.get("prompt"))]
    assert len(main_slots) == 1, dump(slots)
    assert len(side_slots) == 1, dump(slots)
    assert main_slots != side_slots
    # the main turn found the first turn's prompt in its slot despite the concurrent side request ...
    assert (second.usage.cache_read_input_tokens or 0) >= prompt_size(first) - 1, dump(
        second.usage.model_dump()
    )
    # ... and the next turn still finds all of turn 2's prompt there
    messages.append(reply(second))
    messages.append({"role": "user", "content": "And 8+8?"})
    third = turn(chat, messages)
    assert (third.usage.cache_read_input_tokens or 0) >= prompt_size(second) - 1, dump(
        third.usage.model_dump()
    )
