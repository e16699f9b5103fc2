"""Anthropic Messages request -> OpenAI Chat Completions request (pure, deterministic).

The same Anthropic request always yields byte-identical upstream bytes (``encode_upstream``), and a later
turn of the same conversation yields bytes that start with the earlier turn's bytes up to the end of its
last message: the upstream body is ordered ``model``, ``tools`` (sorted by name), ``messages``, then every
other key sorted, so per-request values (``max_tokens``, ``stream``, slot ids) never sit inside the prefix.
That keeps a prefix-caching backend (llama-server) hot across turns.

Mapping:
- ``system`` (string or text blocks) plus every ``role: system`` message before the first assistant
  turn -> one leading ``system`` message, joined in order with blank lines. Blocks starting with
  ``x-anthropic-billing-header:`` are dropped (they differ per conversation and kill the prefix cache).
  ``role: system`` messages after the first assistant turn become a ``user`` message wrapping the text in
  ``<system-reminder>`` (prefix-stable), or are merged into the leading system message with
  ``late_system_as_user=False``. With ``prompt_layout="stable"`` (the default; ``layout.py``) the lines
  of that leading system text that vary between sessions (date, working directory, OS version, ...)
  open the first user turn instead, as a ``<system-reminder>``, so system text + tools stay one
  byte-identical prefix across sessions, days, commits and repositories.
Messages (``translate_messages.py``):
- text -> content strings; images (base64 or URL) -> ``image_url`` parts.
- ``tool_use`` -> assistant ``tool_calls`` (ids kept); ``tool_result`` -> ``role: tool`` messages in
  order, ``is_error`` as an ``Error:`` prefix; text and images beside tool results -> one ``user``
  message after the tool messages (images inside a tool result go there too, with a pointer in the tool
  message, since ``role: tool`` carries text only).
- ``tool_reference`` blocks (tool search results) -> the referenced tool's definition as a
  ``<functions><function>{...}</function></functions>`` text, as the Anthropic API expands them.
- ``thinking`` -> assistant ``reasoning_content``; ``redacted_thinking`` dropped.
- ``tools`` -> functions sorted by name; server tools without a schema are dropped; a ``defer_loading``
  tool is sent (after the others, in load order) once a ``tool_reference`` in a tool result has loaded
  it, as Anthropic's tool search does; ``tool_choice``
  auto/any/tool/none -> auto/required/function/none, ``disable_parallel_tool_use`` ->
  ``parallel_tool_calls: false``.
- ``stop_sequences``/``temperature``/``top_p``/``top_k`` -> ``stop``/``temperature``/``top_p``/``top_k``
  (for llama-server with ``verbose``, which makes it tell the stop string that matched);
  ``output_config.format`` (JSON schema) -> ``response_format``; ``max_tokens`` as requested (the plan
  clamps it and sets ``model``: ``plan.py``).
- ``cache_control``, ``metadata``, ``context_management``, ``output_config.effort``, ``service_tier``
  and ``thinking`` are accepted and not forwarded (``thinking`` optionally becomes
  ``chat_template_kwargs.enable_thinking``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, assert_never

from ccproxy.layout import PromptLayout
from ccproxy.profile import PromptProfile, lean_description
from ccproxy.translate_messages import chat_messages
from ccproxy.types_anthropic import (
    CountTokensRequest,
    Message,
    MessagesRequest,
    Tool,
    ToolChoice,
    ToolResultBlock,
    UnknownBlock,
)
from ccproxy.types_openai import (
    ChatRequest,
    FunctionTool,
)

__all__ = [
    "RequestOptions",
    "encode_upstream",
    "to_openai_request",
]

_LEADING_KEYS = ("model", "tools", "messages")


@dataclass(frozen=True)
class RequestOptions:
    """Knobs of the translation; everything else is fixed so the output stays deterministic."""

    drop_billing_header: bool = True
    prompt_layout: PromptLayout = "stable"
    """``stable``: session-varying lines of the leading system text open the first user turn
    (``layout.py``); ``off``: the system text as Claude Code sent it."""
    prompt_profile: PromptProfile = "full"
    """``lean``: the leading system text and long tool descriptions reduced by ``profile.py``'s rules
    (every tool, name and input schema kept); ``full``: as Claude Code sent them."""
    late_system_as_user: bool = True
    """``role: system`` messages after the first assistant turn: a user-side reminder (True) or merged
    into the leading system message (False; changes the prompt prefix when one appears mid-session)."""
    send_reasoning: bool = True
    """Send earlier turns' thinking back as ``reasoning_content`` (templates decide whether to render)."""
    thinking_template_kwargs: bool = False
    """Map ``thinking`` to ``chat_template_kwargs.enable_thinking`` (llama-server, vLLM)."""
    stream_usage: bool = True
    """Ask for ``stream_options.include_usage`` when streaming."""
    send_top_k: bool = True
    """``top_k`` is not in OpenAI's API; llama-server, vLLM and OpenRouter accept it."""
    drop_deferred_tools: bool = True
    """Emulate tool search: a tool marked ``defer_loading: true`` is sent only once a ``tool_reference``
    block in some tool result names it (as the Anthropic API does). False sends every tool."""
    extra_body: ChatRequest = field(default_factory=lambda: ChatRequest())
    """Extra top-level keys for the upstream body (e.g. ``cache_prompt``)."""
    llama_stop_word: bool = False
    """With ``stop_sequences``, ask llama-server which one matched (``verbose``: its last chunk then
    carries ``__verbose.stopping_word``), since its OpenAI answers only say ``finish_reason: stop``."""


