"""Anthropic messages -> OpenAI chat messages (pure, deterministic): the message half of
``translate_request`` (whose docstring states the whole mapping).

    messages = chat_messages(req, opts)     # opts: translate_request.RequestOptions
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, assert_never

from ccproxy.layout import PromptLayout, stable_layout
from ccproxy.profile import PromptProfile, lean_messages, lean_system_parts
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
    ToolCall,
    ToolMessage,
    UserMessage,
)

__all__ = ["BILLING_HEADER_PREFIX", "MessageOptions", "chat_messages", "is_billing_header"]

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"
_JOIN = "\n\n"


class MessageOptions(Protocol):
    """The knobs of ``translate_request.RequestOptions`` that shape messages."""

    @property
    def drop_billing_header(self) -> bool: ...
    @property
    def prompt_layout(self) -> PromptLayout: ...
    @property
    def prompt_profile(self) -> PromptProfile: ...
    @property
    def late_system_as_user(self) -> bool: ...
    @property
    def send_reasoning(self) -> bool: ...


def is_billing_header(text: str) -> bool:
    return text.lstrip().startswith(BILLING_HEADER_PREFIX)


def _system_text(req: MessagesRequest | CountTokensRequest, opts: MessageOptions) -> list[str]:
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


def _plain_text(content: str | Sequence[ContentBlock], opts: MessageOptions) -> str:
    if isinstance(content, str):
        return content
    texts = [b.text for b in content if isinstance(b, TextBlock) and b.text]
    if opts.drop_billing_header:
        texts = [t for t in texts if not is_billing_header(t)]
    return _JOIN.join(texts)


def chat_messages(req: MessagesRequest | CountTokensRequest, opts: MessageOptions) -> list[ChatMessage]:
    """The chat messages of a request: one leading system message, then the turns."""
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
        body = lean_messages(body)
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


def _assistant(message: Message, opts: MessageOptions) -> AssistantMessage:
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
