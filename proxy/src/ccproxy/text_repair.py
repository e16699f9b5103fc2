"""Valid Unicode out of whatever text the upstream sends (pure).

An upstream can send bytes that are not UTF-8, or JSON that escapes half of a UTF-16 surrogate pair
(``"\\ud83d"``): valid JSON syntax, but Python decodes it to a string no UTF-8 encoder accepts, so the
event carrying it could not be written and the client's stream would end mid-answer. A stream may also
split a pair across two chunks (``"\\ud83d"``, then ``"\\ude00"``). What the proxy sends is repaired the
way a UTF-8 decoder repairs bytes:

    text = decode_text(raw)              # invalid UTF-8 bytes -> U+FFFD
    value = repair_strings(value)        # a whole document: lone surrogates -> U+FFFD
    repair = SurrogateRepair()           # a stream of chat-completion chunks:
    chunks = repair.chunk(chunk)         #   a pair split across chunks joined, lone halves -> U+FFFD
    chunks += repair.flush()             #   at the end: a chunk for a half still held back

``may_hold_surrogates(text)`` is the cheap test (a substring search) that keeps all of this off the path
of ordinary text: decoded strings hold a surrogate only where the JSON escaped one.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SurrogateRepair", "decode_text", "may_hold_surrogates", "repair_strings", "repair_text"]

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_FIELDS = ("content", "reasoning_content", "reasoning")

Key = str | int
"""A streamed text field of choice 0: a delta key (``content``), or a tool call's index (its arguments)."""


def decode_text(data: bytes) -> str:
    """UTF-8 text; bytes that are not UTF-8 become U+FFFD (as any UTF-8 decoder repairs them)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def may_hold_surrogates(text: str | bytes) -> bool:
    """False when JSON decoded from ``text`` cannot hold a surrogate (it escapes none)."""
    if isinstance(text, bytes):
        return b"\\ud" in text or b"\\uD" in text
    return "\\ud" in text or "\\uD" in text


def repair_text(text: str) -> str:
    """Pairs joined, lone surrogates replaced by U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def repair_strings(value: Any) -> Any:
    """``value`` (decoded JSON) with every string and key repaired; unchanged parts are kept as they are."""
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, dict):
        return {repair_text(k): repair_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [repair_strings(v) for v in value]
    return value


def _is_high(char: str) -> bool:
    return "\ud800" <= char <= "\udbff"


class SurrogateRepair:
    """Repairs the chunks of one chat-completion stream (choice 0's text, reasoning and tool arguments).

    A high surrogate at the end of a fragment is held back until the same field continues; the next
    fragment's low surrogate then completes the character. A half that is never completed becomes
    U+FFFD, in its own chunk, before the chunk that moves on."""

    def __init__(self) -> None:
        self._held: dict[Key, str] = {}

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks to translate in place of ``chunk`` (usually just the repaired chunk)."""
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return [*self.flush(), repair_strings(chunk)]
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(choice, dict) or choice.get("index", 0) != 0 or not isinstance(delta, dict):
            return [*self.flush(), repair_strings(chunk)]
        delta = dict(delta)
        continued: set[Key] = set()
        for field in _TEXT_FIELDS:
            if isinstance(delta.get(field), str):
                delta[field] = self._text(field, delta[field])
                continued.add(field)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            delta["tool_calls"] = [self._call(i, call, continued) for i, call in enumerate(calls)]
        stale = {key: held for key, held in self._held.items() if key not in continued}
        for key in stale:
            del self._held[key]
        repaired = repair_strings({**chunk, "choices": [{**choice, "delta": delta}, *choices[1:]]})
        return [*_replacement_chunks(stale), repaired]

    def flush(self) -> list[dict[str, Any]]:
        """A chunk with U+FFFD for every half still held (the stream ends, or moves on)."""
        held, self._held = self._held, {}
        return _replacement_chunks(held)

    def _text(self, key: Key, fragment: str) -> str:
        text = self._held.pop(key, "") + fragment
        if text and _is_high(text[-1]):
            self._held[key] = text[-1]
            text = text[:-1]
        return repair_text(text)

    def _call(self, position: int, call: object, continued: set[Key]) -> object:
        if not isinstance(call, dict):
            return call
        index = call.get("index", position)
        function = call.get("function")
        if not isinstance(index, int) or not isinstance(function, dict):
            return call
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            return call
        continued.add(index)
        return {**call, "function": {**function, "arguments": self._text(index, arguments)}}


def _replacement_chunks(held: dict[Key, str]) -> list[dict[str, Any]]:
    if not held:
        return []
    delta: dict[str, Any] = {}
    calls = []
    for key in held:
        if isinstance(key, int):
            calls.append({"index": key, "function": {"arguments": REPLACEMENT}})
        else:
            delta[key] = REPLACEMENT
    if calls:
        delta["tool_calls"] = calls
    return [{"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}]
