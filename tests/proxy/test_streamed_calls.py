"""Calls written under the tool grammar stream as they are written: the name once it is written, then the
arguments fragment by fragment; text streams at once; a code block in another language stays text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message
from ccproxy.streamed_calls import CallPart, CallStart, StreamedCalls, StreamPiece
from ccproxy.text_tool_calls import TextToolCallTranslator, ToolCall, split_tool_calls
from ccproxy.translate_stream import StreamTranslator
from fakes import assembled

pytestmark = pytest.mark.unit

NAMES = frozenset({"write_file", "read_file"})
WRITE = '{"name": "write_file", "arguments": {"path": "a.txt", "content": "x } {  y\\n\\"q\\""}}'
WRITE_ARGS = '{"path":"a.txt","content":"x } {  y\\n\\"q\\""}'
READ = '{"name": "read_file", "arguments": {"path": "b"}}'
PRETTY = '{\n  "name": "write_file",\n  "arguments": {\n    "path": "a.txt",\n    "content": "hi"\n  }\n}'


def merged(pieces: list[StreamPiece]) -> list[StreamPiece]:
    """Adjacent text joined, and a call's adjacent argument fragments joined."""
    out: list[StreamPiece] = []
    for piece in pieces:
        if isinstance(piece, str) and out and isinstance(out[-1], str):
            out[-1] += piece
        elif isinstance(piece, CallPart) and out and isinstance(out[-1], CallPart):
            out[-1] = CallPart(out[-1].arguments + piece.arguments)
        else:
            out.append(piece)
    return out


def call(name: str, arguments: str) -> list[StreamPiece]:
    return [CallStart(name), CallPart(arguments)]


