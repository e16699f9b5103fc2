"""OpenAI stream chunks -> Anthropic stream events, over llama-server-shaped SSE fixtures.

Fixtures: tests/fixtures/openai_stream/*.sse (hand-written, shaped exactly like llama-server's
``/v1/chat/completions`` stream) and, when present, tests/fixtures/llama_server/*.sse (recorded from a
real llama-server). Every event sequence is also folded by the official anthropic SDK's accumulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from ccproxy.errors import (
    ApiError,
    OverloadedError,
    PromptTooLongError,
    ProxyError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from ccproxy.translate_response import thinking_signature
from ccproxy.translate_stream import Event, StreamTranslator

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
STREAMS = sorted((FIXTURES / "openai_stream").glob("*.sse")) + sorted(
    (FIXTURES / "llama_server").glob("*.sse")
)


def read_sse(path: Path) -> list[dict[str, Any]]:
    """The JSON payloads of an upstream SSE stream, up to ``data: [DONE]``."""
    chunks: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunks.append(json.loads(data))
    return chunks


def translate(chunks: list[Any], **kwargs: Any) -> list[Event]:
    t = StreamTranslator(
        model="claude-opus-5-5", message_id="msg_test", input_tokens=kwargs.pop("input_tokens", 7), **kwargs
    )
    events = t.start()
    for chunk in chunks:
        events += t.feed(chunk)
    events += t.finish()
    assert t.done
    return events


def check_protocol(events: list[Event]) -> None:
    """Anthropic stream invariants: order, indices 0..n-1, start/stop pairs, no interleaving."""
    assert events[0]["type"] == "message_start"
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
    open_index: int | None = None
    next_index = 0
    for event in events[1:-2]:
        kind = event["type"]
        if kind == "content_block_start":
            assert open_index is None, "blocks must not interleave"
            assert event["index"] == next_index
            open_index = next_index
            next_index += 1
        elif kind == "content_block_delta":
            assert event["index"] == open_index
        elif kind == "content_block_stop":
            assert event["index"] == open_index
            open_index = None
        else:
            pytest.fail(f"unexpected event {kind} inside the message")
    assert open_index is None


def fold(events: list[Event]) -> Any:
    """The final message as the official SDK accumulates it."""
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)  # type: ignore[arg-type]
    return snapshot


def upstream_text(chunks: list[dict[str, Any]], key: str) -> str:
    return "".join(
        c["choices"][0]["delta"].get(key) or ""
        for c in chunks
        if c.get("choices") and "delta" in c["choices"][0]
    )


# --- every fixture --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", STREAMS, ids=[f"{p.parent.name}/{p.stem}" for p in STREAMS])
def test_fixture_stream_is_well_formed(path: Path) -> None:
    chunks = read_sse(path)
    events = translate(chunks)
    check_protocol(events)
    message = fold(events)
    texts = "".join(b.text for b in message.content if b.type == "text")
    assert texts == upstream_text(chunks, "content")
    thinking = "".join(b.thinking for b in message.content if b.type == "thinking")
    assert thinking == upstream_text(chunks, "reasoning_content")
    for block in message.content:
        if block.type == "tool_use":
            assert isinstance(block.input, dict)
    assert message.stop_reason in ("end_turn", "tool_use", "max_tokens", "stop_sequence")


# --- specific fixtures -------------------------------------------------------------------------------------


def test_text_stream() -> None:
    events = translate(read_sse(FIXTURES / "openai_stream" / "text.sse"))
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 6,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0]["message"]
    assert start["usage"]["input_tokens"] == 7
    assert start["model"] == "claude-opus-5-5"
    assert start["id"] == "msg_test"
    assert events[2]["delta"] == {"type": "text_delta", "text": "Hel"}
    assert events[-2] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 20,
            "output_tokens": 6,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 100,
        },
    }


def test_tool_call_arguments_stream_incrementally() -> None:
    events = translate(read_sse(FIXTURES / "openai_stream" / "tool_call.sse"))
    check_protocol(events)
    tool_start = next(e for e in events if e["type"] == "content_block_start" and e["index"] == 1)
    assert tool_start["content_block"] == {
        "type": "tool_use",
        "id": "Vq7Zt1cKx0aB2Pq9",
        "name": "Write",
        "input": {},
    }
    json_deltas = [
        e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert len(json_deltas) == 9  # one per upstream fragment, not buffered
    assert json.loads("".join(json_deltas)) == {"file_path": "/workspace/hello.txt", "content": "hi\n"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"]["cache_read_input_tokens"] == 2000
    message = fold(events)
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[1].input == {"file_path": "/workspace/hello.txt", "content": "hi\n"}


@pytest.mark.parametrize("name", ["parallel_interleaved", "parallel_sequential"])
def test_parallel_tool_calls_become_separate_blocks(name: str) -> None:
    events = translate(read_sse(FIXTURES / "openai_stream" / f"{name}.sse"))
    check_protocol(events)
    message = fold(events)
    assert [(b.type, b.id, b.name, b.input) for b in message.content] == [
        ("tool_use", "call_a", "Bash", {"command": "ls"}),
        ("tool_use", "call_b", "Read", {"file_path": "/a.txt"}),
    ]


def test_sequential_parallel_calls_stream_the_second_call_too() -> None:
    events = translate(read_sse(FIXTURES / "openai_stream" / "parallel_sequential.sse"))
    second = [e for e in events if e["type"] == "content_block_delta" and e["index"] == 1]
    assert [e["delta"]["partial_json"] for e in second] == ['{"file_path":', ' "/a.txt"}']


def test_whole_tool_call_in_one_chunk() -> None:
    events = translate(read_sse(FIXTURES / "openai_stream" / "whole_tool_call.sse"))
    check_protocol(events)
    message = fold(events)
    assert message.content[0].input == {"file_path": "/workspace/hello.txt", "content": "hi\n"}
    assert events[-2]["usage"]["output_tokens"] == 20
    assert events[-2]["usage"]["input_tokens"] == 50


def test_reasoning_becomes_thinking_with_signature() -> None:
    events = translate(read_sse(FIXTURES / "openai_stream" / "reasoning.sse"))
    check_protocol(events)
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    signature = next(e for e in events if e.get("delta", {}).get("type") == "signature_delta")
    assert signature["index"] == 0
    assert signature["delta"]["signature"] == thinking_signature("The user wants a greeting.")
    message = fold(events)
    assert message.content[0].type == "thinking"
    assert message.content[0].signature == thinking_signature("The user wants a greeting.")
    assert message.content[1].text == "Hi there"


def test_openrouter_reasoning_field() -> None:
    message = fold(translate([c({"reasoning": "think"}), c({"content": "ok"}), c({}, "stop")]))
    assert [(b.type, getattr(b, "thinking", None)) for b in message.content] == [
        ("thinking", "think"),
        ("text", None),
    ]


def test_length_maps_to_max_tokens() -> None:
    events = translate(read_sse(FIXTURES / "openai_stream" / "length.sse"))
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"


# --- tables over small hand-made chunk lists ----------------------------------------------------------------


def c(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    chunk: dict[str, Any] = {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    chunk.update(extra)
    return chunk


def call(index: int, args: str, name: str | None = None, call_id: str | None = None) -> dict[str, Any]:
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if name is not None:
        fragment["function"]["name"] = name
        fragment["type"] = "function"
    if call_id is not None:
        fragment["id"] = call_id
    return c({"tool_calls": [fragment]})


@pytest.mark.parametrize(
    ("finish", "stop_sequences", "extra", "text", "expected_reason", "expected_seq"),
    [
        ("stop", (), {}, "hi", "end_turn", None),
        ("length", (), {}, "hi", "max_tokens", None),
        ("content_filter", (), {}, "hi", "refusal", None),
        ("stop", ("END",), {"stop_reason": "END"}, "hi", "stop_sequence", "END"),  # vLLM
        ("stop", ("END",), {"stopping_word": "END"}, "hi", "stop_sequence", "END"),  # llama.cpp
        ("stop", ("END",), {}, "hiEND", "stop_sequence", "END"),  # included in the output
        ("stop", ("END",), {}, "hi", "end_turn", None),
        ("stop", ("END",), {"stop_reason": 151645}, "hi", "end_turn", None),  # vLLM: a token id (EOS)
        ("weird_reason", (), {}, "hi", "end_turn", None),
    ],
)
def test_stop_reasons(
    finish: str,
    stop_sequences: tuple[str, ...],
    extra: dict[str, Any],
    text: str,
    expected_reason: str,
    expected_seq: str | None,
) -> None:
    last = c({}, finish)
    last["choices"][0].update(extra)
    events = translate([c({"content": text}), last], stop_sequences=stop_sequences)
    assert events[-2]["delta"] == {"stop_reason": expected_reason, "stop_sequence": expected_seq}


def test_finish_reason_stop_with_tool_calls_is_tool_use() -> None:
    events = translate([call(0, "{}", name="Bash", call_id="x"), c({}, "stop")])
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_missing_tool_id_gets_deterministic_id() -> None:
    events = translate([call(0, "{}", name="Bash"), c({}, "tool_calls")])
    assert events[1]["content_block"]["id"] == "toolu_test_0"


def test_server_reusing_index_zero_for_each_call() -> None:
    events = translate(
        [
            call(0, '{"command": "ls"}', name="Bash", call_id="a"),
            call(0, '{"command": "pwd"}', name="Bash", call_id="b"),
            c({}, "tool_calls"),
        ]
    )
    check_protocol(events)
    message = fold(events)
    assert [(b.id, b.input) for b in message.content] == [("a", {"command": "ls"}), ("b", {"command": "pwd"})]


def test_generated_ids_are_unique_per_call() -> None:
    events = translate([call(0, "{}", name="A"), call(1, "{}", name="B"), c({}, "tool_calls")])
    ids = [e["content_block"]["id"] for e in events if e["type"] == "content_block_start"]
    assert ids == ["toolu_test_0", "toolu_test_1"]


def test_text_after_incomplete_tool_is_held_back_in_order() -> None:
    events = translate(
        [
            call(0, '{"a":', name="A", call_id="a"),
            c({"content": "late text"}),
            call(0, "1}"),
            c({}, "tool_calls"),
        ]
    )
    check_protocol(events)
    message = fold(events)
    assert [b.type for b in message.content] == ["tool_use", "text"]
    assert message.content[0].input == {"a": 1}
    assert message.content[1].text == "late text"


def test_usage_fallbacks_without_upstream_usage() -> None:
    events = translate([c({"content": "a"}), c({"content": "b"}), c({}, "stop")], input_tokens=42)
    assert events[-2]["usage"] == {
        "input_tokens": 42,
        "output_tokens": 2,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_llama_timings_without_usage() -> None:
    events = translate(
        [c({"content": "a"}), c({}, "stop", timings={"cache_n": 30, "prompt_n": 5, "predicted_n": 1})]
    )
    assert events[-2]["usage"]["input_tokens"] == 5
    assert events[-2]["usage"]["cache_read_input_tokens"] == 30
    assert events[-2]["usage"]["output_tokens"] == 1


def test_empty_stream_still_ends_properly() -> None:
    events = translate([c({"role": "assistant", "content": None}), c({}, "stop")])
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]


def test_feed_without_start_emits_message_start() -> None:
    t = StreamTranslator(model="m", message_id="msg_1")
    events = t.feed(c({"content": "x"}))
    assert [e["type"] for e in events] == ["message_start", "content_block_start", "content_block_delta"]


def test_usage_only_and_keepalive_chunks_emit_nothing() -> None:
    t = StreamTranslator(model="m", message_id="msg_1")
    t.start()
    assert t.feed({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}) == []
    assert t.feed({"id": "x", "object": "chat.completion.chunk"}) == []
    assert t.feed({"choices": [{"index": 1, "delta": {"content": "other choice"}}]}) == []


# --- failures ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "chunk",
    [
        ["not", "an", "object"],
        "garbage",
        {"choices": "nope"},
        {"choices": ["nope"]},
        {"choices": [{"index": 0, "delta": "nope"}]},
        {"choices": [{"index": 0, "delta": {"content": 5}}]},
        {"choices": [{"index": 0, "delta": {"reasoning_content": ["x"]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": {"index": 0}}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": ["x"]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": "0", "function": {"name": "a"}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"name": "a", "arguments": 3}}]},
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": 1}]},
    ],
)
def test_garbage_raises_protocol_error(chunk: Any) -> None:
    t = StreamTranslator(model="m", message_id="msg_1")
    t.start()
    with pytest.raises(UpstreamProtocolError):
        t.feed(chunk)


@pytest.mark.parametrize(
    "args",
    ['{"a": 1', "[1, 2]", "not json", '"string"'],
    ids=["incomplete", "array", "invalid", "string"],
)
def test_bad_tool_json_raises_at_block_end(args: str) -> None:
    t = StreamTranslator(model="m", message_id="msg_1")
    t.start()
    t.feed(call(0, args, name="A", call_id="a"))
    t.feed(c({}, "tool_calls"))
    with pytest.raises(UpstreamProtocolError, match="'A'"):
        t.finish()
    assert t.fail(UpstreamProtocolError("bad tool json"))[0]["type"] == "error"


def test_a_tool_call_cut_by_the_token_limit_closes_with_what_was_written() -> None:
    """As Anthropic's API: the block ends with the partial arguments, stop_reason max_tokens."""
    t = StreamTranslator(model="m", message_id="msg_1")
    events = t.start()
    events += t.feed(call(0, '{"path": "a', name="A", call_id="a"))
    events += t.feed(c({}, "length"))
    events += t.finish()
    assert [e["type"] for e in events][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert deltas == [{"type": "input_json_delta", "partial_json": '{"path": "a'}]


def test_fragment_for_closed_tool_call_raises() -> None:
    t = StreamTranslator(model="m", message_id="msg_1")
    t.start()
    t.feed(call(0, "{}", name="A", call_id="a"))
    t.feed(c({"content": "text closes the tool block"}))
    with pytest.raises(UpstreamProtocolError, match="continued"):
        t.feed(call(0, ',"x":1}'))


def test_stream_without_finish_reason_raises() -> None:
    t = StreamTranslator(model="m", message_id="msg_1")
    t.start()
    t.feed(c({"content": "cut"}))
    with pytest.raises(UpstreamProtocolError, match="finish_reason"):
        t.finish()
    lenient = StreamTranslator(model="m", message_id="msg_1", require_finish_reason=False)
    lenient.start()
    lenient.feed(c({"content": "ok"}))
    assert lenient.finish()[-2]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"code": 503, "message": "Loading model", "type": "unavailable_error"}, OverloadedError),
        ({"code": 500, "message": "boom", "type": "server_error"}, ProxyError),
        (
            {
                "code": 400,
                "message": "too long",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 9,
                "n_ctx": 8,
            },
            PromptTooLongError,
        ),
        ({"message": "no code"}, ApiError),
        ("plain string", ApiError),
    ],
)
def test_error_chunk_raises_mapped_error(error: Any, expected: type[ProxyError]) -> None:
    t = StreamTranslator(model="m", message_id="msg_1")
    t.start()
    t.feed(c({"content": "partial"}))
    with pytest.raises(expected):
        t.feed({"error": error})


