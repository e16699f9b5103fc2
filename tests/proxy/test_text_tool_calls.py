"""Tool calls written as text (bare JSON, ```json fences) recovered into tool_calls; everything else stays
text, and text streams as soon as it cannot start a call."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message
from ccproxy.text_tool_calls import (
    ChunkRewriter,
    TextToolCalls,
    TextToolCallTranslator,
    ToolCall,
    rewrite_message,
    split_tool_calls,
)
from ccproxy.translate_stream import StreamTranslator
from fakes import assembled

pytestmark = pytest.mark.unit

NAMES = frozenset({"write_file", "read_file"})
WRITE = '{"name": "write_file", "arguments": {"path": "a.txt", "content": "x } { y"}}'
WRITE_CALL = ToolCall("write_file", '{"path": "a.txt", "content": "x } { y"}')


def merged(pieces: list[str | ToolCall]) -> list[str | ToolCall]:
    out: list[str | ToolCall] = []
    for piece in pieces:
        if isinstance(piece, str) and out and isinstance(out[-1], str):
            out[-1] += piece
        else:
            out.append(piece)
    return out


CASES: list[tuple[str, list[str | ToolCall]]] = [
    ("Plain text.", ["Plain text."]),
    ('A dict: {"a": 1, "b": 2}.', ['A dict: {"a": 1, "b": 2}.']),
    ('{"a": 1}\n{"b": 2}', ['{"a": 1}\n{"b": 2}']),
    ("```python\nd = {'a': 1}\n```", ["```python\nd = {'a': 1}\n```"]),
    ("{}", ["{}"]),
    (WRITE, [WRITE_CALL]),
    ("  \n" + WRITE + "\n", [WRITE_CALL, "\n"]),
    ("Sure.\n```json\n" + WRITE + "\n```\nDone.", ["Sure.\n", WRITE_CALL, "\nDone."]),
    ("```\n" + WRITE + "\n```", [WRITE_CALL]),
    (
        WRITE + '\n{"name": "read_file", "parameters": "{\\"path\\": \\"b\\"}"}',
        [WRITE_CALL, ToolCall("read_file", '{"path": "b"}')],
    ),
    ('{"name": "read_file"}', [ToolCall("read_file", "{}")]),
    # not calls: unknown tool, cut by max_tokens, wrong argument type, extra keys, mid-line, unclosed fence
    ('{"name": "invented", "arguments": {}}', ['{"name": "invented", "arguments": {}}']),
    ('{"name": "write_file", "arguments": {"path": "a', ['{"name": "write_file", "arguments": {"path": "a']),
    ('{"name": "read_file", "arguments": [1]}', ['{"name": "read_file", "arguments": [1]}']),
    ('{"name": "read_file", "arguments": {}, "x": 1}', ['{"name": "read_file", "arguments": {}, "x": 1}']),
    ("Call " + WRITE, ["Call " + WRITE]),
    # an unclosed fence is text, the call on the next line still a call
    ("```json\n" + WRITE + " trailing", ["```json\n", WRITE_CALL, " trailing"]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_whole_text(text: str, expected: list[str | ToolCall]) -> None:
    assert merged(split_tool_calls(text, NAMES)) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_character_by_character_gives_the_same_pieces(text: str, expected: list[str | ToolCall]) -> None:
    recogniser = TextToolCalls(NAMES)
    pieces: list[str | ToolCall] = []
    for c in text:
        pieces += recogniser.feed(c)
    pieces += recogniser.flush()
    assert merged(pieces) == expected
    assert recogniser.found == sum(isinstance(p, ToolCall) for p in expected)


def test_text_streams_at_once_and_only_a_possible_call_is_held() -> None:
    recogniser = TextToolCalls(NAMES)
    assert recogniser.feed("Hello wor") == ["Hello wor"]
    assert recogniser.feed("ld {x}\n") == ["ld {x}\n"]
    assert recogniser.feed("{") == []  # a line starting with { may be a call
    assert recogniser.feed('"na') == []
    assert recogniser.feed('me": "wr') == []  # still a prefix of write_file
    assert recogniser.feed('ong"') == ['{"name": "wrong"']  # no such tool: text, at once
    assert recogniser.feed(" more") == [" more"]
    assert recogniser.feed('\n{"a": 1}') == ['\n{"a": 1}']  # decided at the first key
    assert recogniser.feed("\n```") == ["\n"]  # a fence may open a call
    assert recogniser.feed("py\nx = 1") == ["```py\nx = 1"]


def test_rewrite_message_moves_calls_to_tool_calls() -> None:
    message = {"role": "assistant", "content": "Ok.\n" + WRITE}
    response = {
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5},
    }
    out = rewrite_message(response, NAMES)
    message = out["choices"][0]["message"]
    assert message["content"] == "Ok."
    assert message["tool_calls"] == [
        {"type": "function", "function": {"name": "write_file", "arguments": WRITE_CALL.arguments}}
    ]
    assert out["usage"] == {"prompt_tokens": 5}
    plain = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "{x}"}}]}
    assert rewrite_message(plain, NAMES) is plain


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"id": "c1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def test_chunk_rewriter_orders_text_and_calls_and_keeps_finish_and_usage_last() -> None:
    rewriter = ChunkRewriter(NAMES)
    out = rewriter.rewrite(chunk("Ok.\n" + WRITE[:20]))
    assert [c["choices"][0]["delta"] for c in out] == [{"content": "Ok.\n"}]
    out = rewriter.rewrite(chunk(WRITE[20:] + "\nbye", "stop", usage={"completion_tokens": 9}))
    deltas = [c["choices"][0]["delta"] for c in out]
    assert deltas[0]["tool_calls"][0]["index"] == 0
    assert deltas[0]["tool_calls"][0]["function"]["name"] == "write_file"
    assert deltas[1:] == [{"content": "\nbye"}]
    assert [c["choices"][0]["finish_reason"] for c in out] == [None, "stop"]
    assert "usage" not in out[0]
    assert out[-1]["usage"] == {"completion_tokens": 9}
    assert rewriter.found == 1


def translate(chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Message]:
    translator = TextToolCallTranslator(StreamTranslator(model="m", message_id="msg_1"), NAMES)
    events = translator.start()
    for c in chunks:
        events += translator.feed(c)
    events += translator.finish()
    snapshot = assembled(events)
    assert isinstance(snapshot, Message)
    return events, snapshot


def test_stream_call_becomes_tool_use_with_stop_reason_tool_use() -> None:
    pieces = ["```json\n", WRITE[:10], WRITE[10:30], WRITE[30:], "\n```"]
    events, message = translate([chunk(p) for p in pieces] + [chunk(None, "stop")])
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["tool_use"]
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.name == "write_file"
    assert block.input == {"path": "a.txt", "content": "x } { y"}
    assert block.id == "toolu_1_0"
    assert events[-1] == {"type": "message_stop"}


def test_stream_text_with_braces_and_a_cut_call_stay_text() -> None:
    text = 'Use {} here.\n{"name": "write_file", "arguments": {"pa'
    _, message = translate([chunk(text[:15]), chunk(text[15:]), chunk(None, "length")])
    assert message.stop_reason == "max_tokens"
    assert [b.type for b in message.content] == ["text"]
    block = message.content[0]
    assert block.type == "text"
    assert block.text == text


def test_stream_without_finish_reason_flushes_held_text_before_failing_cleanly() -> None:
    translator = TextToolCallTranslator(
        StreamTranslator(model="m", message_id="msg_1", require_finish_reason=False), NAMES
    )
    translator.start()
    assert translator.feed(chunk("{")) == []
    events = translator.finish()
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["content_block_start", "content_block_delta", "content_block_stop"]
    assert events[1]["delta"] == {"type": "text_delta", "text": "{"}
