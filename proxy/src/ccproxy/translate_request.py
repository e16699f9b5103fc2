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
  ``output_config.format`` (JSON schema) -> ``response_format``; ``max_tokens`` clamped.
- ``cache_control``, ``metadata``, ``context_management``, ``output_config.effort``, ``service_tier``
  and ``thinking`` are accepted and not forwarded (``thinking`` optionally becomes
  ``chat_template_kwargs.enable_thinking``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, assert_never

from ccproxy.layout import PromptLayout, stable_layout
from ccproxy.profile import PromptProfile, lean_description, lean_system_parts
from ccproxy.types_anthropic import (
    Base64ImageSource,
    ContentBlock,
    CountTokensRequest,
    DocumentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
    UnknownBlock,
    UnknownImageSource,
    URLImageSource,
)
from ccproxy.types_openai import (
    AssistantMessage,
    ChatMessage,
    ContentPart,
    FunctionTool,
    ToolCall,
    ToolMessage,
    UserMessage,
)

__all__ = [
    "BILLING_HEADER_PREFIX",
    "RequestOptions",
    "encode_upstream",
    "is_billing_header",
    "to_openai_request",
]

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"
_JOIN = "\n\n"
_LEADING_KEYS = ("model", "tools", "messages")


@dataclass(frozen=True)
class RequestOptions:
    """Knobs of the translation; everything else is fixed so the output stays deterministic."""

    upstream_model: str
    max_tokens_limit: int | None = None
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
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    """Extra top-level keys for the upstream body (e.g. ``cache_prompt``)."""
    llama_stop_word: bool = False
    """With ``stop_sequences``, ask llama-server which one matched (``verbose``: its last chunk then
    carries ``__verbose.stopping_word``), since its OpenAI answers only say ``finish_reason: stop``."""


def is_billing_header(text: str) -> bool:
    return text.lstrip().startswith(BILLING_HEADER_PREFIX)


def to_openai_request(
    req: MessagesRequest | CountTokensRequest, opts: RequestOptions, *, stream: bool
) -> dict[str, Any]:
    """Translate a validated Anthropic request into an OpenAI Chat Completions body."""
    body: dict[str, Any] = {"model": opts.upstream_model}
    tools = _tools(req, drop_deferred=opts.drop_deferred_tools, lean=opts.prompt_profile == "lean")
    if tools:
        body["tools"] = tools
    body["messages"] = _messages(req, opts)

    if tools and req.tool_choice is not None:
        body.update(_tool_choice(req.tool_choice))
    response_format = _response_format(req)
    if response_format is not None:
        body["response_format"] = response_format
    if opts.thinking_template_kwargs and req.thinking is not None:
        body["chat_template_kwargs"] = {"enable_thinking": req.thinking.type != "disabled"}

    if isinstance(req, MessagesRequest):
        max_tokens = req.max_tokens
        if opts.max_tokens_limit is not None:
            max_tokens = min(max_tokens, opts.max_tokens_limit)
        body["max_tokens"] = max(1, max_tokens)
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
    for key, value in opts.extra_body.items():
        body[key] = value
    return body


def encode_upstream(body: Mapping[str, Any]) -> bytes:
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


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    out: dict[str, Any] = {}
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


# --- messages ------------------------------------------------------------------------------------------


def _system_text(req: MessagesRequest | CountTokensRequest, opts: RequestOptions) -> list[str]:
    if req.system is None:
        return []
    if isinstance(req.system, str):
        text = req.system
        if opts.drop_billing_header and is_billing_header(text):
            # a plain-string system prompt whose first line is the header: drop that line only
            text = text.lstrip().partition("\n")[2]
        return [text] if text else []
    return [
        block.text
        for block in req.system
        if block.text and not (opts.drop_billing_header and is_billing_header(block.text))
    ]


def _plain_text(content: str | Sequence[ContentBlock], opts: RequestOptions) -> str:
    if isinstance(content, str):
        return content
    texts = [b.text for b in content if isinstance(b, TextBlock) and b.text]
    if opts.drop_billing_header:
        texts = [t for t in texts if not is_billing_header(t)]
    return _JOIN.join(texts)


def _messages(req: MessagesRequest | CountTokensRequest, opts: RequestOptions) -> list[ChatMessage]:
    system_parts = _system_text(req, opts)
    tool_index = {t.name: t for t in req.tools or () if isinstance(t, Tool)}
    body: list[ChatMessage] = []
    seen_assistant = False
    for message in req.messages:
        if message.role == "system":
            text = _plain_text(message.content, opts)
            if not text:
                continue
            if seen_assistant and opts.late_system_as_user:
                body.append({"role": "user", "content": f"<system-reminder>\n{text}\n</system-reminder>"})
            else:
                system_parts.append(text)
        elif message.role == "assistant":
            seen_assistant = True
            body.append(_assistant(message, opts))
        else:
            body.extend(_user(message, tool_index))
    if opts.prompt_profile == "lean":
        system_parts = lean_system_parts(system_parts)
    if opts.prompt_layout == "stable":
        system_parts, body = stable_layout(system_parts, body)
    head: list[ChatMessage] = []
    if system_parts:
        head.append({"role": "system", "content": _JOIN.join(system_parts)})
    return head + body


def _image_part(block: ImageBlock) -> ContentPart:
    source = block.source
    if isinstance(source, Base64ImageSource):
        url = f"data:{source.media_type};base64,{source.data}"
    elif isinstance(source, URLImageSource):
        url = source.url
    elif isinstance(source, UnknownImageSource):
        return {"type": "text", "text": f"[image with unsupported source type {source.type!r} omitted]"}
    else:
        assert_never(source)
    return {"type": "image_url", "image_url": {"url": url}}


def _document_text(block: DocumentBlock) -> str:
    source = block.source
    kind = source.get("type")
    title = f"{block.title}\n" if block.title else ""
    data = source.get("data")
    if kind == "text" and isinstance(data, str):
        return title + data
    if kind == "content" and isinstance(source.get("content"), list):
        texts = [
            item["text"]
            for item in source["content"]
            if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str)
        ]
        return title + _JOIN.join(texts)
    media = source.get("media_type", kind)
    return f"{title}[document ({media}) omitted: not supported by this backend]"


