"""Strict JSON for request bodies: non-finite numbers, lone surrogates and bytes that are not UTF-8 are
400s naming the field; every recorded Claude Code request still passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ccproxy.errors import InvalidRequestError
from ccproxy.types_anthropic import parse_messages_request
from ccproxy.validate import decode_body, find_lone_surrogate, loads_strict

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
BASE = '{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]'


def body(extra: str) -> bytes:
    return (BASE + extra + "}").encode()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (body(',"temperature":NaN'), "temperature: Input should be a finite number"),
        (body(',"top_p":Infinity'), "top_p: Input should be a finite number"),
        (body(',"top_k":-Infinity'), "top_k: Input should be a finite number"),
        (body(',"temperature":1e999'), "temperature: Input should be a finite number"),
        (
            body(',"tools":[{"name":"t","input_schema":{"type":"object","maximum":NaN}}]'),
            "tools.0.input_schema.maximum: Input should be a finite number",
        ),
        (
            body(',"output_config":{"format":{"type":"json_schema","schema":{"minimum":-1e400}}}'),
            "output_config.format.schema.minimum: Input should be a finite number",
        ),
    ],
)
def test_non_finite_numbers_are_400_naming_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        decode_body(raw)
    assert info.value.message.startswith(field)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"model":"\\ud800","max_tokens":5}', "model:"),
        (body(',"system":"ok \\udc00"'), "system:"),
        (
            b'{"messages":[{"role":"user","content":[{"type":"text","text":"a\\uD83D"}]}]}',
            "messages.0.content.0.text:",
        ),
        (b'{"metadata":{"\\ud800key":1}}', "metadata.?key:"),
    ],
)
def test_lone_surrogates_are_400_naming_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        decode_body(raw)
    assert info.value.message.startswith(field)
    assert "surrogate" in info.value.message
    info.value.message.encode()  # the message itself is valid UTF-8


def test_valid_escaped_pairs_and_plain_text_pass() -> None:
    payload = decode_body(b'{"text":"\\ud83d\\ude00 \\u00e9 \xc3\xa9 \\\\ud800 is text"}')
    assert payload == {"text": "\U0001f600 \u00e9 \u00e9 \\ud800 is text"}


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"", "empty request body"),
        (b"  \n", "empty request body"),
        (b'{"model":"\xff"}', "not valid UTF-8"),
        (b'{"model":"\xed\xa0\x80"}', "not valid UTF-8"),  # a surrogate encoded as UTF-8 bytes
        (b"{nope", "invalid JSON"),
        (b"[" * 100_000, "invalid JSON"),
    ],
)
def test_other_bad_bodies(raw: bytes, needle: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        decode_body(raw)
    assert needle in info.value.message


def test_find_lone_surrogate_paths() -> None:
    assert find_lone_surrogate({"a": [1, {"b": "ok"}, "x\ud800"]}) == "a.2"
    assert find_lone_surrogate(["fine", {"k": "\U0001f600"}]) is None
    assert find_lone_surrogate("\udfff") == "body"


def test_loads_strict() -> None:
    assert loads_strict('{"a": 1.5, "b": [1e3]}') == {"a": 1.5, "b": [1000.0]}
    assert loads_strict(b'{"a": "\\u00e9"}') == {"a": "\u00e9"}
    for bad in ('{"a": NaN}', "[Infinity]", "[-Infinity]", "[1e400]", "{"):
        with pytest.raises(ValueError):  # noqa: PT011 - json.loads' own error type
            loads_strict(bad)


def recorded_bodies() -> list[tuple[str, bytes]]:
    out = []
    for path in sorted(FIXTURES.rglob("*.json")):
        record = json.loads(path.read_text())
        if isinstance(record.get("body"), dict):
            # re-encoded the way the CLI sends it: UTF-8, not ASCII escapes
            out.append(
                (str(path.relative_to(FIXTURES)), json.dumps(record["body"], ensure_ascii=False).encode())
            )
    return out


@pytest.mark.parametrize(("name", "raw"), recorded_bodies())
def test_every_recorded_claude_code_request_passes(name: str, raw: bytes) -> None:
    req = parse_messages_request(decode_body(raw))
    assert req.messages, name


def test_the_recordings_are_all_there() -> None:
    assert len(recorded_bodies()) >= 9
