"""OpenAI Chat Completions wire types (what the proxy sends to and reads from an ``openai`` upstream).

Outbound: the request body is a ``ChatRequest`` (``TypedDict``), built by ``translate_request`` and
completed by ``plan`` (model, slot, max_tokens, llama-server's own keys). Inbound: upstream answers and
stream chunks are read as plain dicts and checked field by field in ``translate_response`` /
``translate_stream`` (cheap on the streaming hot path; a declared type there would only be a claim).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "ContentPart",
    "FunctionCall",
    "FunctionTool",
    "ToolCall",
]


# --- request -----------------------------------------------------------------------------------------


class ImageURL(TypedDict):
    url: str


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart: TypeAlias = TextPart | ImagePart


class FunctionCall(TypedDict):
    name: str
    arguments: str


class ToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class SystemMessage(TypedDict):
    role: Literal["system"]
    content: str


class UserMessage(TypedDict):
    role: Literal["user"]
    content: str | list[ContentPart]


class AssistantMessage(TypedDict):
    role: Literal["assistant"]
    content: str | None
    tool_calls: NotRequired[list[ToolCall]]
    reasoning_content: NotRequired[str]


class ToolMessage(TypedDict):
    role: Literal["tool"]
    tool_call_id: str
    content: str


ChatMessage: TypeAlias = SystemMessage | UserMessage | AssistantMessage | ToolMessage


class FunctionDef(TypedDict):
    name: str
    description: NotRequired[str]
    parameters: dict[str, Any]


class FunctionTool(TypedDict):
    type: Literal["function"]
    function: FunctionDef


class ChatRequest(TypedDict, total=False):
    """Top-level keys in the order ``encode_upstream`` writes them: model, tools, messages, then sorted."""

    model: str
    tools: list[FunctionTool]
    messages: list[ChatMessage]
    max_tokens: int
    parallel_tool_calls: bool
    reasoning_format: str
    response_format: dict[str, Any]
    stop: list[str]
    stream: bool
    stream_options: dict[str, Any]
    temperature: float
    tool_choice: str | dict[str, Any]
    top_k: int
    top_p: float
    chat_template_kwargs: dict[str, Any]
    # llama-server's own keys
    id_slot: int
    """The slot (KV cache) the request runs on."""
    cache_prompt: bool
    return_progress: bool
    """Streamed ``prompt_progress`` chunks while the prompt is processed."""
    verbose: bool
    """The last chunk tells which stop string matched (``__verbose.stopping_word``)."""
    grammar: str
    """GBNF the answer must follow (``tool_grammar``: text tool calls of the request's tools only)."""