def _user_content(parts: list[ContentPart]) -> str | list[ContentPart]:
    """Text-only content becomes one string (what every backend accepts); images keep the parts."""
    if all(part["type"] == "text" for part in parts):
        return _JOIN.join(part["text"] for part in parts if part["type"] == "text")
    return parts


def _user(message: Message, tool_index: Mapping[str, Tool]) -> list[ChatMessage]:
    if isinstance(message.content, str):
        return [{"role": "user", "content": message.content}]
    tool_messages: list[ChatMessage] = []
    parts: list[ContentPart] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            if block.text:
                parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block))
        elif isinstance(block, DocumentBlock):
            parts.append({"type": "text", "text": _document_text(block)})
        elif isinstance(block, ToolResultBlock):
            tool_msg, images = _tool_result(block, tool_index)
            tool_messages.append(tool_msg)
            if images:
                parts.append({"type": "text", "text": f"Images from tool result {block.tool_use_id}:"})
                parts.extend(images)
        elif isinstance(block, ToolUseBlock | ThinkingBlock | RedactedThinkingBlock | UnknownBlock):
            continue  # not meaningful in a user turn (or unknown): skipped deterministically
        else:
            assert_never(block)
    out: list[ChatMessage] = list(tool_messages)
    if parts:
        user: UserMessage = {"role": "user", "content": _user_content(parts)}
        out.append(user)
    elif not tool_messages:
        out.append({"role": "user", "content": ""})
    return out


def _tool_reference(item: UnknownBlock, tool_index: Mapping[str, Tool]) -> str:
    """What the Anthropic API expands a ``tool_reference`` into: the tool's definition, in the
    ``<function>{...}</function>`` form Claude Code's ToolSearch description promises."""
    name = (item.model_extra or {}).get("tool_name")
    tool = tool_index.get(name) if isinstance(name, str) else None
    if tool is None:
        return f"Tool {name} is now available."
    definition = {"description": tool.description or "", "name": tool.name, "parameters": tool.input_schema}
    return f"<functions>\n<function>{json.dumps(definition, ensure_ascii=False)}</function>\n</functions>"


def _tool_result(
    block: ToolResultBlock, tool_index: Mapping[str, Tool]
) -> tuple[ToolMessage, list[ContentPart]]:
    texts: list[str] = []
    images: list[ContentPart] = []
    content = block.content
    if isinstance(content, str):
        texts.append(content)
    elif content is not None:
        for item in content:
            if isinstance(item, TextBlock):
                texts.append(item.text)
            elif isinstance(item, ImageBlock):
                images.append(_image_part(item))
            elif isinstance(item, DocumentBlock):
                texts.append(_document_text(item))
            elif isinstance(item, UnknownBlock) and item.type == "tool_reference":
                texts.append(_tool_reference(item, tool_index))
    if images:
        texts.append(f"[{len(images)} image(s) attached in the next user message]")
    text = _JOIN.join(t for t in texts if t)
    if block.is_error:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": text}, images


def _arguments(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


def _assistant(message: Message, opts: RequestOptions) -> AssistantMessage:
    if isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            if block.text:
                texts.append(block.text)
        elif isinstance(block, ThinkingBlock):
            if block.thinking:
                reasoning.append(block.thinking)
        elif isinstance(block, ToolUseBlock):
            calls.append(
                {
                    "id": block.id,
                    "type": "function",
                    "function": {"name": block.name, "arguments": _arguments(block.input)},
                }
            )
        elif isinstance(
            block, ImageBlock | DocumentBlock | ToolResultBlock | RedactedThinkingBlock | UnknownBlock
        ):
            continue
        else:
            assert_never(block)
    text = _JOIN.join(texts)
    out: AssistantMessage = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        out["tool_calls"] = calls
    if reasoning and opts.send_reasoning:
        out["reasoning_content"] = _JOIN.join(reasoning)
    return out
