"""OpenAI Chat Completions wire types (what the proxy sends to and reads from an ``openai`` upstream).

Outbound requests are ``TypedDict``s built by ``translate_request``. Upstream responses and stream chunks
are read as plain dicts and checked field by field in ``translate_response``/``translate_stream`` (cheap
on the streaming hot path); the TypedDicts below document the shapes those modules accept, including the
llama-server extensions (``reasoning_content``, ``timings``).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypeAlias, TypedDict

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "Chunk",
    "ChunkChoice",
    "ChunkDelta",
    "Completion",
    "CompletionChoice",
    "ContentPart",
    "FunctionCall",
    "FunctionTool",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
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


# --- response ----------------------------------------------------------------------------------------


class PromptTokensDetails(TypedDict, total=False):
    cached_tokens: int


class Usage(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class Timings(TypedDict, total=False):
    """llama-server: ``prompt_n`` tokens processed, ``cache_n`` tokens reused from the KV cache."""

    cache_n: int
    prompt_n: int
    predicted_n: int


class ResponseMessage(TypedDict, total=False):
    role: str
    content: str | None
    reasoning_content: str | None
    tool_calls: list[ToolCall]


class CompletionChoice(TypedDict, total=False):
    index: int
    message: ResponseMessage
    finish_reason: str | None


class Completion(TypedDict, total=False):
    id: str
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    timings: Timings


class FunctionCallDelta(TypedDict, total=False):
    name: str
    arguments: str


class ToolCallDelta(TypedDict, total=False):
    index: int
    id: str
    type: Literal["function"]
    function: FunctionCallDelta


class ChunkDelta(TypedDict, total=False):
    role: str
    content: str | None
    reasoning_content: str | None
    tool_calls: list[ToolCallDelta]


class ChunkChoice(TypedDict, total=False):
    index: int
    delta: ChunkDelta
    finish_reason: str | None


class Chunk(TypedDict, total=False):
    id: str
    object: str
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None
    timings: Timings