def to_openai_request(
    req: MessagesRequest | CountTokensRequest, opts: RequestOptions, *, stream: bool
) -> ChatRequest:
    """Translate a validated Anthropic request into an OpenAI Chat Completions body.

    Without ``model``, and with ``max_tokens`` as requested: which model serves the request and how many
    tokens it may write are `plan.plan`'s decisions."""
    body: ChatRequest = {}
    tools = _tools(req, drop_deferred=opts.drop_deferred_tools, lean=opts.prompt_profile == "lean")
    if tools:
        body["tools"] = tools
    body["messages"] = chat_messages(req, opts)

    if tools and req.tool_choice is not None:
        body.update(_tool_choice(req.tool_choice))
    response_format = _response_format(req)
    if response_format is not None:
        body["response_format"] = response_format
    if opts.thinking_template_kwargs and req.thinking is not None:
        body["chat_template_kwargs"] = {"enable_thinking": req.thinking.type != "disabled"}

    if isinstance(req, MessagesRequest):
        body["max_tokens"] = req.max_tokens
        if req.stop_sequences:
            body["stop"] = list(req.stop_sequences)
            if opts.llama_stop_word:
                body["verbose"] = True
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
        if req.top_k is not None and opts.send_top_k:
            body["top_k"] = req.top_k
    if stream:
        body["stream"] = True
        if opts.stream_usage:
            body["stream_options"] = {"include_usage": True}
    body.update(opts.extra_body)
    return body


def encode_upstream(body: Mapping[str, object]) -> bytes:
    """Deterministic bytes: ``model``, ``tools``, ``messages`` first, other keys sorted; compact ASCII
    JSON (``\\u`` escapes: about twice as fast to encode as UTF-8 output)."""
    ordered = {key: body[key] for key in _LEADING_KEYS if key in body}
    for key in sorted(k for k in body if k not in ordered):
        ordered[key] = body[key]
    return json.dumps(ordered, separators=(",", ":"), allow_nan=False).encode()


# --- tools ----------------------------------------------------------------------------------------------


def _is_deferred(tool: Tool) -> bool:
    return (tool.model_extra or {}).get("defer_loading") is True


def _referenced_tools(messages: Sequence[Message]) -> list[str]:
    """Tool names loaded by tool search (``tool_reference`` blocks in tool results), in load order."""
    names: dict[str, None] = {}
    for message in messages:
        if isinstance(message.content, str):
            continue
        for block in message.content:
            if isinstance(block, ToolResultBlock) and isinstance(block.content, list):
                for item in block.content:
                    if isinstance(item, UnknownBlock) and item.type == "tool_reference":
                        name = (item.model_extra or {}).get("tool_name")
                        if isinstance(name, str):
                            names.setdefault(name, None)
    return list(names)


def _function(tool: Tool, *, lean: bool = False) -> FunctionTool:
    if tool.description:
        description = lean_description(tool.description) if lean else tool.description
        return {
            "type": "function",
            "function": {"name": tool.name, "description": description, "parameters": tool.input_schema},
        }
    return {"type": "function", "function": {"name": tool.name, "parameters": tool.input_schema}}


def _tools(
    req: MessagesRequest | CountTokensRequest, *, drop_deferred: bool, lean: bool = False
) -> list[FunctionTool]:
    """Regular tools sorted by name, then tools loaded by tool search in load order (append-only, so the
    rendered tool list keeps its prefix when a tool gets loaded mid-session)."""
    if not req.tools:
        return []
    client_tools = [t for t in req.tools if isinstance(t, Tool)]
    if not drop_deferred:
        return [_function(t, lean=lean) for t in sorted(client_tools, key=lambda t: t.name)]
    regular = sorted((t for t in client_tools if not _is_deferred(t)), key=lambda t: t.name)
    deferred = {t.name: t for t in client_tools if _is_deferred(t)}
    loaded = (
        [deferred[name] for name in _referenced_tools(req.messages) if name in deferred] if deferred else []
    )
    return [_function(t, lean=lean) for t in regular + loaded]


def _tool_choice(choice: ToolChoice) -> ChatRequest:
    out: ChatRequest = {}
    match choice.type:
        case "auto":
            out["tool_choice"] = "auto"
        case "any":
            out["tool_choice"] = "required"
        case "none":
            out["tool_choice"] = "none"
        case "tool":
            if choice.name:
                out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
            else:
                out["tool_choice"] = "required"
        case _ as unreachable:
            assert_never(unreachable)
    if choice.disable_parallel_tool_use:
        out["parallel_tool_calls"] = False
    return out


def _response_format(req: MessagesRequest | CountTokensRequest) -> dict[str, Any] | None:
    fmt = req.output_config.format if req.output_config is not None else None
    if fmt is None:
        fmt = req.output_format
    if fmt is None or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        return None
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}
