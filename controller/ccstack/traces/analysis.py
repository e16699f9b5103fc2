"""Pure analysis of traced requests: the parts a request is made of (system text, each tool's definition,
messages by role and kind), token breakdowns from counts of those parts, a turn's cache use and timing,
and whether an answer's tool calls are valid calls of the request's tools. No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

GROUPS = ("system", "tools", "messages")
REMINDER = "<system-reminder>"


@dataclass(frozen=True)
class Part:
    """A piece of a request's text, counted on its own."""

    group: str
    """system | tools | messages"""
    label: str
    """The row it adds to: `system text`, the tool's name, `user text`, `assistant tool_use`, ..."""
    text: str


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _kind_of_text(role: str, text: str) -> str:
    if role == "system-role":
        return "system-role message"
    return f"{role} reminder" if text.lstrip().startswith(REMINDER) else f"{role} text"


def anthropic_parts(body: Mapping[str, Any]) -> list[Part]:
    """The parts of an Anthropic Messages request as Claude Code sent it."""
    parts: list[Part] = []
    system = body.get("system")
    if isinstance(system, str):
        parts.append(Part("system", "system text", system))
    elif isinstance(system, list):
        parts += [
            Part("system", "system text", str(b.get("text", ""))) for b in system if isinstance(b, dict)
        ]
    for tool in body.get("tools") or ():
        if isinstance(tool, dict):
            parts.append(Part("tools", str(tool.get("name", "?")), _dump(tool)))
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", "?"))
        content = message.get("content")
        if role == "system":
            role = "system-role"  # Claude Code's environment message at index 1
        if isinstance(content, str):
            parts.append(Part("messages", _kind_of_text(role, content), content))
            continue
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict):
                parts.append(_anthropic_block(role, block))
    return parts


def _anthropic_block(role: str, block: Mapping[str, Any]) -> Part:
    kind = str(block.get("type", "?"))
    if kind == "text":
        text = str(block.get("text", ""))
        return Part("messages", _kind_of_text(role, text), text)
    if kind == "tool_use":
        return Part("messages", f"{role} tool_use", str(block.get("name", "")) + _dump(block.get("input")))
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            content = "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        return Part("messages", f"{role} tool_result", str(content or ""))
    if kind in ("thinking", "redacted_thinking"):
        return Part("messages", f"{role} thinking", str(block.get("thinking") or block.get("data") or ""))
    return Part("messages", f"{role} {kind}", "")  # images, documents: not text


def openai_parts(body: Mapping[str, Any]) -> list[Part]:
    """The parts of a translated (OpenAI Chat Completions) request: what the model was given."""
    parts: list[Part] = []
    for tool in body.get("tools") or ():
        if isinstance(tool, dict):
            function = tool["function"] if isinstance(tool.get("function"), dict) else tool
            parts.append(Part("tools", str(function.get("name", "?")), _dump(tool)))
    first = True
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", "?"))
        content = message.get("content")
        texts: list[tuple[str, str]] = []
        if isinstance(content, str):
            texts.append(("text", content))
        elif isinstance(content, list):
            for c in content:
                if isinstance(c, dict):
                    texts.append(("text", str(c["text"])) if "text" in c else (str(c.get("type")), ""))
        if role == "system" and first:
            parts += [Part("system", "system text", t) for _, t in texts]
            first = False
            continue
        first = False
        for kind, text in texts:
            label = _kind_of_text(role, text) if kind == "text" else f"{role} {kind}"
            parts.append(Part("messages", "tool result" if role == "tool" else label, text))
        if message.get("reasoning_content"):
            parts.append(Part("messages", f"{role} thinking", str(message["reasoning_content"])))
        for call in message.get("tool_calls") or ():
            function = call.get("function", {}) if isinstance(call, dict) else {}
            text = str(function.get("name", "")) + str(function.get("arguments", ""))
            parts.append(Part("messages", f"{role} tool_calls", text))
    # tools first in the list is only for reading; the template puts them after the system text
    return [p for p in parts if p.group == "system"] + [p for p in parts if p.group != "system"]


@dataclass(frozen=True)
class Row:
    group: str
    label: str
    parts: int
    chars: int
    tokens: int


@dataclass(frozen=True)
class Breakdown:
    source: str
    """`upstream` (the translated request the model got) or `client` (Claude Code's request)."""
    counter: str
    """Which tokenizer counted: `llama-server /tokenize (...)` or `tiktoken o200k_base (...)`."""
    rows: tuple[Row, ...]
    total: int | None
    """The whole prompt as the backend renders it (llama-server /apply-template + /tokenize), if known."""

    @property
    def parts_total(self) -> int:
        return sum(r.tokens for r in self.rows)

    def group_total(self, group: str) -> int:
        return sum(r.tokens for r in self.rows if r.group == group)

    @property
    def template_overhead(self) -> int | None:
        """What the chat template adds around the parts (role markers, tool wrapping)."""
        return None if self.total is None else self.total - self.parts_total

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "counter": self.counter,
            "total": self.total,
            "parts_total": self.parts_total,
            "template_overhead": self.template_overhead,
            "groups": {g: self.group_total(g) for g in GROUPS},
            "rows": [asdict(r) for r in self.rows],
        }


