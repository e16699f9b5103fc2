"""OpenAI Chat Completions response -> Anthropic message (pure).

- ``reasoning_content`` (OpenRouter: ``reasoning``) -> a ``thinking`` block first, with a
  ``signature`` (a digest of the text) so Claude Code can echo it back; then the text; then one
  ``tool_use`` block per tool call, in order, ``input`` parsed to an object (ids kept; missing ids
  get a deterministic ``toolu_`` id).
- ``finish_reason``: ``stop`` -> ``end_turn`` (``stop_sequence`` when the upstream names the matched
  stop string — vLLM's ``stop_reason``, llama.cpp's ``[__verbose.]stopping_word`` — or the text ends
  with one),
  ``length`` -> ``max_tokens``, any tool call -> ``tool_use`` (``tool_calls`` without one -> ``end_turn``),
  ``content_filter`` -> ``refusal``.
- usage: ``input_tokens`` excludes cached tokens; ``cache_read_input_tokens`` from
  ``usage.prompt_tokens_details.cached_tokens``, else llama-server's ``timings.cache_n``.

Anything that is not a valid completion raises ``errors.UpstreamProtocolError``; an ``{"error": ...}``
body raises the mapped ``ProxyError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ccproxy.errors import UpstreamProtocolError, from_upstream_payload
from ccproxy.types_events import MessageDict, OutContentBlock, StopReason, UsageDict
from ccproxy.validate import loads_strict

__all__ = [
    "TokenCounts",
    "map_stop_reason",
    "parse_tool_arguments",
    "thinking_signature",
    "to_anthropic_message",
    "token_counts",
    "tool_use_id",
]


def thinking_signature(thinking: str) -> str:
    """A stable signature for a thinking block (the upstream has none; Claude Code echoes it back)."""
    return "ccproxy:" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


def tool_use_id(message_id: str, index: int) -> str:
    """A deterministic id for a tool call the upstream sent without one."""
    suffix = message_id.removeprefix("msg_") or "0"
    return f"toolu_{suffix}_{index}"


def parse_tool_arguments(arguments: str, *, name: str) -> dict[str, Any]:
    """Parse a tool call's JSON arguments into an object ("" means no arguments)."""
    if not arguments.strip():
        return {}
    try:
        value = loads_strict(arguments)  # NaN/Infinity would reach the client as invalid JSON
    except ValueError as exc:
        raise UpstreamProtocolError(
            f"upstream tool call {name!r} has invalid JSON arguments: {exc}: {arguments[:200]!r}"
        ) from None
    if not isinstance(value, dict):
        raise UpstreamProtocolError(
            f"upstream tool call {name!r} arguments are not a JSON object: {arguments[:200]!r}"
        )
    return value


def map_stop_reason(
    finish_reason: str | None,
    *,
    has_tool_calls: bool,
    stop_sequence: str | None = None,
) -> StopReason | None:
    """Map an OpenAI ``finish_reason``; ``None`` stays ``None`` (the caller decides what that means)."""
    if finish_reason is None:
        return "tool_use" if has_tool_calls else None
    if finish_reason == "length":
        return "max_tokens"
    if has_tool_calls:
        return "tool_use"  # also when a server says "stop" after emitting tool calls
    if finish_reason in ("tool_calls", "function_call"):
        return "end_turn"  # no tool call actually came through: tool_use without blocks confuses clients
    if finish_reason == "content_filter":
        return "refusal"
    if stop_sequence is not None:
        return "stop_sequence"
    return "end_turn"


def matched_stop_sequence(
    choice: Mapping[str, Any],
    top: Mapping[str, Any],
    stop_sequences: Sequence[str],
    text_tail: str,
) -> str | None:
    """Which of the request's stop sequences ended the generation, if the upstream says or shows it:
    vLLM's ``choice.stop_reason``, llama.cpp's ``stopping_word`` (in ``__verbose`` for its OpenAI
    endpoints), or text that ends with one."""
    if not stop_sequences:
        return None
    verbose = top.get("__verbose")
    said = verbose.get("stopping_word") if isinstance(verbose, Mapping) else None
    for candidate in (choice.get("stop_reason"), choice.get("stopping_word"), top.get("stopping_word"), said):
        if isinstance(candidate, str) and candidate in stop_sequences:
            return candidate
    for seq in stop_sequences:
        if seq and text_tail.endswith(seq):
            return seq
    return None