@pytest.mark.parametrize(
    "err",
    [OverloadedError("busy"), UpstreamTimeoutError("silent"), UpstreamProtocolError("garbage")],
    ids=["overloaded", "timeout", "protocol"],
)
def test_fail_emits_one_error_event_and_ends(err: ProxyError) -> None:
    t = StreamTranslator(model="m", message_id="msg_1")
    t.start()
    t.feed(c({"content": "partial"}))
    events = t.fail(err)
    assert events == [{"type": "error", "error": {"type": err.error_type, "message": err.message}}]
    assert t.done
    with pytest.raises(RuntimeError):
        t.feed(c({"content": "more"}))
    with pytest.raises(RuntimeError):
        t.finish()
    with pytest.raises(RuntimeError):
        t.fail(err)


def test_start_twice_is_a_bug() -> None:
    t = StreamTranslator(model="m", message_id="msg_1")
    t.start()
    with pytest.raises(RuntimeError):
        t.start()


# --- recorded llama-server streams (tests/fixtures/llama_server, owner: llama) -----------------------------

LLAMA = FIXTURES / "llama_server"


def upstream_tool_arguments(chunks: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(id, name, concatenated arguments) of the single tool call in an upstream stream."""
    call_id = name = ""
    arguments = []
    for chunk in chunks:
        for choice in chunk.get("choices", []):
            for call in choice.get("delta", {}).get("tool_calls") or []:
                call_id = call.get("id") or call_id
                name = call.get("function", {}).get("name") or name
                arguments.append(call.get("function", {}).get("arguments") or "")
    return call_id, name, "".join(arguments)


def final_usage(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    usage: dict[str, Any] = next(c["usage"] for c in reversed(chunks) if c.get("usage"))
    return usage


@pytest.mark.parametrize("name", ["tool_call", "tool_call_required"])
def test_llama_server_tool_call_stream(name: str) -> None:
    chunks = read_sse(LLAMA / f"{name}.sse")
    events = translate(chunks)
    check_protocol(events)
    call_id, tool_name, arguments = upstream_tool_arguments(chunks)
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["tool_use"]
    assert starts[0]["content_block"]["id"] == call_id
    assert starts[0]["content_block"]["name"] == tool_name == "write_file"
    deltas = [
        e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert len(deltas) > 1  # streamed in fragments, as the upstream sent them
    assert "".join(deltas) == arguments
    message = fold(events)
    assert message.content[0].input == json.loads(arguments)
    assert set(message.content[0].input) == {"path", "content"}
    assert message.stop_reason == "tool_use"
    usage = final_usage(chunks)
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert events[-2]["usage"] == {
        "input_tokens": usage["prompt_tokens"] - cached,
        "output_tokens": usage["completion_tokens"],
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }
    assert cached > 0  # recorded with a warm slot


@pytest.mark.parametrize(("name", "reason"), [("text", "end_turn"), ("text_length", "max_tokens")])
def test_llama_server_text_stream(name: str, reason: str) -> None:
    chunks = read_sse(LLAMA / f"{name}.sse")
    events = translate(chunks)
    check_protocol(events)
    message = fold(events)
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == upstream_text(chunks, "content")
    assert message.stop_reason == reason
    assert message.usage.output_tokens == final_usage(chunks)["completion_tokens"]


def test_llama_server_json_schema_title_stream() -> None:
    chunks = read_sse(LLAMA / "json_schema_title.sse")
    message = fold(translate(chunks))
    title = json.loads(message.content[0].text)
    assert isinstance(title["title"], str)
    assert message.stop_reason == "end_turn"