def breakdown(
    parts: Sequence[Part],
    counts: Sequence[int],
    *,
    source: str,
    counter: str,
    total: int | None,
    per_tool: bool,
) -> Breakdown:
    """Rows by group and label, in order of first appearance; tools one row each with `per_tool`, else
    one row `N tool definitions`."""
    if len(parts) != len(counts):
        raise ValueError("one count per part")
    n_tools = sum(1 for p in parts if p.group == "tools")
    acc: dict[tuple[str, str], list[int]] = {}
    for part, count in zip(parts, counts, strict=True):
        label = part.label if part.group != "tools" or per_tool else f"tool definitions ({n_tools})"
        row = acc.setdefault((part.group, label), [0, 0, 0])
        row[0] += 1
        row[1] += len(part.text)
        row[2] += count
    ordered = sorted(acc.items(), key=lambda kv: GROUPS.index(kv[0][0]) if kv[0][0] in GROUPS else 9)
    rows = tuple(Row(g, label, n, chars, tokens) for (g, label), (n, chars, tokens) in ordered)
    return Breakdown(source=source, counter=counter, rows=rows, total=total)


@dataclass(frozen=True)
class Turn:
    """One request's prompt, cache and timing, from the answer's usage and the backend's timings."""

    prompt_tokens: int | None
    cached_tokens: int | None
    output_tokens: int | None
    first_byte_s: float | None
    total_s: float | None
    prompt_ms: float | None
    tokens_per_s: float | None
    timings_from: str
    """`llama-server timings` or `usage` (cache_read_input_tokens) or `none`."""

    @property
    def cache_share(self) -> float | None:
        if self.prompt_tokens and self.cached_tokens is not None:
            return self.cached_tokens / self.prompt_tokens
        return None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "cache_share": self.cache_share}


def turn_stats(
    usage: Mapping[str, Any] | None,
    timings: Mapping[str, Any] | None,
    *,
    first_byte_s: float | None,
    total_s: float | None,
) -> Turn:
    u = usage or {}
    out = _int(u.get("output_tokens"))
    if timings:
        prompt_n, cache_n = _int(timings.get("prompt_n")), _int(timings.get("cache_n"))
        predicted_n = _int(timings.get("predicted_n"))
        prompt = None if prompt_n is None else prompt_n + (cache_n or 0)
        tps = _float(timings.get("predicted_per_second"))
        return Turn(
            prompt_tokens=prompt,
            cached_tokens=cache_n,
            output_tokens=out if out is not None else predicted_n,
            first_byte_s=first_byte_s,
            total_s=total_s,
            prompt_ms=_float(timings.get("prompt_ms")),
            tokens_per_s=tps,
            timings_from="llama-server timings",
        )
    fresh, cached = _int(u.get("input_tokens")), _int(u.get("cache_read_input_tokens"))
    prompt = None if fresh is None else fresh + (cached or 0)
    tps = None
    if out and total_s is not None:
        generating = total_s - (first_byte_s or 0.0)
        tps = out / generating if generating > 0 else None
    return Turn(
        prompt_tokens=prompt,
        cached_tokens=cached,
        output_tokens=out,
        first_byte_s=first_byte_s,
        total_s=total_s,
        prompt_ms=None,
        tokens_per_s=tps,
        timings_from="usage" if usage else "none",
    )


@dataclass(frozen=True)
class CallCheck:
    name: str
    valid: bool
    problem: str | None = None


def check_tool_calls(
    tools: Sequence[Mapping[str, Any]], message: Mapping[str, Any] | None
) -> list[CallCheck]:
    """Each tool_use of the answer: its name is one of the request's tools and its input is valid
    against that tool's input_schema."""
    schemas = {str(t.get("name")): t.get("input_schema") for t in tools if isinstance(t, Mapping)}
    checks = []
    for block in (message or {}).get("content") or ():
        if not isinstance(block, Mapping) or block.get("type") != "tool_use":
            continue
        name = str(block.get("name"))
        if name not in schemas:
            checks.append(CallCheck(name, False, "not a tool of the request"))
            continue
        schema = schemas[name]
        if not isinstance(schema, Mapping):
            checks.append(CallCheck(name, True))
            continue
        try:
            cls = jsonschema.validators.validator_for(schema)
            error = jsonschema.exceptions.best_match(cls(schema).iter_errors(block.get("input")))
        except jsonschema.exceptions.SchemaError as exc:
            checks.append(CallCheck(name, False, f"unusable input_schema: {exc.message}"))
            continue
        path = "/".join(str(p) for p in error.absolute_path) if error is not None else ""
        problem = None if error is None else f"{path or 'input'}: {error.message}"[:200]
        checks.append(CallCheck(name, error is None, problem))
    return checks


def message_from_events(events: Sequence[object]) -> dict[str, Any]:
    """The Anthropic message a stream of events amounts to (content blocks, stop reason, usage)."""
    message: dict[str, Any] = {"content": [], "usage": {}}
    blocks: dict[int, dict[str, Any]] = {}
    partial: dict[int, str] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            start = event["message"]
            message.update({k: v for k, v in start.items() if k not in ("content", "usage")})
            message["usage"] = dict(start.get("usage") or {})
        elif kind == "content_block_start":
            blocks[int(event.get("index", 0))] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            index, delta = int(event.get("index", 0)), event.get("delta") or {}
            block = blocks.setdefault(index, {})
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + str(delta.get("text", ""))
            elif delta.get("type") == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
            elif delta.get("type") == "input_json_delta":
                partial[index] = partial.get(index, "") + str(delta.get("partial_json", ""))
        elif kind == "message_delta":
            message["usage"].update(event.get("usage") or {})
            message["stop_reason"] = (event.get("delta") or {}).get("stop_reason")
        elif kind == "error":
            message["error"] = event.get("error")
    for index, text in partial.items():
        try:
            blocks[index]["input"] = json.loads(text) if text else {}
        except ValueError:
            blocks[index]["input"] = text  # not JSON: the check reports it
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