@dataclass(frozen=True)
class TokenCounts:
    """Token counts an upstream reported (``None`` when it did not say)."""

    prompt: int | None = None
    cached: int | None = None
    completion: int | None = None

    def merged(self, newer: TokenCounts) -> TokenCounts:
        return TokenCounts(
            newer.prompt if newer.prompt is not None else self.prompt,
            newer.cached if newer.cached is not None else self.cached,
            newer.completion if newer.completion is not None else self.completion,
        )

    def input_tokens(self, fallback: int = 0) -> int:
        """Anthropic ``input_tokens``: prompt tokens not read from the cache."""
        prompt = self.prompt if self.prompt is not None else fallback
        return max(prompt - (self.cached or 0), 0)

    def usage(self, *, input_fallback: int = 0, output_fallback: int = 0) -> UsageDict:
        return {
            "input_tokens": self.input_tokens(input_fallback),
            "output_tokens": self.completion if self.completion is not None else output_fallback,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": self.cached or 0,
        }


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def token_counts(payload: Mapping[str, Any]) -> TokenCounts:
    """Counts from ``usage`` (with ``prompt_tokens_details.cached_tokens``) and llama-server ``timings``."""
    usage = payload.get("usage")
    timings = payload.get("timings")
    prompt = cached = completion = None
    if isinstance(usage, Mapping):
        prompt = _int(usage.get("prompt_tokens"))
        completion = _int(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        if isinstance(details, Mapping):
            cached = _int(details.get("cached_tokens"))
    if isinstance(timings, Mapping):
        cache_n = _int(timings.get("cache_n"))
        prompt_n = _int(timings.get("prompt_n"))
        if cached is None and cache_n is not None:
            cached = cache_n
        if prompt is None and prompt_n is not None:
            prompt = prompt_n + (cache_n or 0)
        if completion is None:
            completion = _int(timings.get("predicted_n"))
    return TokenCounts(prompt, cached, completion)


def _optional_str(value: object, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UpstreamProtocolError(f"upstream {what} is not a string: {type(value).__name__}")
    return value


def to_anthropic_message(
    openai_json: dict[str, Any],
    *,
    model: str,
    message_id: str,
    stop_sequences: Sequence[str] = (),
) -> MessageDict:
    """Translate a non-streaming Chat Completions response into an Anthropic ``message``."""
    if not isinstance(openai_json, dict):
        raise UpstreamProtocolError("upstream response is not a JSON object")
    if "error" in openai_json and openai_json["error"] is not None:
        raise from_upstream_payload(openai_json["error"])
    choices = openai_json.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamProtocolError("upstream response has no choices")
    choice: dict[str, Any] = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise UpstreamProtocolError("upstream response choice has no message")

    content: list[OutContentBlock] = []
    raw_reasoning = message.get("reasoning_content")
    if raw_reasoning is None:
        raw_reasoning = message.get("reasoning")  # OpenRouter's spelling
    reasoning = _optional_str(raw_reasoning, "reasoning_content")
    if reasoning:
        content.append(
            {"type": "thinking", "thinking": reasoning, "signature": thinking_signature(reasoning)}
        )
    text = _optional_str(message.get("content"), "message content")

    raw_calls = message.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise UpstreamProtocolError("upstream tool_calls is not a list")
    stop_seq = None
    finish_reason = choice.get("finish_reason")
    if finish_reason is not None and not isinstance(finish_reason, str):
        raise UpstreamProtocolError("upstream finish_reason is not a string")
    if finish_reason == "stop" and not raw_calls:
        stop_seq = matched_stop_sequence(choice, openai_json, stop_sequences, text)
        if stop_seq is not None and text.endswith(stop_seq):
            text = text[: -len(stop_seq)]
    if text:
        content.append({"type": "text", "text": text})
    for index, call in enumerate(raw_calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise UpstreamProtocolError(f"upstream tool call {index} has no function name")
        name: str = function["name"]
        arguments = function.get("arguments", "")
        if isinstance(arguments, dict):  # some servers send the object itself
            arguments = json.dumps(arguments)
        parsed = parse_tool_arguments(_optional_str(arguments, "tool arguments"), name=name)
        call_id = call.get("id")
        content.append(
            {
                "type": "tool_use",
                "id": call_id if isinstance(call_id, str) and call_id else tool_use_id(message_id, index),
                "name": name,
                "input": parsed,
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": map_stop_reason(finish_reason, has_tool_calls=bool(raw_calls), stop_sequence=stop_seq)
        or "end_turn",
        "stop_sequence": stop_seq,
        "usage": token_counts(openai_json).usage(),
    }
