"""Tool calls written as text, recovered through the app (text_tool_calls.py, the plan's text-tool stage)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from fakes import (
    LLAMA,
    WRITE_AS_TEXT,
    FakeLlama,
    MarkedLlama,
    chunk,
    client_for,
    messages_body,
    parse_sse,
    sse,
    streaming,
    text_answer,
    types,
)

pytestmark = pytest.mark.app


@pytest.mark.parametrize(
    ("upstream_class", "mode", "recovered"),
    [
        (MarkedLlama, "auto", True),
        (FakeLlama, "auto", False),  # the template does not ask for it
        (MarkedLlama, "off", False),
        (FakeLlama, "on", True),
    ],
)
async def test_text_tool_calls_recovered_when_the_template_asks(
    upstream_class: type[FakeLlama], mode: str, recovered: bool
) -> None:
    upstream = upstream_class(chat=text_answer("Writing it.\n" + WRITE_AS_TEXT))
    settings = replace(LLAMA, text_tool_calls=mode)  # type: ignore[arg-type]
    async with client_for(upstream, settings) as client:
        r = await client.post("/v1/messages", json=messages_body())
        no_tools = await client.post("/v1/messages", json=messages_body(tools=[]))
        forced = await client.post("/v1/messages", json=messages_body(tool_choice={"type": "any"}))
    assert r.status_code == no_tools.status_code == forced.status_code == 200
    sent, sent_no_tools, sent_forced = upstream.bodies()
    message = r.json()
    assert ("grammar" in sent) == recovered  # calls constrained to the request's tools (tool_grammar)
    assert "grammar" not in sent_no_tools
    assert "grammar" not in sent_forced
    if recovered:
        assert sent["tool_choice"] == "none"  # plain text from the backend, same prompt
        assert 'write-call ::= "{" ws "\\"name\\"" ws ":" ws "\\"Write\\""' in sent["grammar"]
        assert message["stop_reason"] == "tool_use"
        assert [b["type"] for b in message["content"]] == ["text", "tool_use"]
        assert message["content"][1]["name"] == "Write"
        assert message["content"][1]["input"] == {"file_path": "a.txt"}
    else:
        assert "tool_choice" not in sent
        assert message["stop_reason"] == "end_turn"
        assert [b["type"] for b in message["content"]] == ["text"]
    assert "tool_choice" not in sent_no_tools
    assert sent_forced["tool_choice"] == "required"  # a forced choice keeps the backend's grammar


async def test_tool_grammar_off_keeps_plain_text_tool_calls() -> None:
    upstream = MarkedLlama(chat=text_answer(WRITE_AS_TEXT))
    async with client_for(upstream, replace(LLAMA, tool_grammar="off")) as client:
        r = await client.post("/v1/messages", json=messages_body())
    sent = upstream.bodies()[0]
    assert sent["tool_choice"] == "none"
    assert "grammar" not in sent
    assert r.json()["content"][0]["name"] == "Write"


async def test_streamed_text_tool_call_and_braces_in_text() -> None:
    answer, _ = streaming(
        sse(
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Use {} for sets.\n"}),
            chunk({"content": WRITE_AS_TEXT[:12]}),
            chunk({"content": WRITE_AS_TEXT[12:]}),
            chunk({}, "stop"),
        )
    )
    upstream = MarkedLlama(chat=answer)
    async with client_for(upstream, LLAMA) as client:
        r = await client.post("/v1/messages", json=messages_body(stream=True))
    events = parse_sse(r.text)
    assert upstream.bodies()[0]["tool_choice"] == "none"
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["text", "tool_use"]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert deltas[0] == {"type": "text_delta", "text": "Use {} for sets.\n"}
    assert json.loads(deltas[1]["partial_json"]) == {"file_path": "a.txt"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert "error" not in types(events)


async def test_pings_while_chunks_arrive_but_a_tool_call_is_held_back() -> None:
    parts: list[bytes | float | Exception] = []
    for c in WRITE_AS_TEXT:
        parts += [*sse(chunk({"content": c}), done=False), 0.01]
    parts += sse(chunk({}, "stop"))
    answer, _ = streaming(parts)
    async with client_for(MarkedLlama(chat=answer), LLAMA) as client:
        r = await client.post("/v1/messages", json=messages_body(stream=True))
    kinds = types(parse_sse(r.text))
    assert kinds.index("ping") < kinds.index("content_block_start"), kinds
    assert kinds[-2:] == ["message_delta", "message_stop"]
