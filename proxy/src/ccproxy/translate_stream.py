"""OpenAI Chat Completions stream chunks -> Anthropic stream events (pure, incremental).

``StreamTranslator`` is a sans-I/O state machine: the server feeds it decoded upstream chunks and writes
the returned events (plain dicts in Anthropic wire shape) as SSE::

    t = StreamTranslator(model="claude-opus-4-8", message_id="msg_1", input_tokens=1234)
    events = t.start()                    # [message_start]
    events += t.feed(chunk)               # per upstream chunk: content_block_start/_delta/_stop ...
    events += t.finish()                  # at [DONE]: close blocks, message_delta, message_stop
    # on any ProxyError (upstream failure, timeout, garbage): events = t.fail(err)  -> [error]

Guarantees: ``message_start`` first; block indices 0..n-1, each ``content_block_start`` matched by one
``content_block_stop``; blocks never interleave. ``reasoning_content`` (or OpenRouter's ``reasoning``)
becomes a ``thinking`` block (closed with a ``signature_delta``), ``content`` a ``text`` block, each
tool call a ``tool_use`` block whose arguments stream as ``input_json_delta`` and are validated as a
JSON object at block end.

Tool calls are keyed by their ``index``. A call that arrives whole in one chunk, or several calls in
sequence, stream straight through. When an upstream interleaves parallel calls (fragments of call 1
before call 0's JSON is complete), the later call is held back and emitted whole once the earlier one
closes, so the client still sees well-formed, non-interleaved blocks.

A stream cut by the token limit (``finish_reason: "length"``) in the middle of a tool call ends as
Anthropic's does: the call's block closes with the arguments written so far, ``stop_reason:
"max_tokens"``.

Raises ``UpstreamProtocolError`` on garbage (wrong types), on a tool call without a name, on tool JSON
that is incomplete (unless cut by the token limit) or not an object at block end, and on a stream that
ends without ``finish_reason``;
an ``{"error": ...}`` chunk raises the mapped ``ProxyError``. The caller then emits ``fail(err)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from ccproxy.errors import ProxyError, UpstreamProtocolError, from_upstream_payload
from ccproxy.translate_response import (
    TokenCounts,
    map_stop_reason,
    matched_stop_sequence,
    parse_tool_arguments,
    thinking_signature,
    token_counts,
    tool_use_id,
)
from ccproxy.types_events import BlockDelta, OutContentBlock, StreamEvent

__all__ = ["Event", "StreamTranslator"]

Event: TypeAlias = StreamEvent
_Kind = Literal["text", "thinking", "tool_use"]


@dataclass
class _Block:
    kind: _Kind
    parts: list[str] = field(default_factory=list)
    tool_id: str = ""
    name: str = ""
    index: int = -1  # Anthropic block index once started
    closed: bool = False
    _complete_at: int = -1  # len(parts) when the JSON was last found complete

    def text(self) -> str:
        return "".join(self.parts)

    def closable(self) -> bool:
        """Text and thinking always; a tool call once its arguments parse as a JSON object."""
        if self.kind != "tool_use":
            return True
        if self._complete_at == len(self.parts):
            return True
        try:
            complete = isinstance(json.loads(self.text()), dict)
        except ValueError:
            complete = False
        if complete:
            self._complete_at = len(self.parts)
        return complete


class StreamTranslator:
    """Translate one upstream stream; see the module docstring for the protocol."""

    def __init__(
        self,
        *,
        model: str,
        message_id: str,
        input_tokens: int = 0,
        stop_sequences: Sequence[str] = (),
        require_finish_reason: bool = True,
    ) -> None:
        self.model = model
        self.message_id = message_id
        self.input_tokens = input_tokens
        self._stop_sequences = tuple(s for s in stop_sequences if s)
        self._tail_len = max((len(s) for s in self._stop_sequences), default=0)
        self._require_finish_reason = require_finish_reason
        self._started = False
        self._done = False
        self._next_index = 0
        self._open: _Block | None = None
        self._deferred: list[_Block] = []
        self._tools: dict[int, _Block] = {}  # upstream index -> the call its fragments extend
        self._tools_seen: list[_Block] = []
        self._finish_reason: str | None = None
        self._stop_hints: dict[str, Any] = {}
        self._counts = TokenCounts()
        self._fragments = 0
        self._text_tail = ""
        self._out: list[Event] = []

    # --- public API --------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done

    @property
    def block_count(self) -> int:
        return self._next_index

    def start(self) -> list[Event]:
        """``[message_start]`` (send it at once, before the upstream answers)."""
        if self._started:
            raise RuntimeError("StreamTranslator.start() called twice")
        self._started = True
        return [
            {
                "type": "message_start",
                "message": {
                    "id": self.message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": self.input_tokens,
                        "output_tokens": 0,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                    },
                },
            }
        ]

    def feed(self, chunk: object) -> list[Event]:
        """Events for one decoded upstream chunk (a JSON object from a ``data:`` line)."""
        self._check_open("feed")
        out = self._out = [] if self._started else self.start()
        if not isinstance(chunk, dict):
            raise UpstreamProtocolError(f"upstream stream chunk is not a JSON object: {chunk!r:.200}")
        if chunk.get("error") is not None:
            raise from_upstream_payload(chunk["error"])
        if chunk.get("usage") is not None or chunk.get("timings") is not None:
            self._counts = self._counts.merged(token_counts(chunk))
        if "stopping_word" in chunk:
            self._stop_hints["stopping_word"] = chunk["stopping_word"]
        if "__verbose" in chunk:  # llama-server asked with `verbose`: the stop string that matched
            self._stop_hints["__verbose"] = chunk["__verbose"]
        choices = chunk.get("choices")
        if choices is None:
            return out
        if not isinstance(choices, list):
            raise UpstreamProtocolError("upstream stream chunk 'choices' is not a list")
        for choice in choices:
            if not isinstance(choice, dict):
                raise UpstreamProtocolError("upstream stream choice is not a JSON object")
            if choice.get("index", 0) != 0:
                continue
            self._choice(choice)
        return out

    def finish(self) -> list[Event]:
        """Close every block, then ``message_delta`` (stop_reason, usage) and ``message_stop``."""
        self._check_open("finish")
        out = self._out = [] if self._started else self.start()
        if self._finish_reason is None and self._require_finish_reason:
            raise UpstreamProtocolError("upstream stream ended without a finish_reason")
        self._flush_all()
        has_tools = bool(self._tools_seen)
        stop_seq = None
        if self._finish_reason == "stop" and not has_tools:
            hints = self._stop_hints
            stop_seq = matched_stop_sequence(hints, hints, self._stop_sequences, self._text_tail)
        stop_reason = map_stop_reason(self._finish_reason, has_tool_calls=has_tools, stop_sequence=stop_seq)
        usage = self._counts.usage(input_fallback=self.input_tokens, output_fallback=self._fragments)
        out.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason or "end_turn", "stop_sequence": stop_seq},
                "usage": {
                    "input_tokens": usage["input_tokens"],
                    "output_tokens": usage["output_tokens"],
                    "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
                    "cache_read_input_tokens": usage["cache_read_input_tokens"],
                },
            }
        )
        out.append({"type": "message_stop"})
        self._done = True
        return out

    def fail(self, err: ProxyError) -> list[Event]:
        """``[error]``: ends the stream so the client retries instead of accepting a truncated turn."""
        if self._done:
            raise RuntimeError("StreamTranslator.fail() after the stream ended")
        self._done = True
        return [err.to_body()]

    # --- chunk handling ----------------------------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self._done:
            raise RuntimeError(f"StreamTranslator.{what}() after the stream ended")

    def _choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if delta is None:
            delta = {}
        elif not isinstance(delta, dict):
            raise UpstreamProtocolError("upstream stream delta is not a JSON object")
        reasoning = delta.get("reasoning_content")
        if reasoning is None:
            reasoning = delta.get("reasoning")  # OpenRouter's spelling
        if reasoning is not None:
            if not isinstance(reasoning, str):
                raise UpstreamProtocolError("upstream reasoning_content is not a string")
            if reasoning:
                self._append_kind("thinking", reasoning)
        content = delta.get("content")
        if content is not None:
            if not isinstance(content, str):
                raise UpstreamProtocolError("upstream delta content is not a string")
            if content:
                self._append_kind("text", content)
                if self._tail_len:
                    self._text_tail = (self._text_tail + content)[-self._tail_len :]
        calls = delta.get("tool_calls")
        if calls is not None:
            if not isinstance(calls, list):
                raise UpstreamProtocolError("upstream delta tool_calls is not a list")
            for position, call in enumerate(calls):
                self._tool_fragment(position, call)
        finish = choice.get("finish_reason")
        if finish is not None:
            if not isinstance(finish, str):
                raise UpstreamProtocolError("upstream finish_reason is not a string")
            self._finish_reason = finish
            for key in ("stop_reason", "stopping_word"):
                if key in choice:
                    self._stop_hints[key] = choice[key]

    def _append_kind(self, kind: _Kind, fragment: str) -> None:
        self._advance()
        if self._deferred:
            last = self._deferred[-1]
            if last.kind == kind:
                last.parts.append(fragment)
                self._fragments += 1
                return
        elif self._open is not None and self._open.kind == kind:
            self._emit_delta(self._open, fragment)
            return
        self._start_or_defer(_Block(kind), fragment)

    def _tool_fragment(self, position: int, call: object) -> None:
        if not isinstance(call, dict):
            raise UpstreamProtocolError("upstream tool call delta is not a JSON object")
        index = call.get("index", position)
        if not isinstance(index, int):
            raise UpstreamProtocolError("upstream tool call index is not an integer")
        function = call.get("function") or {}
        if not isinstance(function, dict):
            raise UpstreamProtocolError("upstream tool call 'function' is not a JSON object")
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments, ensure_ascii=False)
        elif arguments is not None and not isinstance(arguments, str):
            raise UpstreamProtocolError("upstream tool call arguments are not a string")
        block = self._tools.get(index)
        self._advance()
        call_id = call.get("id")
        name = function.get("name")
        if block is not None and isinstance(call_id, str) and call_id and call_id != block.tool_id and name:
            block = None  # a server that reuses index 0 for every call: a new id starts a new call
        if block is None:
            if not isinstance(name, str) or not name:
                raise UpstreamProtocolError(f"upstream tool call {index} starts without a function name")
            if not isinstance(call_id, str) or not call_id:
                call_id = tool_use_id(self.message_id, len(self._tools_seen))
            block = _Block("tool_use", tool_id=call_id, name=name)
            self._tools[index] = block
            self._tools_seen.append(block)
            self._start_or_defer(block, arguments or "")
        elif arguments:
            self._append_to(block, arguments)

    def _append_to(self, block: _Block, fragment: str) -> None:
        if block is self._open:
            self._emit_delta(block, fragment)
        elif not block.closed:  # deferred
            block.parts.append(fragment)
            self._fragments += 1
        elif fragment.strip():
            raise UpstreamProtocolError(f"upstream tool call {block.name!r} continued after it was complete")

    # --- block bookkeeping -------------------------------------------------------------------------

    def _start_or_defer(self, block: _Block, first: str) -> None:
        if self._deferred or (self._open is not None and not self._open.closable()):
            if first:
                block.parts.append(first)
                self._fragments += 1
            self._deferred.append(block)
            return
        if self._open is not None:
            self._close(self._open)
        self._begin(block)
        if first:
            self._emit_delta(block, first)

    def _advance(self) -> None:
        """Once the open tool call's JSON is complete, emit the blocks held back behind it."""
        while self._deferred and self._open is not None and self._open.closable():
            self._close(self._open)
            block = self._deferred.pop(0)
            held = block.parts
            block.parts = []
            self._begin(block)
            if held:
                self._emit_delta(block, "".join(held), count=False)

    def _flush_all(self) -> None:
        if self._open is not None:
            self._close(self._open)
        while self._deferred:
            block = self._deferred.pop(0)
            held = block.parts
            block.parts = []
            self._begin(block)
            if held:
                self._emit_delta(block, "".join(held), count=False)
            self._close(block)

    def _cut_short(self, block: _Block) -> bool:
        """A call whose JSON the token limit cut (the arguments so far are all there is)."""
        return self._finish_reason == "length" and not block.closable()

    def _begin(self, block: _Block) -> None:
        block.index = self._next_index
        self._next_index += 1
        self._open = block
        content_block: OutContentBlock
        if block.kind == "text":
            content_block = {"type": "text", "text": ""}
        elif block.kind == "thinking":
            content_block = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            content_block = {"type": "tool_use", "id": block.tool_id, "name": block.name, "input": {}}
        self._out.append(
            {"type": "content_block_start", "index": block.index, "content_block": content_block}
        )

    def _emit_delta(self, block: _Block, fragment: str, *, count: bool = True) -> None:
        block.parts.append(fragment)
        if count:
            self._fragments += 1
        delta: BlockDelta
        if block.kind == "tool_use":
            delta = {"type": "input_json_delta", "partial_json": fragment}
        elif block.kind == "thinking":
            delta = {"type": "thinking_delta", "thinking": fragment}
        else:
            delta = {"type": "text_delta", "text": fragment}
        self._out.append({"type": "content_block_delta", "index": block.index, "delta": delta})

    def _close(self, block: _Block) -> None:
        if block.kind == "tool_use" and not self._cut_short(block):
            parse_tool_arguments(block.text(), name=block.name)  # raises on incomplete/invalid JSON
        elif block.kind == "thinking":
            self._out.append(
                {
                    "type": "content_block_delta",
                    "index": block.index,
                    "delta": {"type": "signature_delta", "signature": thinking_signature(block.text())},
                }
            )
        self._out.append({"type": "content_block_stop", "index": block.index})
        block.closed = True
        if self._open is block:
            self._open = None
