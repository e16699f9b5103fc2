"""Valid Unicode out of the upstream's text: bytes that are not UTF-8, lone and split surrogates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ccproxy.text_repair import (
    REPLACEMENT,
    SurrogateRepair,
    decode_text,
    may_hold_surrogates,
    repair_strings,
    repair_text,
)

pytestmark = pytest.mark.unit

SMILE = "\U0001f600"
HIGH, LOW = "\ud83d", "\ude00"


def delta(**fields: Any) -> dict[str, Any]:
    return {"id": "c", "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


def texts(chunks: list[dict[str, Any]], key: str = "content") -> str:
    return "".join(c["choices"][0]["delta"].get(key) or "" for c in chunks if c.get("choices"))


def args(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        call["function"]["arguments"]
        for c in chunks
        if c.get("choices")
        for call in c["choices"][0]["delta"].get("tool_calls", [])
    )


def test_decode_text_and_the_cheap_test() -> None:
    assert decode_text("é".encode()) == "é"
    assert decode_text(b"a\xffb\xed\xa0\x80") == "a\ufffdb\ufffd\ufffd\ufffd"
    assert may_hold_surrogates(b'{"a":"\\ud83d"}')
    assert may_hold_surrogates('"\\uDC00"')
    assert not may_hold_surrogates(b'{"a":"\\u00e9 plain"}')


def test_repair_text_joins_pairs_and_replaces_halves() -> None:
    assert repair_text("plain") == "plain"
    assert repair_text(HIGH + LOW) == SMILE
    assert repair_text("a" + HIGH + "b" + LOW) == f"a{REPLACEMENT}b{REPLACEMENT}"
    assert repair_strings({"k" + HIGH: [HIGH, 1, None]}) == {"k" + REPLACEMENT: [REPLACEMENT, 1, None]}


def test_a_pair_split_across_chunks_is_joined() -> None:
    repair = SurrogateRepair()
    out = repair.chunk(delta(content="a" + HIGH))
    assert repair.holding
    out += repair.chunk(delta(content=LOW + "b"))
    out += repair.flush()
    assert texts(out) == f"a{SMILE}b"
    for chunk in out:
        json.dumps(chunk, ensure_ascii=False).encode()  # every chunk encodable


def test_lone_halves_become_replacement_characters() -> None:
    repair = SurrogateRepair()
    out = repair.chunk(delta(content=LOW + "x"))  # a low half with nothing before it
    out += repair.chunk(delta(content="y" + HIGH))  # a high half ...
    out += repair.chunk(delta(content=None, tool_calls=[{"index": 0, "function": {"name": "f"}}]))  # ... cut
    out += repair.chunk(delta(content="z" + HIGH))
    out += repair.flush()  # the stream ends holding one
    assert texts(out) == f"{REPLACEMENT}xy{REPLACEMENT}z{REPLACEMENT}"
    assert not repair.holding


def test_reasoning_and_tool_arguments_are_repaired_per_field() -> None:
    repair = SurrogateRepair()

    def call(arguments: str) -> list[dict[str, Any]]:
        return [{"index": 0, "function": {"arguments": arguments}}]

    out = repair.chunk(delta(reasoning_content="r" + HIGH, tool_calls=call('{"a":"' + HIGH)))
    out += repair.chunk(delta(reasoning_content=LOW, tool_calls=call(LOW + '"}')))
    assert texts(out, "reasoning_content") == "r" + SMILE
    assert json.loads(args(out)) == {"a": SMILE}


def test_other_strings_and_other_chunks_are_repaired_too() -> None:
    repair = SurrogateRepair()
    [chunk] = repair.chunk({"id": "c" + HIGH, "choices": [], "usage": {"prompt_tokens": 1}})
    assert chunk["id"] == "c" + REPLACEMENT
    [chunk] = repair.chunk({"choices": [{"index": 1, "delta": {"content": HIGH}}]})
    assert chunk["choices"][0]["delta"]["content"] == REPLACEMENT
