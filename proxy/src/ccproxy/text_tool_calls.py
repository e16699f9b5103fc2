"""Tool calls written as text, recovered into OpenAI ``tool_calls`` (pure, incremental).

Small models (Qwen2.5-Coder 0.5B/1.5B) answer a tool request with a bare JSON object
``{"name": "write_file", "arguments": {...}}``, sometimes inside a ```json fence. llama.cpp's parser for
such a template treats every ``{`` in the answer as the start of a call and fails the whole request
(HTTP 500, or an error after streamed text) when the text merely contains a brace, names an unknown tool,
or is cut by ``max_tokens``. With ``text_tool_calls`` the proxy asks the backend for plain text
(``tool_choice: "none"`` renders the same prompt, tools included) and recovers the calls here:

    calls = TextToolCalls({"write_file", "read_file"})
    pieces = calls.feed(text_delta)     # [str | ToolCall, ...]: text as soon as it cannot start a call
    pieces += calls.flush()             # at the end: whatever is still held back is text

A call is a complete JSON object at the start of a line (optionally inside a ```/```json fence) with
``"name"`` naming one of the request's tools and ``"arguments"`` (or ``"parameters"``) an object (or a
JSON string holding one). Anything else is text, verbatim. Text streams at once; only a line start that
could still become such a call is held back (whitespace, a fence, ``{"name": "wri``...), until it is
decided. ``ChunkRewriter`` applies this to Chat Completions stream chunks and ``rewrite_message`` to a
non-streamed response, so the translators downstream see ordinary ``tool_calls``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ccproxy.errors import ProxyError
from ccproxy.streamed_calls import CallPart, CallStart, StreamedCalls, StreamPiece
from ccproxy.translate_stream import StreamTranslator
from ccproxy.types_events import StreamEvent
from ccproxy.validate import loads_strict

__all__ = [
    "ChunkRewriter",
    "TextToolCallTranslator",
    "TextToolCalls",
    "ToolCall",
    "rewrite_message",
    "split_tool_calls",
]

_FENCE_LINE = re.compile(r"```(?:json)?[ \t]*\n")
_FENCE_CLOSE = re.compile(r"\s*```")
_HEAD = re.compile(r'\{\s*"name"\s*:\s*"([^"\\]*)"')
_ARGUMENT_KEYS = ("arguments", "parameters")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str
    """The arguments as a JSON object text."""


Piece = str | ToolCall


def _json_object_end(text: str, start: int) -> int:
    """The index just after the JSON object that starts at ``text[start] == "{"``, or -1 if incomplete."""
    depth = 0
    in_string = False
    escaped = False
    for i in range(start, len(text)):
        c = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _could_be_head(text: str, names: frozenset[str]) -> bool:
    """Whether ``text`` (starting with ``{``) is a prefix of ``{"name": "<one of names>"``."""
    match = _HEAD.match(text)
    if match is not None:
        return match.group(1) in names
    # Not complete yet: compare against the canonical spellings with the whitespace removed.
    compact = re.sub(r"\s+", "", text)
    if not compact.startswith('{"name":"'):
        return '{"name":"'.startswith(compact)
    partial = compact[len('{"name":"') :]
    return any(name.startswith(partial) for name in names)


def _as_call(candidate: str, names: frozenset[str]) -> ToolCall | None:
    try:
        value = loads_strict(candidate)  # NaN/Infinity: not a call, text
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("name") not in names:
        return None
    keys = [k for k in _ARGUMENT_KEYS if k in value]
    if len(keys) > 1 or set(value) - {"name", *keys}:
        return None
    arguments: object = value[keys[0]] if keys else {}
    if isinstance(arguments, str):
        try:
            arguments = loads_strict(arguments) if arguments.strip() else {}
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(name=value["name"], arguments=json.dumps(arguments, ensure_ascii=False))


class TextToolCalls:
    """Incremental recogniser; see the module docstring."""

    def __init__(self, tool_names: Iterable[str]) -> None:
        self._names = frozenset(tool_names)
        self._held = ""
        self._line_start = True
        self.found = 0

    def feed(self, text: str) -> list[Piece]:
        self._held += text
        return self._scan(final=False)

    def flush(self) -> list[Piece]:
        return self._scan(final=True)

    def _scan(self, *, final: bool) -> list[Piece]:
        out: list[Piece] = []
        text = ""
        while self._held:
            held = self._held
            if not self._line_start:
                newline = held.find("\n")
                if newline < 0:
                    text += held
                    self._held = ""
                    break
                text += held[: newline + 1]
                self._held = held[newline + 1 :]
                self._line_start = True
                continue
            decided = self._at_line_start(held, final)
            if decided is None:  # still undecided: hold the rest
                break
            consumed, call = decided
            if call is None:  # not a call: this line is text
                self._line_start = False
                continue
            if text:
                out.append(text)
                text = ""
            out.append(call)
            self.found += 1
            self._held = held[consumed:]
            self._line_start = True
        if final and self._held:
            text += self._held
            self._held = ""
        if text:
            out.append(text)
        return out

    def _at_line_start(self, held: str, final: bool) -> tuple[int, ToolCall | None] | None:
        """At a line start: (characters consumed, call) for a complete call, (0, None) for text, or None
        while it cannot be decided yet."""
        i = len(held) - len(held.lstrip())  # blank lines and indentation are held with the line
        if i == len(held):
            return None if not final else (0, None)
        fenced = False
        if held.startswith("`", i):
            fence = _FENCE_LINE.match(held, i)
            if fence is None:
                undecided = "\n" not in held[i:] and len(held) - i < 16 and not final
                return None if undecided else (0, None)
            fenced = True
            i = fence.end()
            i += len(held[i:]) - len(held[i:].lstrip(" \t\n"))
            if i == len(held):
                return None if not final else (0, None)
        if not held.startswith("{", i):
            return (0, None)
        end = _json_object_end(held, i)
        if end < 0:
            return None if not final and _could_be_head(held[i:], self._names) else (0, None)
        call = _as_call(held[i:end], self._names)
        if call is None:
            return (0, None)
        if fenced:
            close = _FENCE_CLOSE.match(held, end)
            if close is None:
                if not final and "```".startswith(held[end:].strip()):
                    return None  # the closing fence may still come
                return (0, None)
            end = close.end()
        return (end, call)


def split_tool_calls(text: str, tool_names: Iterable[str]) -> list[Piece]:
    """A whole text as pieces (text and recovered calls)."""
    recogniser = TextToolCalls(tool_names)
    return recogniser.feed(text) + recogniser.flush()


def rewrite_message(openai_json: dict[str, Any], tool_names: Iterable[str]) -> dict[str, Any]:
    """A non-streamed Chat Completions response with calls written as text turned into ``tool_calls``
    (the text around them stays the message content). Anything unexpected is returned unchanged."""
    choices = openai_json.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return openai_json
    message = choices[0].get("message")
    if not isinstance(message, dict) or message.get("tool_calls"):
        return openai_json
    if not isinstance(message.get("content"), str):
        return openai_json
    pieces = split_tool_calls(message["content"], tool_names)
    calls = [p for p in pieces if isinstance(p, ToolCall)]
    if not calls:
        return openai_json
    text = "".join(p for p in pieces if isinstance(p, str)).strip()
    new_message = {
        **message,
        "content": text or None,
        "tool_calls": [_openai_call(call) for call in calls],
    }
    return {**openai_json, "choices": [{**choices[0], "message": new_message}, *choices[1:]]}


def _openai_call(call: ToolCall, index: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    if index is not None:
        out["index"] = index
    return out


class ChunkRewriter:
    """Chat Completions stream chunks in, the same chunks out with text calls as ``tool_calls`` deltas.

    ``rewrite(chunk)`` returns the chunks to translate in its place (text held back is released by a
    later chunk, at the latest by the one carrying ``finish_reason``); ``flush()`` returns a last chunk
    with text still held when the stream ends without one. ``streamed=True`` (the answer is written
    under the tool grammar): a call's name and then its arguments go out as they are written
    (``streamed_calls.StreamedCalls``), as an OpenAI server streams ``tool_calls``; otherwise a call
    goes out whole once it is complete and valid."""

    def __init__(self, tool_names: Iterable[str], *, streamed: bool = False) -> None:
        self._calls: TextToolCalls | StreamedCalls = (
            StreamedCalls(tool_names) if streamed else TextToolCalls(tool_names)
        )

    @property
    def found(self) -> int:
        return self._calls.found

    def rewrite(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        choices = chunk.get("choices")
        if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
            return [chunk]
        choice = choices[0]
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        finish = choice.get("finish_reason")
        if not isinstance(content, str) and finish is None:
            return [chunk]
        first = self._calls.found
        pieces: list[Piece | StreamPiece] = []
        if isinstance(content, str):
            pieces += self._calls.feed(content)
        if finish is not None:
            pieces += self._calls.flush()
        extra = {k: v for k, v in delta.items() if k != "content"} if isinstance(delta, dict) else {}
        deltas = ([extra] if extra else []) + _deltas(pieces, first)
        if not deltas:
            deltas.append({})
        # Top-level fields (id, usage, timings ...) and finish_reason stay on the last chunk.
        bare = {k: v for k, v in chunk.items() if k not in ("usage", "timings")}
        out = [{**bare, "choices": [{**choice, "delta": d, "finish_reason": None}]} for d in deltas[:-1]]
        out.append({**chunk, "choices": [{**choice, "delta": deltas[-1], "finish_reason": finish}]})
        return out

    def flush(self) -> list[dict[str, Any]]:
        """Chunks for text still held when the stream ended without a finish_reason."""
        first = self._calls.found
        return [
            {"choices": [{"index": 0, "delta": d, "finish_reason": None}]}
            for d in _deltas(self._calls.flush(), first)
        ]


def _deltas(pieces: Sequence[Piece | StreamPiece], first_index: int) -> list[dict[str, Any]]:
    """OpenAI deltas for these pieces; ``first_index``: the index of the first call that starts here."""
    out: list[dict[str, Any]] = []
    index = first_index
    for piece in pieces:
        if isinstance(piece, ToolCall):
            out.append({"tool_calls": [_openai_call(piece, index)]})
            index += 1
        elif isinstance(piece, CallStart):
            function = {"name": piece.name, "arguments": ""}
            out.append({"tool_calls": [{"index": index, "type": "function", "function": function}]})
            index += 1
        elif isinstance(piece, CallPart):
            out.append({"tool_calls": [{"index": index - 1, "function": {"arguments": piece.arguments}}]})
        else:
            out.append({"content": piece})
    return out


class TextToolCallTranslator:
    """A stream translator with ``ChunkRewriter`` in front (same protocol as ``StreamTranslator``)."""

    def __init__(self, inner: StreamTranslator, tool_names: Iterable[str], *, streamed: bool = False) -> None:
        self.inner = inner
        self.rewriter = ChunkRewriter(tool_names, streamed=streamed)

    def start(self) -> list[StreamEvent]:
        return self.inner.start()

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for rewritten in self.rewriter.rewrite(chunk):
            events += self.inner.feed(rewritten)
        return events

    def finish(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for rest in self.rewriter.flush():
            events += self.inner.feed(rest)
        return events + self.inner.finish()

    def fail(self, err: ProxyError) -> list[StreamEvent]:
        return self.inner.fail(err)
