"""Tool calls written under the tool grammar, streamed while the model writes them (pure, incremental).

``text_tool_calls.TextToolCalls`` passes a call on only once it is complete and valid: the model may
write anything, so nothing can be said before the closing brace. Under the proxy's tool grammar
(``tool_grammar.for_tools``, ``--tool-grammar on``) the backend can only write what the grammar allows,
and a call is decided by its first bytes: a line at column 0 that starts ``{"name": "<tool>",
"arguments": {`` (compact or pretty-printed, optionally after a ```` ```json ```` or ```` ``` ```` fence
line) can only continue as that tool's schema-valid arguments. So the client can see the call as soon
as its name is written, and its arguments as they are written, as Claude's own stream does:

    calls = StreamedCalls({"Edit", "Read"})
    pieces = calls.feed(text_delta)   # [str | CallStart | CallPart, ...]
    pieces += calls.flush()           # at the end

A ``CallStart(name)`` opens a call; each ``CallPart`` carries the next fragment of its arguments' JSON,
with the whitespace between tokens left out (strings are verbatim). Text outside calls streams at once;
only a line start that may still open a call (``{``, ``{"na``, a fence line being written) is held until
it is decided. Inside a code block in another language (```` ```python ````), which the grammar leaves
free, a line is always text. The wrapper's closing brace, the newline between calls and the closing
fence are the grammar's syntax and are not passed on.

A call cut by ``max_tokens`` simply ends: its block carries the arguments written so far and the
stream's stop reason says ``max_tokens``, as Anthropic's API does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["CallPart", "CallStart", "StreamPiece", "StreamedCalls"]

_OPEN = re.compile(r'\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*\{')
"""A call's head up to the brace that opens its arguments (the grammar's ``ws`` is spaces/newlines)."""
_CALL_FENCES = ("```json", "```")
_FENCE = "```"


@dataclass(frozen=True)
class CallStart:
    name: str


@dataclass(frozen=True)
class CallPart:
    arguments: str
    """The next fragment of the arguments' JSON text."""


StreamPiece = str | CallStart | CallPart
_State = Literal["line", "text", "code-line", "arguments", "after-call"]


class StreamedCalls:
    """Incremental recogniser for grammar-constrained answers; see the module docstring."""

    def __init__(self, tool_names: Iterable[str]) -> None:
        self._names = frozenset(tool_names)
        self._openers = tuple(f'{{"name":{json.dumps(n)},"arguments":{{' for n in self._names)
        self._held = ""
        self._state: _State = "line"
        self._in_code = False  # inside a code block in another language than JSON
        self._fenced = False  # inside a ```json fence that holds calls
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self.found = 0

    def feed(self, text: str) -> list[StreamPiece]:
        self._held += text
        return self._scan(final=False)

    def flush(self) -> list[StreamPiece]:
        return self._scan(final=True)

    def _scan(self, *, final: bool) -> list[StreamPiece]:
        out: list[StreamPiece] = []
        while self._held:
            before = (self._state, len(self._held))
            if self._state == "arguments":
                self._arguments(out)
            elif self._state == "after-call":
                self._after_call(out, final)
            elif self._state in ("text", "code-line"):
                self._rest_of_line(out)
            elif not self._line_start(out, final):
                break  # undecided: wait for more
            if (self._state, len(self._held)) == before:
                break
        if final and self._held:
            if self._state not in ("arguments", "after-call"):
                _text(out, self._held)  # a line start that never got decided is text
            self._held = ""
        return out

    def _rest_of_line(self, out: list[StreamPiece]) -> None:
        newline = self._held.find("\n")
        if newline < 0:
            _text(out, self._held)
            self._held = ""
            return
        _text(out, self._held[: newline + 1])
        self._held = self._held[newline + 1 :]
        self._state = "line"

    def _line_start(self, out: list[StreamPiece], final: bool) -> bool:
        """Decide the line that starts the held text; False while it cannot be decided yet."""
        held = self._held
        if held.startswith(_FENCE) or (_FENCE.startswith(held) and held.startswith("`")):
            newline = held.find("\n")
            if newline < 0:
                if not final:
                    return False
                newline = len(held)
            line = held[:newline]
            if not self._in_code and line in _CALL_FENCES and newline < len(held):
                self._held = held[newline + 1 :]  # a fence that holds calls: not passed on
                self._fenced = True
                return True
            if line.startswith(_FENCE):
                self._in_code = not self._in_code and line != _FENCE
            self._state = "text"
            return True
        if self._in_code:
            self._state = "code-line"
            return True
        if not held.startswith("{"):
            self._state = "text"
            return True
        head = _OPEN.match(held)
        if head is not None:
            name = _json_string(head.group(1))
            if name in self._names:
                self._open_call(out, name, head.end())
                return True
            self._state = "text"
            return True
        compact = re.sub(r"\s+", "", held)
        if not final and any(opener.startswith(compact) for opener in self._openers):
            return False
        self._state = "text"
        return True

    def _open_call(self, out: list[StreamPiece], name: str, consumed: int) -> None:
        out.append(CallStart(name))
        out.append(CallPart("{"))
        self.found += 1
        self._held = self._held[consumed:]
        self._state = "arguments"
        self._depth = 1
        self._in_string = False
        self._escaped = False

    def _arguments(self, out: list[StreamPiece]) -> None:
        """The arguments' JSON, the whitespace between tokens left out, up to its closing brace."""
        kept: list[str] = []
        end = len(self._held)
        for i, c in enumerate(self._held):
            if self._in_string:
                kept.append(c)
                if self._escaped:
                    self._escaped = False
                elif c == "\\":
                    self._escaped = True
                elif c == '"':
                    self._in_string = False
                continue
            if c in " \t\r\n":
                continue
            kept.append(c)
            if c == '"':
                self._in_string = True
            elif c in "{[":
                self._depth += 1
            elif c in "}]":
                self._depth -= 1
                if self._depth == 0:
                    end = i + 1
                    self._state = "after-call"
                    break
        if kept:
            fragment = "".join(kept)
            if out and isinstance(out[-1], CallPart):
                out[-1] = CallPart(out[-1].arguments + fragment)  # one fragment per feed
            else:
                out.append(CallPart(fragment))
        self._held = self._held[end:]

    def _after_call(self, out: list[StreamPiece], final: bool) -> None:
        """The wrapper's closing brace, newlines, the next call or the closing fence: syntax, not text."""
        held = self._held
        rest = held.lstrip(" \t\r\n}")
        if not rest:
            self._held = ""
            return
        if rest.startswith("`"):
            if not final and len(rest) < len(_FENCE) and _FENCE.startswith(rest):
                self._held = rest
                return
            if rest.startswith(_FENCE) and self._fenced:
                self._held = rest[len(_FENCE) :].lstrip(" \t\r\n")
                self._fenced = False
                return
        self._held = rest
        self._state = "line"


def _json_string(literal: str) -> str | None:
    try:
        value = json.loads(literal)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _text(out: list[StreamPiece], text: str) -> None:
    if not text:
        return
    if out and isinstance(out[-1], str):
        out[-1] += text
    else:
        out.append(text)