CASES: list[tuple[str, list[StreamPiece]]] = [
    ("Plain text.\nTwo lines.", ["Plain text.\nTwo lines."]),
    (WRITE, call("write_file", WRITE_ARGS)),
    (WRITE + "\n", call("write_file", WRITE_ARGS)),
    ("I will write it.\n" + WRITE, ["I will write it.\n", *call("write_file", WRITE_ARGS)]),
    (WRITE + "\n" + READ, [*call("write_file", WRITE_ARGS), *call("read_file", '{"path":"b"}')]),
    ("```json\n" + PRETTY + "\n```\n", call("write_file", '{"path":"a.txt","content":"hi"}')),
    ("```\n" + READ + "\n```", call("read_file", '{"path":"b"}')),
    ('{"name": "read_file", "arguments": {}}', call("read_file", "{}")),
    (
        '{"name": "read_file", "arguments": {"n": [1, {"a": []}], "s": "]}"}}',
        call("read_file", '{"n":[1,{"a":[]}],"s":"]}"}'),
    ),
    # free text under the grammar: a dict, another language's code block, an indented line
    ('{"a": 1}\nok', ['{"a": 1}\nok']),
    ("```python\n" + WRITE + "\n```\nDone.", ["```python\n" + WRITE + "\n```\nDone."]),
    ("  " + WRITE, ["  " + WRITE]),
    ("Call " + WRITE, ["Call " + WRITE]),
    ('{"name": "invented", "arguments": {}}', ['{"name": "invented", "arguments": {}}']),
    ("{", ["{"]),
    ("``", ["``"]),
    # cut by max_tokens: the call ends with what was written
    ('{"name": "write_file", "arguments": {"path": "a', call("write_file", '{"path":"a')),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_whole_text(text: str, expected: list[StreamPiece]) -> None:
    calls = StreamedCalls(NAMES)
    assert merged(calls.feed(text) + calls.flush()) == expected
    assert calls.found == sum(isinstance(p, CallStart) for p in expected)


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_character_by_character_gives_the_same_pieces(text: str, expected: list[StreamPiece]) -> None:
    calls = StreamedCalls(NAMES)
    pieces: list[StreamPiece] = []
    for c in text:
        pieces += calls.feed(c)
    pieces += calls.flush()
    assert merged(pieces) == expected


@pytest.mark.parametrize("text", [WRITE, "Ok.\n" + WRITE + "\n" + READ, "```json\n" + PRETTY + "\n```"])
def test_the_streamed_arguments_are_those_of_the_whole_call(text: str) -> None:
    """What streams is the call the whole-text recogniser finds, argument for argument."""
    streamed = [p for p in merged(StreamedCalls(NAMES).feed(text)) if not isinstance(p, str)]
    whole = [p for p in split_tool_calls(text, NAMES) if isinstance(p, ToolCall)]
    assert [p.name for p in streamed if isinstance(p, CallStart)] == [c.name for c in whole]
    parts = [json.loads(p.arguments) for p in streamed if isinstance(p, CallPart)]
    assert parts == [json.loads(c.arguments) for c in whole]


def test_the_call_opens_when_its_name_is_written_and_its_arguments_follow_as_written() -> None:
    calls = StreamedCalls(NAMES)
    assert calls.feed("Sure.\n") == ["Sure.\n"]
    assert calls.feed('{"name": "wri') == []  # may still open a call
    assert calls.feed('te_file", "arguments": {"pa') == [CallStart("write_file"), CallPart('{"pa')]
    assert calls.feed('th": "a b",\n  ') == [CallPart('th":"a b",')]
    assert calls.feed('"content": "x"}') == [CallPart('"content":"x"}')]
    assert calls.feed("}\n") == []  # the wrapper's brace: syntax, not text
    assert calls.flush() == []


def test_text_streams_at_once_and_only_a_possible_call_or_fence_is_held() -> None:
    calls = StreamedCalls(NAMES)
    assert calls.feed("Hello {x}") == ["Hello {x}"]
    assert calls.feed("\n`") == ["\n"]
    assert calls.feed("``py") == []  # a fence line is decided at its end
    assert calls.feed("thon\n") == ["```python\n"]
    assert calls.feed(READ) == [READ]  # inside a Python block: code
    assert calls.feed("\n```\n{") == ["\n```\n"]
    assert calls.feed('"na') == []
    assert calls.feed('me": "wrong"') == ['{"name": "wrong"']


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"id": "c1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def translate(chunks: list[dict[str, Any]]) -> tuple[list[list[dict[str, Any]]], Message]:
    """The events each chunk produced, and the message an Anthropic SDK client assembles from them."""
    translator = TextToolCallTranslator(StreamTranslator(model="m", message_id="msg_1"), NAMES, streamed=True)
    per_chunk = [translator.start()]
    per_chunk += [translator.feed(c) for c in chunks]
    per_chunk.append(translator.finish())
    snapshot = assembled([e for events in per_chunk for e in events])
    assert isinstance(snapshot, Message)
    return per_chunk, snapshot


def test_the_client_sees_the_tool_use_block_before_the_call_is_complete() -> None:
    text = "Fixing.\n" + WRITE
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
    per_chunk, message = translate([chunk(p) for p in pieces] + [chunk(None, "stop")])
    starts = [(i, e) for i, events in enumerate(per_chunk) for e in events if "content_block" in e]
    tool_start, event = starts[-1]
    assert event["content_block"]["name"] == "write_file"
    deltas = [
        i
        for i, events in enumerate(per_chunk)
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    ]
    assert len(deltas) > 3
    assert tool_start <= deltas[0] < len(pieces) - 1  # long before the last chunk
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["text", "tool_use"]
    block = message.content[1]
    assert block.type == "tool_use"
    assert block.input == json.loads(WRITE_ARGS)


def test_a_call_cut_by_max_tokens_ends_as_anthropic_ends_it() -> None:
    text = '{"name": "write_file", "arguments": {"path": "a.txt", "content": "unfini'
    per_chunk, message = translate([chunk(text[:40]), chunk(text[40:]), chunk(None, "length")])
    assert message.stop_reason == "max_tokens"
    assert [b.type for b in message.content] == ["tool_use"]
    events = [e for events in per_chunk for e in events]
    assert [e["type"] for e in events][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    partial = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert partial == '{"path":"a.txt","content":"unfini'
